"""The worker pool: what a provider's launcher starts on each node of a block.

One manager process connects to the interchange, registers (host, block, number of workers),
then takes batches of tasks and hands them to its worker processes, one task at a time each,
over a pipe per worker. Results go back in batches. Every ``heartbeat_period`` the manager tells
the interchange it is alive, and it exits when the interchange has been silent for
``heartbeat_threshold``. A worker that dies mid-task (killed, out of memory) is reported as
``WorkerLost`` for that task and replaced; so is one whose task raises ``SystemExit`` or
another ``BaseException`` that is not an ``Exception`` (as in Parsl: such a task ends its
worker). Busy workers are sampled with psutil every ``resource_monitoring_interval`` seconds;
the samples travel back with the task's result. With ``--drain-period``, the pool asks the
interchange to drain that many seconds after it starts: it takes no new tasks, finishes those
it holds, and exits when the interchange tells it to stop. With ``--enable-mpi-mode`` (one pool
per block, ``MPIExecutor``) each task first waits for the nodes its resource specification asks
for (``mpi_resource_management.PoolMPIScheduler``), then runs with them and its launcher prefix
in its environment.

Installed as the ``parsl-repro-worker-pool`` console script (named so that it never shadows
Parsl's own ``process_worker_pool.py`` when both are installed).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import multiprocessing
import os
import pathlib
import pickle
import platform
import re
import resource
import signal
import socket
import struct
import sys
import time
import uuid
from collections import deque
from multiprocessing.connection import Connection
from typing import Any

from parsl_repro.executors.high_throughput.mpi_resource_management import PoolMPIScheduler
from parsl_repro.logconfigs.base import LogConfig, oneshot_initialize_logging, release_inherited_logging

logger = logging.getLogger("parsl_repro.executors.high_throughput.worker_pool")



# --- workers -------------------------------------------------------------------------------------
def _worker_loop(rank: int, conn: Connection, pool_id: str, count: int, block_id: str,
                 cpus: list[int] | None, accelerator: str | None, siblings: list[Connection],
                 log_setup: tuple[LogConfig, pathlib.Path] | None = None, sample_interval: float = 0.0) -> None:
    """One worker process: run the tasks the manager sends, one at a time, until the pipe closes
    (which is also how a worker notices that its manager died). With ``log_setup`` (the run's
    ``LogConfig`` and the pool's log directory) it logs as ``worker_<rank>``; without, into the
    manager's log, whose handler it inherited. Each result is preceded by ``b"\\0"``, or, when
    ``sample_interval`` > 0 and that long has passed since this worker's last one (always for its
    first task), by ``b"\\1"`` and a ``SelfSample`` of this process taken as the task ended."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the manager decides when workers stop
    if log_setup is not None:
        release_inherited_logging()  # the manager's handlers and references came with the fork
        oneshot_initialize_logging(log_config=log_setup[0], log_dir=log_setup[1], log_name=f"worker_{rank}")
    logger.info("Worker %d of pool %s started (pid %d)", rank, pool_id, os.getpid())
    for inherited in siblings:  # the manager's ends of other workers' pipes, inherited by fork
        inherited.close()
    os.environ.update(PARSL_WORKER_RANK=str(rank), PARSL_WORKER_POOL_ID=pool_id, PARSL_WORKER_COUNT=str(count),
                      PARSL_WORKER_BLOCK_ID=block_id)
    if cpus:
        os.sched_setaffinity(0, cpus)
        os.environ["PARSL_CPU_AFFINITY"] = ",".join(map(str, cpus))
    if accelerator is not None:
        for name in ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK"):
            os.environ[name] = accelerator
        os.environ["PARSL_WORKER_ACCELERATOR"] = accelerator
    from parsl_repro.app.errors import RemoteExceptionWrapper
    from parsl_repro.executors.execute_task import execute_task_named
    from parsl_repro.executors.high_throughput.protocol import CONTEXT_PAYLOAD
    from parsl_repro.serialize import serialize
    from parsl_repro.serialize.facade import serialize_result

    sampler = SelfSample() if sample_interval > 0 else None
    next_sample = 0.0
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        task_id, payload = message[:8], message[8:]
        # SystemExit and other BaseExceptions end this worker: the manager reports WorkerLost
        try:
            if payload.startswith(CONTEXT_PAYLOAD):
                out = serialize_result(*_execute_with_context(payload))
            else:
                out = serialize_result(*execute_task_named(payload))
        except Exception:  # the app's own failure, or a result that cannot travel
            try:
                out = serialize(RemoteExceptionWrapper(*sys.exc_info()))
            except Exception as e:  # an exception that cannot be serialized either
                out = serialize(RemoteExceptionWrapper(RuntimeError, RuntimeError(
                    f"the task failed and its exception could not be sent back: {type(e).__name__}: {e}"), None))
        if sampler is not None and time.monotonic() >= next_sample:
            next_sample = time.monotonic() + sample_interval
            conn.send_bytes(task_id + b"\1" + sampler.take() + out)
        else:
            conn.send_bytes(task_id + b"\0" + out)


class SelfSample:
    """A worker's cheap sample of itself as a task ends, at most once per sampling interval (so
    a worker's first task, however short, has a resource record, as in Parsl): CPU times of the
    process and its reaped children (``getrusage``: microseconds, where ``os.times`` counts whole
    10 ms clock ticks and so reads 0 for a worker's first short task), resident and virtual size
    (``/proc/self/statm``) and bytes read and written (``/proc/self/io``), read from files kept
    open. Packed as ``FORMAT``: time, user, system, rss, vms, read, write."""

    FORMAT = struct.Struct("!dddqqqq")

    def __init__(self) -> None:
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._statm = self._open("/proc/self/statm")
        self._io = self._open("/proc/self/io")

    @staticmethod
    def _open(path: str) -> int | None:
        try:
            return os.open(path, os.O_RDONLY)
        except OSError:
            return None

    def take(self) -> bytes:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        rss = vms = read = write = 0
        try:
            if self._statm is not None:
                fields = os.pread(self._statm, 128, 0).split()
                vms, rss = int(fields[0]) * self._page, int(fields[1]) * self._page
            if self._io is not None:
                lines = os.pread(self._io, 512, 0).split(b"\n")
                read, write = int(lines[4].split()[1]), int(lines[5].split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return self.FORMAT.pack(time.time(), own.ru_utime + children.ru_utime, own.ru_stime + children.ru_stime,
                                rss, vms, read, write)


def _execute_with_context(payload: bytes) -> tuple[str, Any]:
    """Run a task sent by ``submit_payload``: ``context["task_executor"]["f"]`` (a dotted import
    path) called as ``f(buffer, *a, **k)``, else the buffer as an apply message; with
    ``context["resource_spec"]`` set as ``PARSL_<KEY>`` environment variables meanwhile.
    Returns (the name of the function that ran, what it returned), as ``execute_task_named``."""
    from parsl_repro.executors.execute_task import _resource_environment, execute_task_named
    from parsl_repro.executors.high_throughput.protocol import unpack_context_payload
    from parsl_repro.serialize import deserialize

    packed_context, buffer = unpack_context_payload(payload)
    context = deserialize(packed_context)
    task_executor = context.get("task_executor")
    if task_executor:
        module_name, _, name = task_executor["f"].rpartition(".")
        function = getattr(importlib.import_module(module_name), name)

        def run() -> tuple[str, Any]:
            return task_executor["f"], function(buffer, *task_executor.get("a", ()), **task_executor.get("k", {}))
    else:
        def run() -> tuple[str, Any]:
            return execute_task_named(buffer)
    resource_specification = context.get("resource_spec")
    if not resource_specification:
        return run()
    with _resource_environment(resource_specification):
        return run()


class _Worker:
    __slots__ = ("rank", "process", "conn", "task", "started", "samples", "next_sample")

    def __init__(self, rank: int, process: Any, conn: Connection) -> None:
        self.rank = rank
        self.process = process
        self.conn = conn
        self.task: bytes | None = None
        self.started = 0.0
        self.samples: list = []
        self.next_sample = 0.0


# --- the manager -----------------------------------------------------------------------------------
class Manager:
    def __init__(self, args: argparse.Namespace, log_config: LogConfig | None = None) -> None:
        self.args = args
        self.uid = args.uid or uuid.uuid4().hex[:12]
        self._log_setup = None if log_config is None else (log_config, _pool_log_dir(args, self.uid))
        self.block_id = args.block_id
        self.hostname = socket.gethostname()
        self._memory = max(1, _total_memory())
        self.worker_count = _worker_count(args)
        self.capacity = self.worker_count + args.prefetch_capacity
        self.pending: deque[tuple[bytes, bytes]] = deque()
        self.results: list[bytes] = []
        self.workers: list[_Worker] = []
        self.idle: deque[_Worker] = deque()
        self._context = multiprocessing.get_context("fork")
        self._cpu_sets = _cpu_sets(args.cpu_affinity, self.worker_count)
        self._accelerators = [a for a in args.available_accelerators.split(",") if a] \
            if args.available_accelerators else []
        self.drain_at = time.monotonic() + args.drain_period if args.drain_period else float("inf")
        # MPI mode: tasks wait there until the nodes they ask for are free, then go to pending
        self.mpi = PoolMPIScheduler(args.mpi_launcher, self.pending) if args.enable_mpi_mode else None

    # workers
    def _start_worker(self, rank: int) -> _Worker:
        parent, child = self._context.Pipe()
        cpus = self._cpu_sets[rank] if self._cpu_sets else None
        accelerator = self._accelerators[rank % len(self._accelerators)] if self._accelerators else None
        process = self._context.Process(target=_worker_loop, name=f"parsl-repro-worker-{rank}", daemon=True,
                                        args=(rank, child, self.uid, self.worker_count, self.block_id, cpus,
                                              accelerator, [parent, *(w.conn for w in self.workers)]),
                                        kwargs={"log_setup": self._log_setup,
                                                "sample_interval": self.args.resource_monitoring_interval})
        process.start()
        child.close()
        return _Worker(rank, process, parent)

    def run(self) -> int:
        import zmq

        from parsl_repro.executors.high_throughput import protocol as p

        # workers are forked before any thread or zmq context exists in this process
        for rank in range(self.worker_count):
            self.workers.append(self._start_worker(rank))
        self.idle.extend(self.workers)
        context, sock = _connect(self.args)
        try:
            sock.send_multipart([p.REGISTER, p.dumps({
                "uid": self.uid, "hostname": self.hostname, "block_id": self.block_id,
                "worker_count": self.worker_count, "prefetch_capacity": self.args.prefetch_capacity,
                "capacity": self.capacity, "pid": os.getpid(), "cpu_count": os.cpu_count() or 1,
                "total_memory": _total_memory(), "python_version": platform.python_version(),
                "protocol": p.PROTOCOL_VERSION, "parsl_repro_version": _version(),
                "packages": _installed_packages()})])
            return self._loop(zmq, p, sock)
        finally:
            self._stop_workers()
            sock.close(linger=2000)
            context.term()

    def _loop(self, zmq: Any, p: Any, sock: Any) -> int:
        args = self.args
        pollin, events_option, noblock = int(zmq.POLLIN), int(zmq.EVENTS), int(zmq.NOBLOCK)  # not enums: cheaper
        poller = zmq.Poller()
        poller.register(sock, pollin)
        by_fd: dict[int, _Worker] = {}
        for worker in self.workers:
            by_fd[worker.conn.fileno()] = worker
            poller.register(worker.conn.fileno(), pollin)
        last_heard = time.monotonic()
        next_heartbeat = time.monotonic() + args.heartbeat_period
        interval = args.resource_monitoring_interval
        while True:
            timeout = min(args.heartbeat_period, interval if interval > 0 else args.heartbeat_period, 1.0,
                          max(0.0, self.drain_at - time.monotonic()))
            events = dict(poller.poll(timeout * 1000))
            now = time.monotonic()
            if sock in events:
                while sock.getsockopt(events_option) & pollin:  # cheaper than raising zmq.Again when drained
                    frames = sock.recv_multipart(noblock)
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
                    self._collect(worker, by_fd, poller, zmq, p)
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

    def _collect(self, worker: _Worker, by_fd: dict, poller: Any, zmq: Any, p: Any) -> None:
        try:
            message = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._replace(worker, by_fd, poller, zmq, p)
            return
        task_id = message[:8]
        meta = p.META.pack(worker.started, worker.process.pid)
        body = 9
        if message[8] == 1:  # the worker's SelfSample leads the result
            body += SelfSample.FORMAT.size
            at, user, system, rss, vms, read, write = SelfSample.FORMAT.unpack_from(message, 9)
            worker.samples.append([at, self.args.resource_monitoring_interval, worker.process.pid, user, system,
                                   rss, vms, 100.0 * rss / self._memory, read, write, 0, "running"])
        if worker.samples:
            meta += p.dumps(worker.samples)
        self.results += [task_id, p.OK, meta, message[body:]]
        worker.task = None
        self.idle.append(worker)
        if self.mpi is not None:
            self.mpi.release(task_id)

    def _replace(self, worker: _Worker, by_fd: dict, poller: Any, zmq: Any, p: Any) -> None:
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
            self.results += [worker.task, p.LOST, meta, p.dumps({
                "kind": "worker", "worker": worker.rank, "pid": worker.process.pid, "exitcode": code,
                "hostname": self.hostname, "block_id": self.block_id, "manager": self.uid})]
            if self.mpi is not None:
                self.mpi.release(worker.task)
        elif worker in self.idle:
            self.idle.remove(worker)
        fresh = self._start_worker(worker.rank)
        self.workers[self.workers.index(worker)] = fresh
        by_fd[fresh.conn.fileno()] = fresh
        poller.register(fresh.conn.fileno(), zmq.POLLIN)
        self.idle.append(fresh)

    def _sample(self, interval: float) -> None:
        now = time.monotonic()
        for worker in self.workers:
            if worker.task is not None and now >= worker.next_sample:
                worker.next_sample = now + interval
                sample = _sample_process(worker.process.pid, interval)
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


def _sample_process(pid: int, interval: float) -> list | None:
    """[time, interval, pid, cpu_user, cpu_system, rss, vms, mem%, read_bytes, write_bytes, children, status]
    for the worker and its children together."""
    import psutil

    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            procs = [proc, *proc.children(recursive=True)]
            user = system = 0.0
            rss = vms = read = write = 0
            percent = 0.0
            for each in procs:
                try:
                    cpu = each.cpu_times()
                    mem = each.memory_info()
                    user += cpu.user + cpu.children_user
                    system += cpu.system + cpu.children_system
                    rss += mem.rss
                    vms += mem.vms
                    percent += each.memory_percent()
                    try:
                        io = each.io_counters()
                        read += io.read_bytes
                        write += io.write_bytes
                    except (psutil.AccessDenied, AttributeError):
                        pass
                except psutil.NoSuchProcess:
                    continue
            return [time.time(), interval, pid, user, system, rss, vms, percent, read, write, len(procs) - 1,
                    proc.status()]
    except psutil.Error:
        return None


def _connect(args: argparse.Namespace) -> tuple[Any, Any]:
    """Connect to the first of the interchange's addresses that answers."""
    import zmq

    from parsl_repro import curvezmq

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


def _worker_count(args: argparse.Namespace) -> int:
    cores = os.cpu_count() or 1
    by_cores = max(1, int(cores / args.cores_per_worker)) if args.cores_per_worker > 0 else cores
    counts = [by_cores]
    if args.max_workers_per_node and args.max_workers_per_node != "inf":
        counts.append(int(float(args.max_workers_per_node)))
    if args.mem_per_worker and args.mem_per_worker > 0:
        counts.append(max(1, int(_total_memory() / (args.mem_per_worker * 2 ** 30))))
    if args.available_accelerators:
        counts.append(len([a for a in args.available_accelerators.split(",") if a]))
    return max(1, min(counts))


def _cpu_sets(policy: str, workers: int) -> list[list[int]] | None:
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


def _total_memory() -> int:
    try:
        import psutil
        return int(psutil.virtual_memory().total)
    except Exception:
        return 0


def _installed_packages() -> dict[str, str]:
    """{distribution name: version} of what this interpreter has installed, names normalised as in
    wheel file names (lower case, runs of -_. as _), e.g. ``parsl_repro``."""
    from importlib.metadata import distributions

    packages = {}
    for distribution in distributions():
        name = distribution.metadata["Name"]
        if name:
            packages[re.sub(r"[-_.]+", "_", name).lower()] = distribution.version
    return packages


def _version() -> str:
    from parsl_repro.version import VERSION
    return VERSION


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The pool's command line. Parsl's spellings of the options (``--cert_dir``, ``--block_id``,
    ``--hb_period``, ...) are accepted too, and ``None`` for a path means none, so a
    ``launch_cmd`` written for Parsl's ``process_worker_pool.py`` starts this pool unchanged."""
    parser = argparse.ArgumentParser(prog="parsl-repro-worker-pool", description=__doc__.split("\n\n")[0])
    parser.add_argument("-a", "--addresses", required=True, help="comma-separated interchange addresses")
    parser.add_argument("--port", type=int, required=True, help="the interchange's worker port")
    parser.add_argument("--ipc", default=None, help="the interchange's Unix socket, used instead of TCP on its host")
    parser.add_argument("--ipc-host", default=None, help="the host name where --ipc is")
    parser.add_argument("--cert-dir", "--cert_dir", dest="cert_dir", default=None,
                        help="CurveZMQ certificate directory (None: unencrypted)")
    parser.add_argument("-b", "--block-id", "--block_id", dest="block_id", default="0")
    parser.add_argument("-u", "--uid", default=None, help="this pool's id (default: random)")
    parser.add_argument("--max-workers-per-node", "--max_workers_per_node", dest="max_workers_per_node",
                        default="inf")
    parser.add_argument("-c", "--cores-per-worker", type=float, default=1.0)
    parser.add_argument("-m", "--mem-per-worker", type=float, default=0.0, help="GB per worker (0: no limit)")
    parser.add_argument("-p", "--prefetch-capacity", type=int, default=0)
    parser.add_argument("--hb-period", "--hb_period", dest="heartbeat_period", type=float, default=30)
    parser.add_argument("--hb-threshold", "--hb_threshold", dest="heartbeat_threshold", type=float, default=120)
    parser.add_argument("--poll", type=float, default=10, help="poll period in ms (accepted for Parsl parity)")
    parser.add_argument("--address-probe-timeout", "--address_probe_timeout", dest="address_probe_timeout",
                        type=float, default=30)
    parser.add_argument("--drain-period", "--drain_period", dest="drain_period", type=_optional_float, default=0,
                        help="ask to drain this many seconds after starting (0: never)")
    parser.add_argument("--cpu-affinity", default="none")
    parser.add_argument("--available-accelerators", nargs="*", default=[],
                        help="accelerator ids, comma- or space-separated")
    parser.add_argument("--resource-monitoring-interval", type=float, default=0.0)
    parser.add_argument("--enable-mpi-mode", "--enable_mpi_mode", dest="enable_mpi_mode", action="store_true",
                        help="give each task the nodes its resource specification asks for (MPI mode)")
    parser.add_argument("--mpi-launcher", default="mpiexec", choices=("srun", "aprun", "mpiexec"),
                        help="the launcher whose prefix is PARSL_MPI_PREFIX in MPI mode")
    parser.add_argument("--logdir", default=None)
    parser.add_argument("--logconf", default=None,
                        help="a pickled LogConfig to log through, written by the executor (None: the default log)")
    parser.add_argument("-d", "--debug", action="store_true")
    args = parser.parse_args(argv)
    for name in ("cert_dir", "logconf", "logdir", "uid"):
        if getattr(args, name) == "None":
            setattr(args, name, None)
    args.available_accelerators = ",".join(a for item in args.available_accelerators for a in item.split(",") if a)
    return args


def _optional_float(text: str) -> float:
    return 0.0 if text == "None" else float(text)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.uid = args.uid or uuid.uuid4().hex[:12]
    log_config = _start_logging(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return Manager(args, log_config).run()


def _start_logging(args: argparse.Namespace) -> LogConfig | None:
    """Start the manager's log and return the ``LogConfig`` its workers should use, if any.

    By default one file, ``<logdir>/block-<id>/manager-<pid>.log`` (DEBUG with ``--debug``, else
    INFO), that the forked workers share. With ``--logconf``, the run's ``LogConfig`` logs in
    ``<logdir>/block-<id>/<pool id>/`` as ``manager`` and, in each worker, ``worker_<rank>``.
    The file was written by the executor for this pool, so it is trusted to unpickle.
    """
    if args.logconf and args.logconf != "None":
        try:
            with open(args.logconf, "rb") as f:
                log_config = pickle.load(f)
        except Exception:  # unreadable, or a LogConfig class this node cannot import
            _default_logging(args)
            logger.exception("Cannot load the log configuration %s; logging here instead", args.logconf)
            return None
        oneshot_initialize_logging(log_config=log_config, log_dir=_pool_log_dir(args, args.uid), log_name="manager")
        return log_config
    _default_logging(args)
    return None


def _default_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.debug else logging.INFO
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if args.logdir:
        directory = os.path.join(args.logdir, f"block-{args.block_id}")
        os.makedirs(directory, exist_ok=True)
        handlers = [logging.FileHandler(os.path.join(directory, f"manager-{os.getpid()}.log"))]
    logging.basicConfig(level=level, handlers=handlers,
                        format="%(asctime)s %(name)s:%(lineno)d %(processName)s [%(levelname)s] %(message)s")


def _pool_log_dir(args: argparse.Namespace, uid: str) -> pathlib.Path:
    """Where a pool logs through a ``LogConfig``: ``<logdir>/block-<id>/<pool id>`` (as Parsl)."""
    return pathlib.Path(args.logdir or os.getcwd()) / f"block-{args.block_id}" / uid


if __name__ == "__main__":
    sys.exit(main())
