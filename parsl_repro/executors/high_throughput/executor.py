"""``HighThroughputExecutor``: pilot jobs whose worker pools pull tasks from an interchange.

Data flow::

    kernel --submit()--> outbox (deque) --I/O thread--> interchange --> worker pool --> worker
       ^                                       |              (own process)   (one per node)
       +---- future set (dependents launch) <--+  RESULTS (batched) <------------------+

``submit`` serializes the call (a failure to serialize fails that task only, naming the type),
appends it to the outbox of the ``InterchangeLink`` and wakes the I/O thread through a pipe;
commands (``connected_managers()`` and the like) queue there too and wait for their reply. The
I/O thread owns the link (a local socket pair to the interchange, which is our child process):
it sends what is queued as one batch, and completes
futures from the result batches the interchange sends back, which is also where the kernel
launches the dependents. It watches the interchange process: if it dies, every outstanding
task fails at once with a message that says so.

Blocks of worker pools come from the ``provider``; the kernel's job status poller scales them
(``parsl_repro.jobs``). Where each try ran (host, block, pool, pid), the pools registering and
leaving, and per-task resource samples reach the provenance store as events.
"""
from __future__ import annotations

import base64
import collections
import json
import logging
import math
import os
import pickle
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from parsl_repro.events import NodeSeen, ResourceSample, TryPlaced
from parsl_repro.executors.base import SUBMITTING
from parsl_repro.executors.errors import BadStateException, InvalidResourceSpecification
from parsl_repro.executors.high_throughput import protocol as p
from parsl_repro.executors.high_throughput.errors import (
    CommandClientBadError,
    CommandClientTimeoutError,
    ManagerLost,
    WorkerLost,
)
from parsl_repro.executors.high_throughput.manager_selector import ManagerSelector, RandomManagerSelector
from parsl_repro.executors.status_handling import BlockActivity, BlockProviderExecutor
from parsl_repro.jobs.states import TERMINAL_STATES, JobState, JobStatus
from parsl_repro.logconfigs.base import LogConfig
from parsl_repro.providers.base import ExecutionProvider
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin

logger = logging.getLogger(__name__)

DEFAULT_LAUNCH_CMD = ("process_worker_pool.py {debug} {max_workers_per_node} -a {addresses} "
                      "-p {prefetch_capacity} -c {cores_per_worker} -m {mem_per_worker} --poll {poll_period} "
                      "--port={worker_port} {cert_dir_option} --logdir={logdir} --block-id={{block_id}} "
                      "--hb-period={heartbeat_period} {address_probe_timeout_string} {logconf_option} "
                      "--hb-threshold={heartbeat_threshold} --drain-period={drain_period} "
                      "--cpu-affinity {cpu_affinity} "
                      "--resource-monitoring-interval={resource_monitoring_interval} {enable_mpi_mode} "
                      "--available-accelerators={accelerators} {ipc_option}")
"""The command each block runs on each node (``launch_cmd``); ``{block_id}`` is filled per block.
It names the pool as Parsl does, ``process_worker_pool.py``, so that Parsl code reading
``launch_cmd`` sees what it expects; in any ``launch_cmd``, that name (or ``{worker_pool}``)
stands for this project's pool, ``parsl-repro-worker-pool`` (found on PATH, else the one
installed beside this interpreter, so an un-activated virtual environment works): Parsl's own
script, which speaks another protocol, is never run. ``{ipc_option}`` names the interchange's
Unix socket, which pools on this host use instead of TCP."""

_PARSL_POOL_SCRIPT = re.compile(r"(?<![\w./-])process_worker_pool\.py(?![\w.-])")


def worker_pool_command() -> str:
    found = shutil.which("parsl-repro-worker-pool")
    if found:
        return "parsl-repro-worker-pool"
    beside = os.path.join(os.path.dirname(sys.executable), "parsl-repro-worker-pool")
    if os.access(beside, os.X_OK):
        return beside
    return f"{sys.executable} -m parsl_repro.executors.high_throughput.worker_pool"

DEFAULT_INTERCHANGE_LAUNCH_CMD = ["interchange.py"]
"""How the interchange process is started (``interchange_launch_cmd``); it reads its settings as
one JSON line on standard input. As in ``launch_cmd``, Parsl's name stands for ours: a command
whose first word is ``interchange.py`` runs ``INTERCHANGE_MODULE`` with this interpreter."""

INTERCHANGE_MODULE = "parsl_repro.executors.high_throughput.interchange"


def interchange_command(launch_cmd: Sequence[str]) -> list[str]:
    """``launch_cmd`` with Parsl's ``interchange.py`` (its first word) made this project's."""
    if launch_cmd and launch_cmd[0] == "interchange.py":
        return [sys.executable, "-m", INTERCHANGE_MODULE, *launch_cmd[1:]]
    return list(launch_cmd)

SUPPORTED_RESOURCE_KEYS = frozenset({"priority"})
IPC_PATH_MAX = 100
"""Longest Unix socket path used for local pools (Linux allows 107 bytes); longer: TCP only."""
_META_SIZE = p.META.size

_PARSL_COMMANDS = {"MANAGERS": "connected_managers", "MANAGERS_PACKAGES": "managers_packages",
                   "CONNECTED_BLOCKS": "registered_blocks", "WORKERS": "worker_count",
                   "OUTSTANDING_C": "outstanding", "WORKER_BINDS": "worker_port"}
"""Parsl's command-channel spellings and the interchange commands they mean here."""


class InterchangeLink:
    """The executor's one connection to its interchange.

    Parsl opens three zmq connections (``outgoing_q`` for tasks, ``incoming_q`` for results,
    ``command_client`` for commands). Here one local socket pair carries all three
    (``protocol.FrameStream``: the interchange is our child, and no other process can reach the
    pair); the executor's I/O thread alone owns it, so the executor exposes this object under all
    three names. ``put`` and ``run`` may be called from any thread: they queue, and wake the I/O
    thread through a pipe. ``zmq_context`` is the CurveZMQ client context of the run's
    certificates (``zmq_context.cert_dir``), as Parsl's links have; no socket is made on it.
    """

    def __init__(self, cert_dir: str | None, stream: p.FrameStream) -> None:
        from parsl_repro import curvezmq

        self.zmq_context = curvezmq.ClientContext(cert_dir)
        self.stream = stream
        self.outbox: collections.deque[tuple[bytes, bytes]] = collections.deque()
        self.commands: collections.deque[tuple[dict[str, Any], Future]] = collections.deque()
        self.awaiting_reply: collections.deque[Future] = collections.deque()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        self.io_ident = -1
        self._closed: BaseException | None = None
        self._lock = threading.Lock()

    def put(self, task: tuple[bytes, bytes]) -> None:
        """Queue one task (its packed id and payload) for the next batch to the interchange."""
        self.outbox.append(task)
        if threading.get_ident() != self.io_ident:  # the I/O thread sends its own submissions
            self.wake()

    def wake(self) -> None:
        try:
            os.write(self.wake_w, b"\0")
        except BlockingIOError:
            pass  # the pipe is full: the I/O thread is already awake
        except OSError:
            pass  # closed: the link is shut down and nothing more will be sent

    def run(self, command: str | dict[str, Any], timeout_s: float | None = None) -> Any:
        """Ask the interchange ``command`` and return its reply.

        ``command`` is a dict ``{"name": ..., **fields}`` or one of Parsl's names (``"MANAGERS"``,
        ``"MANAGERS_PACKAGES"``, ``"CONNECTED_BLOCKS"``, ``"WORKERS"``, ``"OUTSTANDING_C"``,
        ``"WORKER_BINDS"``). Raises ``CommandClientTimeoutError`` after ``timeout_s`` seconds and
        ``CommandClientBadError`` once the link is closed."""
        if isinstance(command, str):
            command = {"name": _PARSL_COMMANDS.get(command, command)}
        reply: Future = Future()
        with self._lock:
            if self._closed is not None:
                raise CommandClientBadError(f"the connection to the interchange is closed: {self._closed}")
            self.commands.append((command, reply))
        self.wake()
        try:
            return reply.result(timeout_s)
        except TimeoutError:
            raise CommandClientTimeoutError(
                f"the interchange did not answer {command['name']!r} within {timeout_s} s") from None

    def close(self, reason: BaseException | None = None) -> None:
        """Fail every command still waiting for a reply and refuse new ones (the I/O thread
        calls this as it exits). Idempotent."""
        with self._lock:
            if self._closed is None:
                self._closed = reason or RuntimeError("closed")
            waiting = [reply for _, reply in self.commands] + list(self.awaiting_reply)
            self.commands.clear()
            self.awaiting_reply.clear()
        for reply in waiting:
            if not reply.done():
                reply.set_exception(CommandClientBadError(f"the connection to the interchange closed: {self._closed}"))

    def close_pipe(self) -> None:
        for fd in (self.wake_r, self.wake_w):
            if fd >= 0:
                os.close(fd)
        self.wake_r = self.wake_w = -1


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
                 manager_selector: ManagerSelector | None = None,
                 block_error_handler: bool | Callable[[BlockProviderExecutor, dict[str, JobStatus]], None] = True,
                 encrypted: bool = True, remote_monitoring_radio: Any = None,
                 short_task_prefetch: bool = True) -> None:
        if provider is None:
            from parsl_repro.providers import LocalProvider
            provider = LocalProvider()
        BlockProviderExecutor.__init__(self, provider=provider, block_error_handler=block_error_handler)
        self.label = label
        self.launch_cmd = launch_cmd or DEFAULT_LAUNCH_CMD
        self.interchange_launch_cmd = list(interchange_launch_cmd) if interchange_launch_cmd else \
            list(DEFAULT_INTERCHANGE_LAUNCH_CMD)
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
        self.prefetch_capacity = prefetch_capacity
        self.short_task_prefetch = short_task_prefetch
        self.heartbeat_threshold = heartbeat_threshold
        self.heartbeat_period = heartbeat_period
        self.drain_period = drain_period
        self.poll_period = poll_period
        self.address_probe_timeout = address_probe_timeout
        self.worker_logdir_root = worker_logdir_root
        self.manager_selector = manager_selector or RandomManagerSelector()
        self.encrypted = encrypted
        if remote_monitoring_radio is None:  # Parsl's default for HTEX: events ride the result stream
            from parsl_repro.monitoring.radios.htex import HTEXRadio

            remote_monitoring_radio = HTEXRadio()
        self.remote_monitoring_radio = remote_monitoring_radio
        self.cert_dir: str | None = None
        self.log_config: LogConfig | None = None  # the run's, set by the kernel before start()
        self.logconf_path: str | None = None
        self.resource_monitoring_interval = 0.0
        self.interchange_proc: subprocess.Popen | None = None
        self.enable_mpi_mode = type(self).enable_mpi_mode  # on the instance: submit reads it per task
        self._link: InterchangeLink | None = None
        self._result_queue_thread: threading.Thread | None = None
        self._result_queue_thread_exit = threading.Event()
        self._task_counter = 0
        self._counter_lock = threading.Lock()
        self._managers: dict[str, dict[str, Any]] = {}
        self._active_pools: set[str] = set()
        self._pool_busy: dict[str, bool] = {}  # by pool: whether its last node record says busy
        self._shut_down = False
        self._ipc_dir: str | None = None
        self.worker_ipc: str | None = None

    enable_mpi_mode: bool = False
    """MPI mode (as Parsl, a class attribute, on in ``MPIExecutor``): each task asks for nodes in
    its resource specification and the pool on a block's first node gives them out; see
    ``mpi_resource_management``."""
    mpi_launcher: str = "mpiexec"
    """Which launcher's prefix a task sees as ``PARSL_MPI_PREFIX`` in MPI mode."""

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
        """Workers each node of a block runs, as the scaling strategy counts them: the smallest
        of ``max_workers_per_node``, the provider's ``cores_per_node / cores_per_worker`` and
        ``mem_per_node / mem_per_worker`` (when the provider says), and the number of
        ``available_accelerators``; 1 when nothing bounds it (as Parsl, which cannot know the
        node before the pool starts there)."""
        slots: list[int | float] = [self.max_workers_per_node]
        cores = getattr(self.provider, "cores_per_node", None)
        if cores is not None and self.cores_per_worker > 0:
            slots.append(math.floor(cores / self.cores_per_worker))
        memory = getattr(self.provider, "mem_per_node", None)
        if memory is not None and self.mem_per_worker:
            slots.append(math.floor(memory / self.mem_per_worker))
        if self.available_accelerators:
            slots.append(len(self.available_accelerators))
        count = min(slots)
        return 1 if count == float("inf") else count

    def outstanding(self) -> int:
        """Tasks submitted and not yet returned (queued here, at the interchange, or running)."""
        return len(self._tasks)

    def validate_resource_spec(self, resource_specification: dict) -> None:
        """Raise ``InvalidResourceSpecification`` if the task asks for anything but ``priority``
        (``submit`` calls this for every task). In MPI mode, the MPI keys instead (see
        ``mpi_prefix_composer.validate_resource_spec``)."""
        if self.enable_mpi_mode:
            from parsl_repro.executors.high_throughput.mpi_prefix_composer import validate_resource_spec
            return validate_resource_spec(resource_specification)
        if resource_specification:
            unknown = set(resource_specification) - SUPPORTED_RESOURCE_KEYS
            priority = resource_specification.get("priority")
            if priority is not None and (isinstance(priority, bool) or not isinstance(priority, (int, float))):
                raise InvalidResourceSpecification(
                    {"priority"}, f"priority must be a number (lower runs first), not {priority!r}")
            if unknown:
                message = (f"Task resource specification only accepts these types of resources: "
                           f"{', '.join(sorted(SUPPORTED_RESOURCE_KEYS))} (HighThroughputExecutor {self.label} "
                           f"got {sorted(unknown)})")
                logger.error(message)
                raise InvalidResourceSpecification(unknown, message)

    # --- start -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the interchange process and the I/O thread connected to it; returns once the
        interchange has bound its ports. Blocks are left to the job status poller."""
        from parsl_repro import curvezmq

        super().start()
        os.makedirs(self.logdir, exist_ok=True)
        if self.encrypted and self.cert_dir is None:
            self.cert_dir = curvezmq.create_certificates(self.logdir)
        elif not self.encrypted and self.cert_dir:
            raise AttributeError(
                f"HighThroughputExecutor {self.label}: the certificates directory (cert_dir={self.cert_dir!r}) is "
                "set but encrypted is False. Either change cert_dir to None or encrypted to True.")
        self.resource_monitoring_interval = _resource_interval(self)
        self._write_log_config()
        stream = self._start_local_interchange_process()
        self._link = InterchangeLink(self.cert_dir, stream)
        self._start_result_queue_thread()
        self.initialize_scaling()

    @property
    def outgoing_q(self) -> InterchangeLink:
        """Where ``submit`` queues tasks for the interchange (the one ``InterchangeLink``)."""
        if self._link is None:
            raise AttributeError(f"HighThroughputExecutor {self.label} has not started: no outgoing_q")
        return self._link

    @outgoing_q.setter
    def outgoing_q(self, link: Any) -> None:
        self._link = link

    incoming_q = outgoing_q
    """Where results come from (the same ``InterchangeLink``: one socket carries both ways)."""
    command_client = outgoing_q
    """Where commands go (the same ``InterchangeLink``); ``command_client.run("MANAGERS")`` works
    as in Parsl."""

    def _start_result_queue_thread(self) -> None:
        """Start the I/O thread: it sends queued tasks and commands, and completes futures from
        the results that come back."""
        self._result_queue_thread = threading.Thread(target=self._io_loop, name=f"htex-io-{self.label}",
                                                     daemon=True)
        self._result_queue_thread.start()

    def _write_log_config(self) -> None:
        """With a run ``LogConfig``, pickle it to ``<logdir>/log_config/log_config.pkl`` (a directory
        only this user can read) for the worker pools, which load it from there (``--logconf``):
        their command line only names the file, and a file on the shared file system is how
        pools on other nodes see the executor's run directory anyway."""
        if self.log_config is None:
            self.logconf_path = None
            return
        directory = os.path.join(self.logdir, "log_config")
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.logconf_path = os.path.join(directory, "log_config.pkl")
        with open(self.logconf_path, "wb") as f:
            pickle.dump(self.log_config, f)

    def _start_local_interchange_process(self) -> p.FrameStream:
        """Start the interchange and wait for it to report the port it bound; returns the link
        to it (our end of the socket pair whose other end it inherits)."""
        from parsl_repro.serialize import serialize

        ours, theirs = socket.socketpair()
        # pools on this host reach the interchange over a Unix socket in a directory only this
        # user can enter (quicker than TCP; CurveZMQ still applies); remote pools use TCP
        self._ipc_dir = tempfile.mkdtemp(prefix="parsl-repro-", dir="/tmp" if os.path.isdir("/tmp") else None)
        self.worker_ipc = os.path.join(self._ipc_dir, "pools")
        if len(os.fsencode(self.worker_ipc)) > IPC_PATH_MAX:  # a Unix socket's path is short: TCP only
            shutil.rmtree(self._ipc_dir, ignore_errors=True)
            self._ipc_dir = self.worker_ipc = None
        settings = {
            "client_fd": theirs.fileno(), "worker_ipc": self.worker_ipc,
            "cert_dir": self.cert_dir, "loopback_address": self.loopback_address,
            "worker_bind_address": self.address or self.loopback_address, "worker_port": self.worker_port,
            "worker_port_range": self.worker_port_range, "interchange_port_range": self.interchange_port_range,
            "heartbeat_period": self.heartbeat_period, "heartbeat_threshold": self.heartbeat_threshold,
            "logdir": self.logdir, "debug": self.worker_debug,
            # MPI tasks wait in their pool for nodes: holding more there would only delay them
            "short_task_prefetch": self.short_task_prefetch and not self.enable_mpi_mode,
            "log_config": None if self.log_config is None else base64.b64encode(pickle.dumps(self.log_config)).decode(),
            # the interchange's default needs no deserializing (and no serialize import there)
            "manager_selector": None if type(self.manager_selector) is RandomManagerSelector
            else base64.b64encode(serialize(self.manager_selector)).decode(),
        }
        try:
            self.interchange_proc = subprocess.Popen(interchange_command(self.interchange_launch_cmd),
                                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
                                                     start_new_session=True, pass_fds=(theirs.fileno(),))
        except BaseException:
            ours.close()
            if self._ipc_dir is not None:
                shutil.rmtree(self._ipc_dir, ignore_errors=True)
            raise
        finally:
            theirs.close()
        assert self.interchange_proc.stdin is not None and self.interchange_proc.stdout is not None
        self.interchange_proc.stdin.write((json.dumps(settings) + "\n").encode())
        self.interchange_proc.stdin.flush()
        line = self.interchange_proc.stdout.readline()
        if not line:
            ours.close()
            code = self.interchange_proc.wait(10)
            raise BadStateException(self, RuntimeError(
                f"the interchange of {self.label} exited with status {code} before binding its ports; see "
                f"{os.path.join(self.logdir, 'interchange.log')}"))
        ports = json.loads(line)
        self.worker_port = ports["worker_port"]
        logger.info("Interchange of %s started (pid %s): worker port %s", self.label, self.interchange_proc.pid,
                    self.worker_port)
        return p.FrameStream(ours)

    def initialize_scaling(self) -> None:
        """Render the worker-pool command that each block runs (``{block_id}`` left to fill)."""
        debug = "--debug" if self.worker_debug else ""
        max_workers = "" if self.max_workers_per_node == float("inf") else \
            f"--max-workers-per-node={self.max_workers_per_node}"
        probe = f"--address-probe-timeout={self.address_probe_timeout}" if self.address_probe_timeout else ""
        pool = worker_pool_command()
        self.launch_cmd = _PARSL_POOL_SCRIPT.sub(lambda _: pool.replace("{", "{{").replace("}", "}}"),
                                                 self.launch_cmd).format(
            worker_pool=pool, debug=debug, max_workers_per_node=max_workers,
            prefetch_capacity=self.prefetch_capacity,
            address_probe_timeout_string=probe, addresses=",".join(sorted(self.all_addresses)),
            worker_port=self.worker_port, cores_per_worker=self.cores_per_worker,
            mem_per_worker=self.mem_per_worker or 0, nodes_per_block=self.provider.nodes_per_block,
            heartbeat_period=self.heartbeat_period, heartbeat_threshold=self.heartbeat_threshold,
            poll_period=self.poll_period, cert_dir=self.cert_dir, logdir=self.worker_logdir,
            drain_period=self.drain_period or 0,
            cert_dir_option=f"--cert-dir {self.cert_dir}" if self.cert_dir else "",
            logconf=self.logconf_path, logconf_option=f"--logconf {self.logconf_path}" if self.logconf_path else "",
            cpu_affinity=self.cpu_affinity, accelerators=",".join(self.available_accelerators),
            resource_monitoring_interval=self.resource_monitoring_interval,
            enable_mpi_mode=f"--enable-mpi-mode --mpi-launcher={self.mpi_launcher}" if self.enable_mpi_mode else "",
            mpi_launcher=self.mpi_launcher,
            ipc_option=f"--ipc={self.worker_ipc} --ipc-host={socket.gethostname()}" if self.worker_ipc else "")
        logger.debug("Launch command of %s: %s", self.label, self.launch_cmd)

    def _get_launch_command(self, block_id: str) -> str:
        return self.launch_cmd.format(block_id=block_id)

    # --- submit --------------------------------------------------------------------------------------------
    def submit(self, func: Callable, resource_specification: dict[str, Any], *args: Any, **kwargs: Any) -> Future:
        from parsl_repro.serialize import pack_res_spec_apply_message

        if self.bad_state_is_set:
            raise self.executor_exception
        self.validate_resource_spec(resource_specification)
        if self.enable_mpi_mode:
            return self._submit_mpi(func, resource_specification, args, kwargs)
        priority = resource_specification.get("priority") if resource_specification else None
        return self._queue(pack_res_spec_apply_message(func, args, kwargs, resource_specification or {}), priority)

    def _submit_mpi(self, func: Callable, resource_specification: dict[str, Any], args: tuple,
                    kwargs: dict[str, Any]) -> HTEXFuture:
        """An MPI task travels with its completed resource specification in a context, which the
        pool reads (without unpacking the call) to give it nodes before a worker runs it."""
        from parsl_repro.executors.high_throughput.mpi_prefix_composer import complete_resource_spec
        from parsl_repro.serialize import pack_apply_message, serialize

        context = {"resource_spec": complete_resource_spec(resource_specification)}
        return self._queue(p.pack_context_payload(serialize(context), pack_apply_message(func, args, kwargs)))

    def submit_payload(self, context: dict[str, Any], buffer: bytes) -> HTEXFuture:
        """Submit an already packed task, run on a worker as ``context`` says.

        With ``context["task_executor"] = {"f": "package.module.function", "a": args, "k": kwargs}``
        the worker imports that function and returns ``function(buffer, *args, **kwargs)``
        instead of unpacking ``buffer`` as a call; with ``context["resource_spec"]`` the task sees
        it as ``PARSL_<KEY>`` environment variables, as ``submit`` does. An empty context runs
        ``buffer`` (a ``pack_apply_message`` call) as ``submit`` would. The context is serialized
        with ``parsl_repro.serialize``, so it must be picklable."""
        from parsl_repro.serialize import serialize

        if self.bad_state_is_set:
            raise self.executor_exception
        return self._queue(p.pack_context_payload(serialize(context), buffer) if context else buffer)

    def _queue(self, payload: bytes, priority: float | None = None) -> HTEXFuture:
        link = self._link
        if link is None:
            raise BadStateException(self, RuntimeError(f"executor {self.label} has not been started"))
        with self._counter_lock:
            self._task_counter += 1
            task_id = self._task_counter  # from 1, as Parsl counts
        future = HTEXFuture(task_id)
        future.parsl_task = SUBMITTING.get()
        self._tasks[task_id] = future
        link.put((p.pack_id(task_id) if priority is None else p.pack_prioritized_id(task_id, priority), payload))
        return future

    # --- commands -------------------------------------------------------------------------------------------
    def _command(self, name: str, timeout: float = 30, **fields: Any) -> Any:
        thread = self._result_queue_thread
        if self._link is None or thread is None or not thread.is_alive():
            raise BadStateException(self, RuntimeError(f"executor {self.label} is not running"))
        return self._link.run(dict(fields, name=name), timeout)

    def connected_managers(self) -> list[dict[str, Any]]:
        """The worker pools connected now, as the interchange sees them: ``manager`` (pool id),
        ``block_id``, ``hostname``, ``worker_count``, ``tasks``, ``idle_duration``, ``active``,
        ``draining``, ``python_version``, ``parsl_version``."""
        return self._command("connected_managers")

    def connected_managers_packages(self) -> dict[str, dict[str, str]]:
        """The Python distributions installed where each connected pool runs: pool id ->
        {name: version}. Names are normalised as in wheel file names (lower case, runs of
        ``-``, ``_`` and ``.`` become ``_``), so this package is ``parsl_repro``."""
        return self._command("managers_packages")

    def connected_blocks(self) -> list[str]:
        """Every block whose pools have registered since the executor started, including
        blocks that have since ended (as Parsl)."""
        return self._command("registered_blocks")

    def connected_workers(self) -> int:
        return self._command("worker_count")

    def _hold_block(self, block_id: str) -> None:
        self._command("hold_block", block_id=block_id)

    def _hold_manager(self, manager_id: str) -> None:
        self._command("hold_manager", manager=manager_id)

    # --- the I/O thread ---------------------------------------------------------------------------------------
    def _io_loop(self) -> None:
        link = self._link
        assert link is not None
        link.io_ident = threading.get_ident()
        stream = link.stream
        stream.send([p.HELLO, p.dumps({"label": self.label})])
        poller = select.poll()
        poller.register(stream.fd, select.POLLIN)
        stream_flags = select.POLLIN
        poller.register(link.wake_r, select.POLLIN)
        next_check = time.monotonic() + 0.5
        stopping = self._result_queue_thread_exit
        failure: BaseException | None = None
        try:
            while not stopping.is_set():
                events = dict(poller.poll(200))
                if link.wake_r in events:
                    os.read(link.wake_r, 65536)
                ready = events.get(stream.fd, 0)
                if ready & select.POLLOUT:
                    stream.flush()
                if ready & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    try:
                        self._receive(stream)  # completing futures here submits their dependents...
                    except EOFError:  # the interchange is gone: its exit status says why
                        deadline = time.monotonic() + 5
                        while not self._interchange_died():
                            if time.monotonic() > deadline:  # alive but deaf (a wrapper command?)
                                self.set_bad_state_and_fail_all(BadStateException(self, RuntimeError(
                                    f"the interchange of executor {self.label} closed its link; see "
                                    f"{os.path.join(self.logdir, 'interchange.log')}")))
                                break
                            time.sleep(0.01)
                        return
                self._send_queued(stream, link)  # ...which leave in the same pass
                wanted = select.POLLIN | select.POLLOUT if stream.pending else select.POLLIN
                if wanted != stream_flags:  # wait for room only while something waits to go
                    poller.modify(stream.fd, wanted)
                    stream_flags = wanted
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + 0.5
                    if self._interchange_died():
                        return
            self._send_queued(stream, link)
            stream.send([p.STOP])
            deadline = time.monotonic() + 5
            while stream.pending and time.monotonic() < deadline:  # the last tasks and STOP must arrive
                poller.modify(stream.fd, select.POLLOUT)
                poller.poll(100)
                stream.flush()
        except Exception as e:  # a bug here would hang every task: fail them instead
            logger.exception("The I/O thread of %s failed", self.label)
            failure = e
            self.set_bad_state_and_fail_all(e)
        finally:
            link.close(failure or RuntimeError(f"executor {self.label} is shutting down"))
            stream.sock.close()
            link.zmq_context.term()

    def _send_queued(self, stream: p.FrameStream, link: InterchangeLink) -> None:
        outbox = link.outbox
        if outbox:
            frames = [p.TASKS]
            while outbox:
                frames.extend(outbox.popleft())
            stream.send(frames)
        commands = link.commands
        while commands:
            command, reply = commands.popleft()
            link.awaiting_reply.append(reply)
            stream.send([p.COMMAND, p.dumps(command)])

    def _receive(self, stream: p.FrameStream) -> None:
        for frames in stream.receive():
            tag = frames[0]
            if tag == p.RESULTS:
                self._results(frames)
            elif tag == p.COMMAND:
                awaiting = self._link.awaiting_reply if self._link is not None else None
                if awaiting:
                    reply = awaiting.popleft()
                    if not reply.done():  # else its caller gave up waiting
                        reply.set_result(p.loads(frames[1]))
            elif tag == p.EVENTS:
                events = p.loads(frames[1])
                for event in events if isinstance(events, list) else (events,):
                    self._pool_event(event)

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
        """A pool registered, turned busy or idle, or was lost or drained: one node record each,
        as Parsl's monitoring keeps them."""
        uid = event["manager"]
        kind = event["event"]
        if kind == "registered":
            self._managers[uid] = event
        active = kind in ("registered", "busy", "idle")
        if active:
            self._active_pools.add(uid)
        else:
            self._active_pools.discard(uid)
        known = self._managers.get(uid, {})
        self._pool_busy[uid] = kind == "busy"
        self.event_sink.emit(NodeSeen(self.run_id or "", self.label, uid, event.get("time") or time.time(),
                                      event.get("hostname", "?"),
                                      event.get("block_id"), int(known.get("cpu_count") or 0),
                                      int(known.get("total_memory") or 0), int(event.get("worker_count") or 0),
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
        """Cancel live blocks, stop the I/O thread and the interchange (which tells its pools to
        stop), and fail whatever tasks are still outstanding. The interchange gets ``timeout``
        seconds to exit after SIGTERM before it is killed. Safe to call more than once."""
        if self._shut_down:
            return
        self._shut_down = True
        proc = self.interchange_proc
        if proc is None:
            logger.info("HighThroughputExecutor has not started; skipping shutdown")
            return
        logger.info("Attempting HighThroughputExecutor shutdown (%s)", self.label)
        try:
            if self.provider is not None and self.blocks_to_job_id:
                live = [job for block, job in self.blocks_to_job_id.items()
                        if self._status.get(block) is None or self._status[block].state not in TERMINAL_STATES]
                if live:
                    self.provider.cancel(live)
        except Exception:
            logger.exception("Could not cancel the blocks of %s", self.label)
        self._result_queue_thread_exit.set()
        if self._result_queue_thread is not None and self._link is not None:
            self._link.wake()  # the I/O thread sends what is queued, then STOP
            self._result_queue_thread.join(timeout)
        self._stop_interchange(proc, timeout)
        if self._ipc_dir is not None:
            shutil.rmtree(self._ipc_dir, ignore_errors=True)
        for uid in list(self._active_pools):  # their pools stop with the interchange
            if self._pool_busy.get(uid) and not self._tasks:  # idle since its last result, not yet recorded
                self._pool_event(dict(self._managers.get(uid, {}), manager=uid, event="idle"))
            self._pool_event(dict(self._managers.get(uid, {}), manager=uid, event="stopped"))
        if self._link is not None:
            self._link.close(RuntimeError(f"executor {self.label} was shut down"))
            self._link.close_pipe()
        pending = list(self._tasks.values())
        self._tasks.clear()
        for future in pending:
            if not future.done():
                future.set_exception(BadStateException(self, RuntimeError(f"executor {self.label} was shut down")))
        super().shutdown()
        logger.info("Finished HighThroughputExecutor shutdown (%s)", self.label)

    def _stop_interchange(self, proc: subprocess.Popen, timeout: float) -> None:
        """Close the interchange's pipe and send it SIGTERM (either makes it stop its pools and
        exit); SIGKILL if it has not exited after ``timeout`` seconds."""
        pid = getattr(proc, "pid", "?")
        stdin = getattr(proc, "stdin", None)
        if stdin is not None:
            try:
                stdin.close()
            except OSError:
                pass
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.warning("Unable to terminate Interchange process of %s (pid %s) in %s s; sending SIGKILL",
                           self.label, pid, timeout)
            proc.kill()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.error("The interchange of %s (pid %s) survived SIGKILL", self.label, pid)
        stdout = getattr(proc, "stdout", None)
        if stdout is not None:
            stdout.close()


def _resource_interval(executor: HighThroughputExecutor) -> float:
    """Seconds between resource samples of running tasks; 0 turns sampling off."""
    settings = getattr(executor, "resource_monitoring", None)
    if not executor.monitor_resources():  # MPIExecutor: a task's processes span nodes
        return 0.0
    if settings is None:
        return 30.0
    enabled, interval = settings
    return float(interval) if enabled else 0.0
