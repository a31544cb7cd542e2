"""``HighThroughputExecutor``: pilot jobs whose worker pools pull tasks from an interchange.

Data flow::

    kernel --submit()--> outbox (deque) --I/O thread--> interchange --> worker pool --> worker
       ^                                       |              (own process)   (one per node)
       +---- future set (dependents launch) <--+  RESULTS (batched) <------------------+

``submit`` serializes the call (a failure to serialize fails that task only, naming the type),
appends it to the outbox of the ``InterchangeLink`` and wakes the I/O thread through a pipe;
commands (``connected_managers()`` and the like, typed ``messages.Command``) queue there too and
wait for their reply. The I/O thread owns the link (a local socket pair to the interchange, which
is our child process): it sends what is queued as one batch, and hands what comes back to a
``ResultHandler``, which completes futures (which is also where the kernel launches the
dependents) and records where each try ran. It watches the interchange process: if it dies, every
outstanding task fails at once with a message that says so.

The pieces: ``launch`` (the interchange process, the worker-pool command line), ``link`` (the
connection and the I/O loop), ``results`` (results and pool events into futures and provenance
events), ``messages`` (the typed commands, replies and pool events), ``interchange``,
``worker_pool``. Who calls what, and when::

    kernel     start()        log config, interchange (bound), I/O thread, launch command
    kernel     submit()       serialize, queue on the link, wake the I/O thread
    poller     status(), scale_out_facade(), scale_in_facade(): blocks (BlockProviderExecutor)
    I/O thread                results, pool events -> futures, TryPlaced, ResourceSample, NodeSeen
    kernel     shutdown()     cancel blocks, STOP (the interchange stops its pools and sends their
                              last node records), stop the interchange, fail what is outstanding

Blocks of worker pools come from the ``provider``; the kernel's job status poller scales them
(``parsl_repro.jobs``). Where each try ran (host, block, pool, pid), the pools registering and
leaving, and per-task resource samples reach the provenance store as events.
"""
from __future__ import annotations

import logging
import math
import os
import posixpath
import shlex
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from parsl_repro import curvezmq
from parsl_repro.channels.base import remote_channel
from parsl_repro.errors import ConfigurationError
from parsl_repro.executors.base import SUBMITTING
from parsl_repro.executors.errors import BadStateException, InvalidResourceSpecification
from parsl_repro.executors.high_throughput import protocol as p
from parsl_repro.executors.high_throughput.launch import (
    DEFAULT_INTERCHANGE_LAUNCH_CMD,
    DEFAULT_LAUNCH_CMD,
    INTERCHANGE_MODULE,
    RemoteInterchange,
    interchange_command,
    interchange_settings,
    private_ipc_path,
    remote_interchange_settings,
    render_launch_cmd,
    resource_interval,
    start_interchange,
    start_remote_interchange,
    stop_interchange,
    worker_pool_command,
    write_log_config,
)
from parsl_repro.executors.high_throughput.link import InterchangeLink
from parsl_repro.executors.high_throughput.manager_selector import ManagerSelector, RandomManagerSelector
from parsl_repro.executors.high_throughput.messages import Command, CommandRequest
from parsl_repro.executors.high_throughput.mpi_prefix_composer import complete_resource_spec
from parsl_repro.executors.high_throughput.mpi_prefix_composer import validate_resource_spec as validate_mpi_spec
from parsl_repro.executors.high_throughput.radio import HTEXRadio
from parsl_repro.executors.high_throughput.results import ResultHandler
from parsl_repro.executors.status_handling import BlockActivity, BlockProviderExecutor
from parsl_repro.jobs.states import TERMINAL_STATES, JobState, JobStatus
from parsl_repro.logconfigs.base import LogConfig
from parsl_repro.providers.base import ExecutionProvider
from parsl_repro.serialize import pack_apply_message, pack_res_spec_apply_message, serialize
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin

logger = logging.getLogger(__name__)

SUPPORTED_RESOURCE_KEYS = frozenset({"priority"})

__all__ = ["DEFAULT_INTERCHANGE_LAUNCH_CMD", "DEFAULT_LAUNCH_CMD", "INTERCHANGE_MODULE", "HTEXFuture",
           "HighThroughputExecutor", "InterchangeLink", "interchange_command", "worker_pool_command"]


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

    When the provider reaches its site through a remote channel (an ``SSHChannel`` to a
    cluster's login node), the interchange runs on that host, started over the channel, and this
    process talks to it over TCP with CurveZMQ (``launch.start_remote_interchange``). It binds
    to ``interchange_address`` (default: the channel's host name, as resolved there), which
    this machine must reach, and its worker port to ``address`` if given, else the same;
    ``worker_ports=(worker port, executor port)`` fixes both ports for a firewall. Its files
    (certificates, logs) go under ``working_dir`` there, else next to the channel's
    ``script_dir``, in ``<run_id>/<label>``.
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
                 short_task_prefetch: bool = True, interchange_address: str | None = None) -> None:
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
        self.interchange_address = interchange_address
        channel = remote_channel(provider)
        if not encrypted and channel is not None:
            raise ConfigurationError(
                f"HighThroughputExecutor {label}: field 'encrypted' must be True when the provider reaches its site "
                f"through {type(channel).__name__}: the interchange then runs on {channel.hostname} and this "
                f"process talks to it over TCP, which only CurveZMQ keeps others from joining")
        self.remote_dir: str | None = None  # set at start() when the interchange runs on the provider's channel
        self.remote_cert_dir: str | None = None
        self.interchange_bind_address = loopback_address
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
        self._handler = ResultHandler(self)
        self._shut_down = False
        self._ipc_dir: str | None = None
        self.worker_ipc: str | None = None
        self._remote: RemoteInterchange | None = None  # the interchange on a remote channel's host

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
        return self.remote_dir or self.logdir

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
            return validate_mpi_spec(resource_specification)
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
        super().start()
        os.makedirs(self.logdir, exist_ok=True)
        if self.encrypted and self.cert_dir is None:
            self.cert_dir = curvezmq.create_certificates(self.logdir)
        elif not self.encrypted and self.cert_dir:
            raise AttributeError(
                f"HighThroughputExecutor {self.label}: the certificates directory (cert_dir={self.cert_dir!r}) is "
                "set but encrypted is False. Either change cert_dir to None or encrypted to True.")
        self.resource_monitoring_interval = resource_interval(self)
        channel = remote_channel(self.provider)
        if channel is not None:
            stream = self._start_remote_interchange_process(channel)
        else:
            self.logconf_path = write_log_config(self)
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
    as in Parsl, ``command_client.ask(Command.CONNECTED_MANAGERS)`` gives the typed reply."""

    def _start_result_queue_thread(self) -> None:
        """Start the I/O thread: it sends queued tasks and commands, and hands what comes back
        to the ``ResultHandler``."""
        link = self._link
        assert link is not None
        self._result_queue_thread = threading.Thread(
            target=link.serve, args=(self._handler, self._result_queue_thread_exit, self.label),
            name=f"htex-io-{self.label}", daemon=True)
        self._result_queue_thread.start()

    def _start_local_interchange_process(self) -> p.FrameStream:
        """Start the interchange and wait for it to report the port it bound; returns the link
        to it (our end of the socket pair whose other end it inherits). Pools on this host
        reach it over a private Unix socket, remote pools over TCP."""
        self._ipc_dir, self.worker_ipc = private_ipc_path()
        try:
            self.interchange_proc, stream, self.worker_port = start_interchange(self, interchange_settings(self))
        except BaseException:
            if self._ipc_dir is not None:
                shutil.rmtree(self._ipc_dir, ignore_errors=True)
            raise
        return stream

    def _start_remote_interchange_process(self, channel: Any) -> p.FrameStream:
        """Start the interchange on ``channel``'s host (see the class docstring); returns our end
        of the link, which a relay thread carries to it over CurveZMQ."""
        host = channel.hostname
        base = self.working_dir or posixpath.join(posixpath.dirname(channel.script_dir.rstrip("/")), "runs")
        self.remote_dir = posixpath.join(channel.abspath(base), self.run_id or "run", self.label)
        self.remote_cert_dir = posixpath.join(self.remote_dir, "certificates")
        self.interchange_bind_address = self.interchange_address or host
        self.all_addresses = {self.address or self.interchange_bind_address}
        self._remote, stream, self.worker_port = start_remote_interchange(self, channel,
                                                                          remote_interchange_settings(self))
        self.interchange_proc = self._remote.proc
        return stream

    def _forget_remote_keys(self) -> None:
        """Delete the run's keys from the remote host once its interchange and pools are gone."""
        channel = remote_channel(self.provider)
        if channel is None or self.remote_cert_dir is None:
            return
        try:
            code, _, err = channel.execute_wait(f"rm -rf {shlex.quote(self.remote_cert_dir)}", 30)
        except Exception as e:  # the site may be gone by now; the keys are useless after this run anyway
            code, err = -1, str(e)
        if code != 0:
            logger.warning("Could not delete the keys of %s in %s on %s: %s", self.label, self.remote_cert_dir,
                           getattr(channel, "hostname", "?"), err.strip())

    def initialize_scaling(self) -> None:
        """Render the worker-pool command that each block runs (``{block_id}`` left to fill)."""
        self.launch_cmd = render_launch_cmd(self)
        logger.debug("Launch command of %s: %s", self.label, self.launch_cmd)

    def _get_launch_command(self, block_id: str) -> str:
        return self.launch_cmd.format(block_id=block_id)

    # --- submit --------------------------------------------------------------------------------------------
    def submit(self, func: Callable, resource_specification: dict[str, Any], *args: Any, **kwargs: Any) -> Future:
        """Queue ``func(*args, **kwargs)`` for a worker; the future completes with its result."""
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
    def _command(self, command: Command, target: str = "", timeout: float = 30) -> Any:
        """Ask the interchange ``command``; returns the reply's ``value`` (Parsl's shape)."""
        thread = self._result_queue_thread
        if self._link is None or thread is None or not thread.is_alive():
            raise BadStateException(self, RuntimeError(f"executor {self.label} is not running"))
        return self._link.ask(CommandRequest(command, target), timeout).value

    def connected_managers(self) -> list[dict[str, Any]]:
        """The worker pools connected now, as the interchange sees them: ``manager`` (pool id),
        ``block_id``, ``hostname``, ``worker_count``, ``tasks``, ``idle_duration``, ``active``,
        ``draining``, ``python_version``, ``parsl_version``, ``pid`` (``messages.PoolInfo``)."""
        return self._command(Command.CONNECTED_MANAGERS)

    def connected_managers_packages(self) -> dict[str, dict[str, str]]:
        """The Python distributions installed where each connected pool runs: pool id ->
        {name: version}. Names are normalised as in wheel file names (lower case, runs of
        ``-``, ``_`` and ``.`` become ``_``), so this package is ``parsl_repro``."""
        return self._command(Command.MANAGERS_PACKAGES)

    def connected_blocks(self) -> list[str]:
        """Every block whose pools have registered since the executor started, including
        blocks that have since ended (as Parsl)."""
        return self._command(Command.REGISTERED_BLOCKS)

    def connected_workers(self) -> int:
        """Workers in the connected pools that still take tasks."""
        return self._command(Command.WORKER_COUNT)

    def _hold_block(self, block_id: str) -> None:
        self._command(Command.HOLD_BLOCK, str(block_id))

    def _hold_manager(self, manager_id: str) -> None:
        self._command(Command.HOLD_MANAGER, manager_id)

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
            registered = set(self._command(Command.REGISTERED_BLOCKS))
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
        thread = self._result_queue_thread
        if thread is not None and self._link is not None:
            self._link.wake()  # the I/O thread sends what is queued and STOP, then reads the pools' last records
            thread.join(timeout)
        stop_interchange(proc, self.label, timeout)
        if self._remote is not None:
            self._remote.close()
            self._forget_remote_keys()
        if self._ipc_dir is not None:
            shutil.rmtree(self._ipc_dir, ignore_errors=True)
        if thread is not None:
            thread.join(1)  # the interchange is gone: its end of the link is closed
        if thread is None or not thread.is_alive():
            self._handler.unreported_stops()
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
