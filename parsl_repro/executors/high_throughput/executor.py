"""``HighThroughputExecutor``: pilot jobs whose worker pools pull tasks from an interchange.

Data flow::

    kernel --submit()--> outbox (deque) --I/O thread--> interchange --> worker pool --> worker
       ^                                       |              (own process)   (one per node)
       +---- future set (dependents launch) <--+  RESULTS (batched) <------------------+

``submit`` serializes the call (a failure to serialize fails that task only, naming the type),
appends it to the outbox and wakes the I/O thread through a pipe. The I/O thread owns the zmq
socket: it sends what is queued as one batch, and completes futures from the result batches
the interchange sends back, which is also where the kernel launches the dependents. It watches
the interchange process: if it dies, every outstanding task fails at once with a message that
says so.

Blocks of worker pools come from the ``provider``; the kernel's job status poller scales them
(``parsl_repro.jobs``). Where each try ran (host, block, pool, pid), the pools registering and
leaving, and per-task resource samples reach the provenance store as events.
"""
from __future__ import annotations

import collections
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from parsl_repro.errors import ConfigurationError
from parsl_repro.events import NodeSeen, ResourceSample, TryPlaced
from parsl_repro.executors.base import SUBMITTING
from parsl_repro.executors.errors import BadStateException, InvalidResourceSpecification
from parsl_repro.executors.high_throughput import protocol as p
from parsl_repro.executors.high_throughput.errors import ManagerLost, WorkerLost
from parsl_repro.executors.status_handling import BlockActivity, BlockProviderExecutor
from parsl_repro.jobs.states import TERMINAL_STATES, JobState, JobStatus
from parsl_repro.providers.base import ExecutionProvider
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin

logger = logging.getLogger(__name__)

DEFAULT_LAUNCH_CMD = ("{worker_pool} {debug} {max_workers_per_node} -a {addresses} "
                      "-p {prefetch_capacity} -c {cores_per_worker} -m {mem_per_worker} --poll {poll_period} "
                      "--port={worker_port} {cert_dir_option} --logdir={logdir} --block-id={{block_id}} "
                      "--hb-period={heartbeat_period} {address_probe_timeout_string} "
                      "--hb-threshold={heartbeat_threshold} --cpu-affinity {cpu_affinity} "
                      "--resource-monitoring-interval={resource_monitoring_interval} "
                      "--available-accelerators={accelerators}")
"""The command each block runs on each node (``launch_cmd``); ``{block_id}`` is filled per block.
``{worker_pool}`` is the ``parsl-repro-worker-pool`` script: found on PATH, else the one installed
beside this interpreter (so an un-activated virtual environment works)."""


def worker_pool_command() -> str:
    found = shutil.which("parsl-repro-worker-pool")
    if found:
        return "parsl-repro-worker-pool"
    beside = os.path.join(os.path.dirname(sys.executable), "parsl-repro-worker-pool")
    if os.access(beside, os.X_OK):
        return beside
    return f"{sys.executable} -m parsl_repro.executors.high_throughput.worker_pool"

SUPPORTED_RESOURCE_KEYS = frozenset({"priority"})
_META_SIZE = p.META.size


class HTEXFuture(Future):
    """The future of one task on a HighThroughputExecutor; ``parsl_task`` is the kernel's
    ``(task id, try id)`` for it, when the kernel submitted it."""

    def __init__(self, task_id: int) -> None:
        super().__init__()
        self.parsl_executor_task_id = task_id
        self.parsl_task: tuple[int, int] | None = None


class HighThroughputExecutor(BlockProviderExecutor, RepresentationMixin):
    """Runs tasks on pools of worker processes started in blocks by a provider.

    Parameters follow Parsl's. ``encrypted`` (default True) authenticates and encrypts every
    connection with CurveZMQ, loopback included; with ``encrypted=False`` connections are
    neither (as in Parsl), which only suits a machine you do not share. The interchange binds
    its client port to ``loopback_address`` and its worker port to ``address`` when given, else
    to ``loopback_address`` too (so workers on other nodes need ``address`` set).
    ``worker_ports`` and ``max_workers`` are accepted as Parsl's older spellings of
    ``worker_port`` and ``max_workers_per_node``.
    """

    @typechecked_config
    def __init__(self, label: str = "HighThroughputExecutor", provider: ExecutionProvider | None = None,
                 launch_cmd: str | None = None, interchange_launch_cmd: Sequence[str] | None = None,
                 address: str | None = None, loopback_address: str = "127.0.0.1",
                 worker_port: int | None = None, worker_ports: tuple[int, int] | None = None,
                 worker_port_range: tuple[int, int] | None = (54000, 55000),
                 interchange_port_range: tuple[int, int] | None = (55000, 56000),
                 storage_access: list | None = None, working_dir: str | None = None, worker_debug: bool = False,
                 cores_per_worker: float = 1.0, mem_per_worker: float | None = None,
                 max_workers_per_node: int | float | None = None, max_workers: int | float | None = None,
                 cpu_affinity: str = "none", available_accelerators: int | Sequence[str] = (),
                 prefetch_capacity: int = 0, heartbeat_threshold: int | float = 120,
                 heartbeat_period: int | float = 30, drain_period: int | None = None, poll_period: int = 10,
                 address_probe_timeout: int | None = None, worker_logdir_root: str | None = None,
                 manager_selector: Any = None,
                 block_error_handler: bool | Callable[[BlockProviderExecutor, dict[str, JobStatus]], None] = True,
                 encrypted: bool = True, remote_monitoring_radio: Any = None) -> None:
        if provider is None:
            from parsl_repro.providers import LocalProvider
            provider = LocalProvider()
        BlockProviderExecutor.__init__(self, provider=provider, block_error_handler=block_error_handler)
        self.label = label
        self.launch_cmd = launch_cmd or DEFAULT_LAUNCH_CMD
        self.interchange_launch_cmd = list(interchange_launch_cmd) if interchange_launch_cmd else \
            [sys.executable, "-m", "parsl_repro.executors.high_throughput.interchange"]
        self.address = address
        self.loopback_address = loopback_address
        self.all_addresses = {address} if address else {loopback_address}
        if worker_ports is not None and worker_port is None:
            worker_port = worker_ports[0]
        self.worker_port = worker_port
        self.worker_ports = worker_ports
        self.worker_port_range = worker_port_range
        self.interchange_port_range = interchange_port_range
        self.storage_access = storage_access
        self.working_dir = working_dir
        self.worker_debug = worker_debug
        self.cores_per_worker = cores_per_worker
        self.mem_per_worker = mem_per_worker
        if max_workers is not None and max_workers_per_node is None:
            max_workers_per_node = max_workers
        self.max_workers_per_node = max_workers_per_node or float("inf")
        self.max_workers = max_workers
        self.cpu_affinity = cpu_affinity
        if isinstance(available_accelerators, int):
            available_accelerators = [str(i) for i in range(available_accelerators)]
        self.available_accelerators = list(available_accelerators)
        if self.available_accelerators:
            self.max_workers_per_node = min(self.max_workers_per_node, len(self.available_accelerators))
        self.prefetch_capacity = prefetch_capacity
        self.heartbeat_threshold = heartbeat_threshold
        self.heartbeat_period = heartbeat_period
        self.drain_period = drain_period
        self.poll_period = poll_period
        self.address_probe_timeout = address_probe_timeout
        self.worker_logdir_root = worker_logdir_root
        self.manager_selector = manager_selector
        self.encrypted = encrypted
        self.remote_monitoring_radio = remote_monitoring_radio
        self.cert_dir: str | None = None
        self.resource_monitoring_interval = 0.0
        self.interchange_proc: subprocess.Popen | None = None
        self._outbox: collections.deque = collections.deque()
        self._commands: collections.deque = collections.deque()
        self._awaiting_reply: collections.deque = collections.deque()
        self._wake_r, self._wake_w = -1, -1
        self._io_thread: threading.Thread | None = None
        self._io_ident = -1
        self._stopping = threading.Event()
        self._task_counter = 0
        self._counter_lock = threading.Lock()
        self._managers: dict[str, dict[str, Any]] = {}
        self._shut_down = False

    # --- properties Parsl exposes --------------------------------------------------------------------
    @property
    def logdir(self) -> str:
        return os.path.join(self.run_dir, self.label)

    @property
    def worker_logdir(self) -> str:
        if self.worker_logdir_root is not None:
            return os.path.join(self.worker_logdir_root, self.label)
        return self.logdir

    @property
    def workers_per_node(self) -> int | float:
        cores = os.cpu_count() or 1
        by_cores = max(1, int(cores / self.cores_per_worker)) if self.cores_per_worker > 0 else cores
        return min(by_cores, self.max_workers_per_node)

    def outstanding(self) -> int:
        """Tasks submitted and not yet returned (queued here, at the interchange, or running)."""
        return len(self._tasks)

    def validate_resource_spec(self, resource_specification: dict) -> None:
        if resource_specification:
            unknown = set(resource_specification) - SUPPORTED_RESOURCE_KEYS
            if unknown:
                raise InvalidResourceSpecification(
                    unknown, f"HighThroughputExecutor {self.label} accepts only {sorted(SUPPORTED_RESOURCE_KEYS)} "
                             f"in parsl_resource_specification, not {sorted(unknown)}")

    # --- start -------------------------------------------------------------------------------------------
    def start(self) -> None:
        from parsl_repro import curvezmq

        super().start()
        os.makedirs(self.logdir, exist_ok=True)
        if self.encrypted and self.cert_dir is None:
            self.cert_dir = curvezmq.create_certificates(self.logdir)
        elif not self.encrypted and self.cert_dir:
            raise ConfigurationError(f"HighThroughputExecutor {self.label}: cert_dir is set but encrypted=False")
        self.resource_monitoring_interval = _resource_interval(self)
        self._start_interchange()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._io_thread = threading.Thread(target=self._io_loop, name=f"htex-io-{self.label}", daemon=True)
        self._io_thread.start()
        self.initialize_scaling()

    def _start_interchange(self) -> None:
        settings = {
            "cert_dir": self.cert_dir, "loopback_address": self.loopback_address,
            "worker_bind_address": self.address or self.loopback_address, "worker_port": self.worker_port,
            "worker_port_range": self.worker_port_range, "interchange_port_range": self.interchange_port_range,
            "heartbeat_period": self.heartbeat_period, "heartbeat_threshold": self.heartbeat_threshold,
            "logdir": self.logdir, "debug": self.worker_debug,
        }
        self.interchange_proc = subprocess.Popen(self.interchange_launch_cmd, stdin=subprocess.PIPE,
                                                 stdout=subprocess.PIPE, close_fds=True, start_new_session=True)
        assert self.interchange_proc.stdin is not None and self.interchange_proc.stdout is not None
        self.interchange_proc.stdin.write((json.dumps(settings) + "\n").encode())
        self.interchange_proc.stdin.flush()
        line = self.interchange_proc.stdout.readline()
        if not line:
            code = self.interchange_proc.wait(10)
            raise BadStateException(self, RuntimeError(
                f"the interchange of {self.label} exited with status {code} before binding its ports; see "
                f"{os.path.join(self.logdir, 'interchange.log')}"))
        ports = json.loads(line)
        self.interchange_port = ports["client_port"]
        self.worker_port = ports["worker_port"]
        logger.info("Interchange of %s started (pid %s): client port %s, worker port %s", self.label,
                    self.interchange_proc.pid, self.interchange_port, self.worker_port)

    def initialize_scaling(self) -> None:
        """Render the worker-pool command that each block runs (``{block_id}`` left to fill)."""
        debug = "--debug" if self.worker_debug else ""
        max_workers = "" if self.max_workers_per_node == float("inf") else \
            f"--max-workers-per-node={self.max_workers_per_node}"
        probe = f"--address-probe-timeout={self.address_probe_timeout}" if self.address_probe_timeout else ""
        self.launch_cmd = self.launch_cmd.format(
            worker_pool=worker_pool_command(), debug=debug, max_workers_per_node=max_workers,
            prefetch_capacity=self.prefetch_capacity,
            address_probe_timeout_string=probe, addresses=",".join(sorted(self.all_addresses)),
            worker_port=self.worker_port, cores_per_worker=self.cores_per_worker,
            mem_per_worker=self.mem_per_worker or 0, nodes_per_block=self.provider.nodes_per_block,
            heartbeat_period=self.heartbeat_period, heartbeat_threshold=self.heartbeat_threshold,
            poll_period=self.poll_period, cert_dir=self.cert_dir, logdir=self.worker_logdir,
            cert_dir_option=f"--cert-dir {self.cert_dir}" if self.cert_dir else "",
            cpu_affinity=self.cpu_affinity, accelerators=",".join(self.available_accelerators),
            resource_monitoring_interval=self.resource_monitoring_interval)
        logger.debug("Launch command of %s: %s", self.label, self.launch_cmd)

    def _get_launch_command(self, block_id: str) -> str:
        return self.launch_cmd.format(block_id=block_id)

    # --- submit --------------------------------------------------------------------------------------------
    def submit(self, func: Callable, resource_specification: dict[str, Any], *args: Any, **kwargs: Any) -> Future:
        from parsl_repro.serialize import pack_res_spec_apply_message

        if self.bad_state_is_set:
            raise self.executor_exception
        self.validate_resource_spec(resource_specification)
        payload = pack_res_spec_apply_message(func, args, kwargs, resource_specification or {})
        with self._counter_lock:
            task_id = self._task_counter
            self._task_counter += 1
        future = HTEXFuture(task_id)
        future.parsl_task = SUBMITTING.get()
        self._tasks[task_id] = future
        self._outbox.append((p.pack_id(task_id), payload))
        if threading.get_ident() != self._io_ident:  # the I/O thread sends its own submissions
            self._wake()
        return future

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # the pipe is full: the I/O thread is already awake

    # --- commands -------------------------------------------------------------------------------------------
    def _command(self, name: str, timeout: float = 30, **fields: Any) -> Any:
        if self._io_thread is None or not self._io_thread.is_alive():
            raise BadStateException(self, RuntimeError(f"executor {self.label} is not running"))
        reply: Future = Future()
        self._commands.append((dict(fields, name=name), reply))
        self._wake()
        return reply.result(timeout)

    def connected_managers(self) -> list[dict[str, Any]]:
        """The worker pools connected now, as the interchange sees them."""
        return self._command("connected_managers")

    def connected_blocks(self) -> list[str]:
        return sorted({m["block_id"] for m in self.connected_managers()})

    def connected_workers(self) -> int:
        return self._command("worker_count")

    def _hold_block(self, block_id: str) -> None:
        self._command("hold_block", block_id=block_id)

    def _hold_manager(self, manager_id: str) -> None:
        self._command("hold_manager", manager=manager_id)

    # --- the I/O thread ---------------------------------------------------------------------------------------
    def _io_loop(self) -> None:
        import zmq

        from parsl_repro import curvezmq

        self._io_ident = threading.get_ident()
        context = curvezmq.ClientContext(self.cert_dir)
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(f"tcp://{self.loopback_address}:{self.interchange_port}")
        sock.send_multipart([p.HELLO, p.dumps({"label": self.label})])
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        next_check = time.monotonic() + 0.5
        try:
            while not self._stopping.is_set():
                events = dict(poller.poll(200))
                if self._wake_r in events:
                    os.read(self._wake_r, 65536)
                if sock in events:
                    self._receive(sock, zmq)  # completing futures here submits their dependents...
                self._send_queued(sock)  # ...which leave in the same pass
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + 0.5
                    if self._interchange_died():
                        return
            self._send_queued(sock)
            sock.send_multipart([p.STOP])
        except Exception as e:  # a bug here would hang every task: fail them instead
            logger.exception("The I/O thread of %s failed", self.label)
            self.set_bad_state_and_fail_all(e)
        finally:
            sock.close(linger=500)
            context.term()

    def _send_queued(self, sock: Any) -> None:
        outbox = self._outbox
        if outbox:
            frames = [p.TASKS]
            while outbox:
                frames.extend(outbox.popleft())
            sock.send_multipart(frames, copy=False)
        while self._commands:
            command, reply = self._commands.popleft()
            self._awaiting_reply.append(reply)
            sock.send_multipart([p.COMMAND, p.dumps(command)])

    def _receive(self, sock: Any, zmq: Any) -> None:
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            tag = frames[0]
            if tag == p.RESULTS:
                self._results(frames)
            elif tag == p.COMMAND:
                if self._awaiting_reply:
                    self._awaiting_reply.popleft().set_result(p.loads(frames[1]))
            elif tag == p.EVENTS:
                self._pool_event(p.loads(frames[1]))

    def _results(self, frames: list[bytes]) -> None:
        from parsl_repro.serialize import deserialize

        tasks = self._tasks
        emit = self.event_sink.emit
        run_id = self.run_id or ""
        for i in range(1, len(frames) - 4, 5):
            manager, task_frame, status, meta, payload = frames[i:i + 5]
            future = tasks.pop(p.unpack_id(task_frame), None)
            if future is None:
                logger.warning("Result for unknown task %s of %s", p.unpack_id(task_frame), self.label)
                continue
            info = self._managers.get(manager.decode(), {})
            if status == p.OK:
                started, pid = p.META.unpack_from(meta)
                self._placed(future, info, started, pid, meta, emit, run_id)
                try:
                    future.set_result(deserialize(payload))
                except Exception as e:
                    future.set_exception(e)
            else:
                lost = p.loads(payload)
                if lost.get("kind") == "worker":
                    future.set_exception(WorkerLost(lost.get("worker"), lost.get("hostname"), lost.get("block_id"),
                                                    lost.get("pid"), lost.get("exitcode")))
                else:
                    future.set_exception(ManagerLost(lost.get("manager", ""), lost.get("hostname", "?"),
                                                     lost.get("block_id"), lost.get("reason")))

    def _placed(self, future: Future, info: dict, started: float, pid: int, meta: bytes, emit: Callable,
                run_id: str) -> None:
        """Tell the store where and when the try ran, with its resource samples."""
        record = getattr(future, "parsl_task", None)
        if record is None:
            return
        task_id, try_id = record
        emit(TryPlaced(run_id, task_id, try_id, started, self.label, info.get("hostname"), info.get("block_id"),
                       info.get("manager"), pid))
        if len(meta) > _META_SIZE:
            for s in p.loads(meta[_META_SIZE:]):
                emit(ResourceSample(run_id, task_id, try_id, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8],
                                    s[9], s[10], s[11]))

    def _pool_event(self, event: dict[str, Any]) -> None:
        uid = event["manager"]
        if event["event"] == "registered":
            self._managers[uid] = event
        active = event["event"] == "registered"
        self.event_sink.emit(NodeSeen(self.run_id or "", self.label, uid, time.time(), event.get("hostname", "?"),
                                      event.get("block_id"), int(event.get("cpu_count") or 0),
                                      int(event.get("total_memory") or 0), int(event.get("worker_count") or 0),
                                      event.get("python_version", ""), active))

    def _interchange_died(self) -> bool:
        proc = self.interchange_proc
        if proc is None or proc.poll() is None:
            return False
        error = BadStateException(self, RuntimeError(
            f"the interchange of executor {self.label} (pid {proc.pid}) exited with status {proc.returncode}; "
            f"{len(self._tasks)} outstanding tasks failed. See {os.path.join(self.logdir, 'interchange.log')}"))
        logger.error("%s", error)
        self.set_bad_state_and_fail_all(error)
        return True

    # --- scaling ------------------------------------------------------------------------------------------------
    def block_activity(self) -> dict[str, BlockActivity]:
        """Running tasks and shortest idle time of each block with connected, active pools: what
        scale-in chooses by (longest idle first, and only idle blocks under ``max_idletime``)."""
        activity: dict[str, BlockActivity] = {}
        for manager in self.connected_managers():
            if not manager["active"]:
                continue
            tasks, idle = activity.get(manager["block_id"], (0, float("inf")))
            activity[manager["block_id"]] = BlockActivity(tasks + manager["tasks"], min(idle, manager["idle_duration"]))
        return activity

    def status(self) -> dict[str, JobStatus]:
        """The provider's block states, where a block that ended without its workers ever
        registering becomes MISSING (its job script or environment is broken)."""
        statuses = super().status()
        try:
            registered = set(self._command("registered_blocks"))
        except Exception:
            return statuses
        result = {}
        for block_id, status in statuses.items():
            if status.terminal and block_id not in registered and status.state != JobState.SCALED_IN:
                message = status.message or (
                    f"block {block_id} ended without its workers registering; see the block's stdout/stderr in "
                    f"{getattr(self.provider, 'script_dir', 'submit_scripts')}")
                status = JobStatus(JobState.MISSING, message, exit_code=status.exit_code,
                                   stdout_path=status.stdout_path, stderr_path=status.stderr_path)
            result[block_id] = status
        return result

    # --- shutdown -------------------------------------------------------------------------------------------------
    def shutdown(self, timeout: float = 10.0) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        logger.info("Shutting down HighThroughputExecutor %s", self.label)
        try:
            if self.provider is not None and self.blocks_to_job_id:
                live = [job for block, job in self.blocks_to_job_id.items()
                        if self._status.get(block) is None or self._status[block].state not in TERMINAL_STATES]
                if live:
                    self.provider.cancel(live)
        except Exception:
            logger.exception("Could not cancel the blocks of %s", self.label)
        self._stopping.set()
        if self._io_thread is not None:
            self._wake()
            self._io_thread.join(timeout)
        proc = self.interchange_proc
        if proc is not None:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("The interchange of %s did not exit; killing it", self.label)
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1
        pending = list(self._tasks.values())
        self._tasks.clear()
        for future in pending:
            if not future.done():
                future.set_exception(BadStateException(self, RuntimeError(f"executor {self.label} was shut down")))
        super().shutdown()


def _resource_interval(executor: HighThroughputExecutor) -> float:
    """Seconds between resource samples of running tasks; 0 turns sampling off."""
    settings = getattr(executor, "resource_monitoring", None)
    if settings is None:
        return 30.0
    enabled, interval = settings
    return float(interval) if enabled else 0.0
