"""The manager of a worker pool: the process that connects to the interchange for one node.

It forks its workers (``worker.worker_loop``) before anything else, registers with the
interchange (host, block, workers, capacity, cores, memory, Python and packages), then loops:
tasks from the interchange go to idle workers, one at a time each, over a pipe per worker;
results go back in batches, with where and when each ran (``protocol.META``) and its resource
samples. Every ``heartbeat_period`` it tells the interchange it is alive, and it exits when the
interchange has been silent for ``heartbeat_threshold``. A worker that dies is reported
(``messages.TaskLost``) for the task it held and replaced. With a drain period it asks to drain
once that has passed; in MPI mode tasks first wait for their nodes (``PoolMPIScheduler``).
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import pathlib
import platform
import re
import socket
import time
import uuid
from collections import deque
from importlib.metadata import distributions

import zmq

from parsl_repro import curvezmq
from parsl_repro.executors.high_throughput import protocol as p
from parsl_repro.executors.high_throughput.messages import LostKind, TaskLost, encode
from parsl_repro.executors.high_throughput.mpi_resource_management import PoolMPIScheduler
from parsl_repro.executors.high_throughput.sampling import SelfSample, sample_process
from parsl_repro.executors.high_throughput.worker import WorkerProcess, worker_loop
from parsl_repro.logconfigs.base import LogConfig
from parsl_repro.version import VERSION

logger = logging.getLogger(__name__)

# plain ints: pyzmq's flag enums cost an enum construction on every `&` in the loop
POLLIN, EVENTS, NOBLOCK = int(zmq.POLLIN), int(zmq.EVENTS), int(zmq.NOBLOCK)


class Manager:
    """One worker pool: ``run()`` serves until the interchange says stop (0), rejects the pool
    (3) or falls silent (2)."""

    def __init__(self, args: argparse.Namespace, log_config: LogConfig | None = None) -> None:
        self.args = args
        self.uid = args.uid or uuid.uuid4().hex[:12]
        self._log_setup = None if log_config is None else (log_config, pool_log_dir(args, self.uid))
        self.block_id = args.block_id
        self.hostname = socket.gethostname()
        self._memory = max(1, total_memory())
        self.worker_count = worker_count(args)
        self.capacity = self.worker_count + args.prefetch_capacity
        self.pending: deque[tuple[bytes, bytes]] = deque()
        self.results: list[bytes] = []
        self.workers: list[WorkerProcess] = []
        self.idle: deque[WorkerProcess] = deque()
        self._context = multiprocessing.get_context("fork")
        self._cpu_sets = cpu_sets(args.cpu_affinity, self.worker_count)
        self._accelerators = [a for a in args.available_accelerators.split(",") if a] \
            if args.available_accelerators else []
        self.drain_at = time.monotonic() + args.drain_period if args.drain_period else float("inf")
        # MPI mode: tasks wait there until the nodes they ask for are free, then go to pending
        self.mpi = PoolMPIScheduler(args.mpi_launcher, self.pending) if args.enable_mpi_mode else None

    def _start_worker(self, rank: int) -> WorkerProcess:
        parent, child = self._context.Pipe()
        cpus = self._cpu_sets[rank] if self._cpu_sets else None
        accelerator = self._accelerators[rank % len(self._accelerators)] if self._accelerators else None
        process = self._context.Process(target=worker_loop, name=f"parsl-repro-worker-{rank}", daemon=True,
                                        args=(rank, child, self.uid, self.worker_count, self.block_id, cpus,
                                              accelerator, [parent, *(w.conn for w in self.workers)]),
                                        kwargs={"log_setup": self._log_setup,
                                                "sample_interval": self.args.resource_monitoring_interval})
        process.start()
        child.close()
        return WorkerProcess(rank, process, parent)

    def run(self) -> int:
        """Fork the workers, connect and register, serve; stop the workers however it ends."""
        # workers are forked before any thread or zmq context exists in this process
        for rank in range(self.worker_count):
            self.workers.append(self._start_worker(rank))
        self.idle.extend(self.workers)
        context, sock = connect(self.args)
        try:
            sock.send_multipart([p.REGISTER, p.dumps({
                "uid": self.uid, "hostname": self.hostname, "block_id": self.block_id,
                "worker_count": self.worker_count, "prefetch_capacity": self.args.prefetch_capacity,
                "capacity": self.capacity, "pid": os.getpid(), "cpu_count": os.cpu_count() or 1,
                "total_memory": total_memory(), "python_version": platform.python_version(),
                "protocol": p.PROTOCOL_VERSION, "parsl_repro_version": VERSION,
                "packages": installed_packages()})])
            return self._loop(sock)
        finally:
            self._stop_workers()
            sock.close(linger=2000)
            context.term()

    def _loop(self, sock: zmq.Socket) -> int:
        args = self.args
        poller = zmq.Poller()
        poller.register(sock, POLLIN)
        by_fd: dict[int, WorkerProcess] = {}
        for worker in self.workers:
            by_fd[worker.conn.fileno()] = worker
            poller.register(worker.conn.fileno(), POLLIN)
        last_heard = time.monotonic()
        next_heartbeat = time.monotonic() + args.heartbeat_period
        interval = args.resource_monitoring_interval
        while True:
            timeout = min(args.heartbeat_period, interval if interval > 0 else args.heartbeat_period, 1.0,
                          max(0.0, self.drain_at - time.monotonic()))
            events = dict(poller.poll(timeout * 1000))
            now = time.monotonic()
            if sock in events:
                while sock.getsockopt(EVENTS) & POLLIN:  # cheaper than raising zmq.Again when drained
                    frames = sock.recv_multipart(NOBLOCK)
                    last_heard = now
                    tag = frames[0]
                    if tag == p.TASKS:
                        if self.mpi is None:
                            for i in range(1, len(frames) - 1, 2):
                                self.pending.append((frames[i], frames[i + 1]))
                        else:  # a task that can never get its nodes here fails at once
                            for i in range(1, len(frames) - 1, 2):
                                self.results += self.mpi.put(frames[i], frames[i + 1])
                    elif tag == p.STOP:
                        logger.info("Interchange asked pool %s to stop", self.uid)
                        return 0
                    elif tag == p.REJECTED:
                        logger.error("Interchange rejected pool %s: %s", self.uid, p.loads(frames[1]))
                        return 3
            for fd, worker in list(by_fd.items()):
                if fd in events:
                    self._collect(worker, by_fd, poller)
            self._dispatch()
            if interval > 0:
                self._sample(interval)
            if self.results:
                sock.send_multipart([p.RESULTS, *self.results])
                self.results = []
            if now >= next_heartbeat:
                sock.send_multipart([p.HEARTBEAT])
                next_heartbeat = now + args.heartbeat_period
            if now >= self.drain_at:
                logger.info("Drain period of %s s over: pool %s asks to drain", args.drain_period, self.uid)
                sock.send_multipart([p.DRAIN])
                self.drain_at = float("inf")
            if now - last_heard > args.heartbeat_threshold:
                logger.error("No word from the interchange for %.0f s; pool %s exits", now - last_heard, self.uid)
                return 2

    def _dispatch(self) -> None:
        while self.pending and self.idle:
            worker = self.idle.popleft()
            task_id, payload = self.pending.popleft()
            worker.task = task_id
            worker.started = time.time()
            worker.samples = []
            worker.next_sample = time.monotonic() + self.args.resource_monitoring_interval
            worker.conn.send_bytes(task_id + payload)

    def _collect(self, worker: WorkerProcess, by_fd: dict[int, WorkerProcess], poller: zmq.Poller) -> None:
        try:
            message = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._replace(worker, by_fd, poller)
            return
        task_id = message[:8]
        meta = p.META.pack(worker.started, worker.process.pid)
        body = 9
        if message[8] == 1:  # the worker's SelfSample leads the result
            body += SelfSample.FORMAT.size
            worker.samples.append(SelfSample.row(message, 9, self.args.resource_monitoring_interval,
                                                 worker.process.pid, self._memory))
        if worker.samples:
            meta += p.dumps(worker.samples)
        self.results += [task_id, p.OK, meta, message[body:]]
        worker.task = None
        self.idle.append(worker)
        if self.mpi is not None:
            self.mpi.release(task_id)

    def _replace(self, worker: WorkerProcess, by_fd: dict[int, WorkerProcess], poller: zmq.Poller) -> None:
        """A worker died: report its task lost, start another in its place."""
        worker.process.join(1)
        code = worker.process.exitcode
        fd = next(fd for fd, w in by_fd.items() if w is worker)
        poller.unregister(fd)
        del by_fd[fd]
        worker.conn.close()
        if worker.task is not None:
            logger.error("Worker %s (pid %s) died with exit code %s while running a task", worker.rank,
                         worker.process.pid, code)
            meta = p.META.pack(worker.started, worker.process.pid)
            self.results += [worker.task, p.LOST, meta, encode(TaskLost(
                LostKind.WORKER, self.uid, self.hostname, self.block_id, worker=worker.rank, pid=worker.process.pid,
                exitcode=code))]
            if self.mpi is not None:
                self.mpi.release(worker.task)
        elif worker in self.idle:
            self.idle.remove(worker)
        fresh = self._start_worker(worker.rank)
        self.workers[self.workers.index(worker)] = fresh
        by_fd[fresh.conn.fileno()] = fresh
        poller.register(fresh.conn.fileno(), POLLIN)
        self.idle.append(fresh)

    def _sample(self, interval: float) -> None:
        now = time.monotonic()
        for worker in self.workers:
            if worker.task is not None and now >= worker.next_sample:
                worker.next_sample = now + interval
                sample = sample_process(worker.process.pid, interval)
                if sample is not None:
                    worker.samples.append(sample)

    def _stop_workers(self) -> None:
        for worker in self.workers:
            try:
                worker.conn.close()
            except OSError:
                pass
        deadline = time.monotonic() + 2
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1)


def connect(args: argparse.Namespace) -> tuple[curvezmq.ClientContext, zmq.Socket]:
    """Connect to the first of the interchange's addresses that answers: its Unix socket when
    it runs on this host, else TCP."""
    addresses = [a for a in args.addresses.split(",") if a]
    chosen = None
    deadline = time.monotonic() + args.address_probe_timeout
    if args.ipc and args.ipc_host == socket.gethostname() and _unix_socket_answers(args.ipc):
        chosen = f"ipc://{args.ipc}"  # the interchange runs on this host: skip TCP
    while chosen is None:
        for address in addresses:
            try:
                socket.create_connection((address, args.port), timeout=1).close()
                chosen = address
                break
            except OSError:
                continue
        if chosen is None:
            if time.monotonic() > deadline:
                raise ConnectionError(f"none of the interchange addresses {addresses} answered on port {args.port}")
            time.sleep(0.5)
    context = curvezmq.ClientContext(args.cert_dir)
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.SNDHWM, 0)  # queue rather than drop when the interchange lags
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.IDENTITY, args.uid.encode() if args.uid else uuid.uuid4().hex[:12].encode())
    sock.setsockopt(zmq.LINGER, 0)
    if chosen.startswith("ipc://"):
        sock.connect(chosen)
    else:
        host = f"[{chosen}]" if ":" in chosen else chosen
        sock.connect(f"tcp://{host}:{args.port}")
    logger.info("Connected to the interchange at %s (port %s)", chosen, args.port)
    return context, sock


def _unix_socket_answers(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


# --- this node ------------------------------------------------------------------------------------------
def worker_count(args: argparse.Namespace) -> int:
    """Workers this pool runs: the fewest that cores, ``max_workers_per_node``, memory and
    accelerators allow, at least one."""
    cores = os.cpu_count() or 1
    by_cores = max(1, int(cores / args.cores_per_worker)) if args.cores_per_worker > 0 else cores
    counts = [by_cores]
    if args.max_workers_per_node and args.max_workers_per_node != "inf":
        counts.append(int(float(args.max_workers_per_node)))
    if args.mem_per_worker and args.mem_per_worker > 0:
        counts.append(max(1, int(total_memory() / (args.mem_per_worker * 2 ** 30))))
    if args.available_accelerators:
        counts.append(len([a for a in args.available_accelerators.split(",") if a]))
    return max(1, min(counts))


def cpu_sets(policy: str, workers: int) -> list[list[int]] | None:
    """Cores per worker for ``cpu_affinity``: 'block' (contiguous), 'alternating' (round robin),
    'block-reverse', or an explicit 'list:0,1:2,3' (one colon-separated entry per worker)."""
    if policy in ("none", "", None):
        return None
    available = sorted(os.sched_getaffinity(0))
    if policy.startswith("list:"):
        entries = policy[len("list:"):].split(":")
        return [[int(c) for c in entry.split(",")] for entry in entries][:workers]
    per = max(1, len(available) // workers)
    if policy == "block":
        return [available[i * per:(i + 1) * per] or [available[i % len(available)]] for i in range(workers)]
    if policy == "block-reverse":
        reverse = available[::-1]
        return [reverse[i * per:(i + 1) * per] or [reverse[i % len(reverse)]] for i in range(workers)]
    if policy == "alternating":
        return [available[i::workers] or [available[i % len(available)]] for i in range(workers)]
    raise ValueError(f"unknown cpu_affinity {policy!r}: use none, block, block-reverse, alternating or list:...")


def total_memory() -> int:
    """Bytes of memory on this node; 0 if psutil cannot say."""
    try:
        import psutil  # may be missing on a pool's node
        return int(psutil.virtual_memory().total)
    except Exception:
        return 0


def installed_packages() -> dict[str, str]:
    """{distribution name: version} of what this interpreter has installed, names normalised as in
    wheel file names (lower case, runs of -_. as _), e.g. ``parsl_repro``."""
    packages = {}
    for distribution in distributions():
        name = distribution.metadata["Name"]
        if name:
            packages[re.sub(r"[-_.]+", "_", name).lower()] = distribution.version
    return packages


def pool_log_dir(args: argparse.Namespace, uid: str) -> pathlib.Path:
    """Where a pool logs through a ``LogConfig``: ``<logdir>/block-<id>/<pool id>`` (as Parsl)."""
    return pathlib.Path(args.logdir or os.getcwd()) / f"block-{args.block_id}" / uid
