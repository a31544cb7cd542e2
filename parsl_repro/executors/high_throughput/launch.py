"""Starting and stopping what a HighThroughputExecutor runs: its interchange process, and the
command line each block runs on each node to start a worker pool.

Who calls what, and when::

    HighThroughputExecutor.start()
      write_log_config            the run's LogConfig, pickled for the pools (--logconf)
      private_ipc_path            the Unix socket pools on this host use (None: TCP only)
      start_interchange           child process, settings on stdin, socket pair; returns once it has bound
      render_launch_cmd           the pool command line, {block_id} left for each block
    HighThroughputExecutor.shutdown()
      stop_interchange            close its stdin, SIGTERM, SIGKILL after ``timeout``

When the provider's channel is remote (an ``SSHChannel`` to a cluster's login node), the
interchange runs there instead (``start_remote_interchange``): the run's CurveZMQ certificates
are copied to a private directory on that host, ``REMOTE_MODULE`` is started over the channel
(after the provider's ``worker_init``), and a ``relay.Relay`` carries the link over TCP with
CurveZMQ. The pools on that site get the remote paths and addresses in their command line.

Parsl's script names stand for ours: ``process_worker_pool.py`` in a ``launch_cmd`` becomes
``parsl-repro-worker-pool``, and an ``interchange_launch_cmd`` starting with ``interchange.py``
runs ``INTERCHANGE_MODULE``. Parsl's own scripts speak another protocol and are never run.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import pickle
import posixpath
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from parsl_repro.executors.errors import BadStateException
from parsl_repro.executors.high_throughput import protocol as p
from parsl_repro.executors.high_throughput.manager_selector import RandomManagerSelector
from parsl_repro.serialize import serialize

if TYPE_CHECKING:
    from parsl_repro.executors.high_throughput.executor import HighThroughputExecutor

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

DEFAULT_INTERCHANGE_LAUNCH_CMD = ["interchange.py"]
"""How the interchange process is started (``interchange_launch_cmd``); it reads its settings as
one JSON line on standard input. As in ``launch_cmd``, Parsl's name stands for ours: a command
whose first word is ``interchange.py`` runs ``INTERCHANGE_MODULE`` with this interpreter."""

INTERCHANGE_MODULE = "parsl_repro.executors.high_throughput.interchange"

REMOTE_MODULE = "parsl_repro.executors.high_throughput.remote"
"""What runs on a remote login node: the interchange with a CurveZMQ relay for the executor."""

REMOTE_START_TIMEOUT = 120.0
"""Seconds the remote interchange may take to start (import, bind) before the start fails."""

IPC_PATH_MAX = 100
"""Longest Unix socket path used for local pools (Linux allows 107 bytes); longer: TCP only."""


def worker_pool_command() -> str:
    """How to run this project's worker pool here: the console script on PATH, else the one
    beside this interpreter, else ``python -m`` its module."""
    found = shutil.which("parsl-repro-worker-pool")
    if found:
        return "parsl-repro-worker-pool"
    beside = os.path.join(os.path.dirname(sys.executable), "parsl-repro-worker-pool")
    if os.access(beside, os.X_OK):
        return beside
    return f"{sys.executable} -m parsl_repro.executors.high_throughput.worker_pool"


def interchange_command(launch_cmd: Sequence[str]) -> list[str]:
    """``launch_cmd`` with Parsl's ``interchange.py`` (its first word) made this project's."""
    if launch_cmd and launch_cmd[0] == "interchange.py":
        return [sys.executable, "-m", INTERCHANGE_MODULE, *launch_cmd[1:]]
    return list(launch_cmd)


def resource_interval(executor: HighThroughputExecutor) -> float:
    """Seconds between resource samples of running tasks; 0 turns sampling off."""
    settings = getattr(executor, "resource_monitoring", None)
    if not executor.monitor_resources():  # MPIExecutor: a task's processes span nodes
        return 0.0
    if settings is None:
        return 30.0
    enabled, interval = settings
    return float(interval) if enabled else 0.0


def render_launch_cmd(executor: HighThroughputExecutor) -> str:
    """The worker-pool command line of ``executor``'s blocks, ``{block_id}`` left to fill."""
    debug = "--debug" if executor.worker_debug else ""
    max_workers = "" if executor.max_workers_per_node == float("inf") else \
        f"--max-workers-per-node={executor.max_workers_per_node}"
    probe = f"--address-probe-timeout={executor.address_probe_timeout}" if executor.address_probe_timeout else ""
    remote = executor.remote_dir is not None  # the pools run on the remote site: its paths, its PATH
    pool = "parsl-repro-worker-pool" if remote else worker_pool_command()
    cert_dir = executor.remote_cert_dir if remote else executor.cert_dir
    logconf, ipc = executor.logconf_path, executor.worker_ipc
    return _PARSL_POOL_SCRIPT.sub(lambda _: pool.replace("{", "{{").replace("}", "}}"), executor.launch_cmd).format(
        worker_pool=pool, debug=debug, max_workers_per_node=max_workers,
        prefetch_capacity=executor.prefetch_capacity,
        address_probe_timeout_string=probe, addresses=",".join(sorted(executor.all_addresses)),
        worker_port=executor.worker_port, cores_per_worker=executor.cores_per_worker,
        mem_per_worker=executor.mem_per_worker or 0, nodes_per_block=executor.provider.nodes_per_block,
        heartbeat_period=executor.heartbeat_period, heartbeat_threshold=executor.heartbeat_threshold,
        poll_period=executor.poll_period, cert_dir=cert_dir, logdir=executor.worker_logdir,
        drain_period=executor.drain_period or 0,
        cert_dir_option=f"--cert-dir {cert_dir}" if cert_dir else "",
        logconf=logconf, logconf_option=f"--logconf {logconf}" if logconf else "",
        cpu_affinity=executor.cpu_affinity, accelerators=",".join(executor.available_accelerators),
        resource_monitoring_interval=executor.resource_monitoring_interval,
        enable_mpi_mode=f"--enable-mpi-mode --mpi-launcher={executor.mpi_launcher}" if executor.enable_mpi_mode
        else "",
        mpi_launcher=executor.mpi_launcher,
        ipc_option=f"--ipc={ipc} --ipc-host={socket.gethostname()}" if ipc else "")


def write_log_config(executor: HighThroughputExecutor) -> str | None:
    """With a run ``LogConfig``, pickle it to ``<logdir>/log_config/log_config.pkl`` (a directory
    only this user can read) for the worker pools, which load it from there (``--logconf``), and
    return that path: their command line only names the file, and a file on the shared file
    system is how pools on other nodes see the executor's run directory anyway."""
    if executor.log_config is None:
        return None
    directory = os.path.join(executor.logdir, "log_config")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, "log_config.pkl")
    with open(path, "wb") as f:
        pickle.dump(executor.log_config, f)
    return path


def private_ipc_path() -> tuple[str | None, str | None]:
    """``(directory, socket path)`` for the interchange's Unix socket: pools on this host reach it
    there, in a directory only this user can enter (quicker than TCP; CurveZMQ still applies).
    ``(None, None)`` when the path would be too long for a Unix socket: TCP only."""
    directory = tempfile.mkdtemp(prefix="parsl-repro-", dir="/tmp" if os.path.isdir("/tmp") else None)
    path = os.path.join(directory, "pools")
    if len(os.fsencode(path)) > IPC_PATH_MAX:
        shutil.rmtree(directory, ignore_errors=True)
        return None, None
    return directory, path


def interchange_settings(executor: HighThroughputExecutor) -> dict[str, Any]:
    """What the interchange is told on its standard input (``client_fd`` is added at start)."""
    return {
        "worker_ipc": executor.worker_ipc,
        "cert_dir": executor.cert_dir, "loopback_address": executor.loopback_address,
        "worker_bind_address": executor.address or executor.loopback_address, "worker_port": executor.worker_port,
        "worker_port_range": executor.worker_port_range, "interchange_port_range": executor.interchange_port_range,
        "heartbeat_period": executor.heartbeat_period, "heartbeat_threshold": executor.heartbeat_threshold,
        "logdir": executor.logdir, "debug": executor.worker_debug,
        # MPI tasks wait in their pool for nodes: holding more there would only delay them
        "short_task_prefetch": executor.short_task_prefetch and not executor.enable_mpi_mode,
        # pickled: the interchange is our child, reading the pipe we write
        "log_config": None if executor.log_config is None
        else base64.b64encode(pickle.dumps(executor.log_config)).decode(),
        # the interchange's default needs no deserializing (and no serialize import there)
        "manager_selector": None if type(executor.manager_selector) is RandomManagerSelector
        else base64.b64encode(serialize(executor.manager_selector)).decode(),
    }


def start_interchange(executor: HighThroughputExecutor,
                      settings: dict[str, Any]) -> tuple[subprocess.Popen, p.FrameStream, int]:
    """Start ``executor``'s interchange with ``settings`` and wait for it to report the worker
    port it bound. Returns the process, our end of the socket pair whose other end it inherits,
    and the port; raises ``BadStateException`` if it exits first."""
    ours, theirs = socket.socketpair()
    settings = dict(settings, client_fd=theirs.fileno())  # the same number in the child (pass_fds)
    try:
        proc = subprocess.Popen(interchange_command(executor.interchange_launch_cmd), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, close_fds=True, start_new_session=True,
                                pass_fds=(theirs.fileno(),))
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps(settings) + "\n").encode())
    proc.stdin.flush()
    line = proc.stdout.readline()
    if not line:
        ours.close()
        code = proc.wait(10)
        raise BadStateException(executor, RuntimeError(
            f"the interchange of {executor.label} exited with status {code} before binding its ports; see "
            f"{os.path.join(executor.logdir, 'interchange.log')}"))
    worker_port = int(json.loads(line)["worker_port"])
    logger.info("Interchange of %s started (pid %s): worker port %s", executor.label, proc.pid, worker_port)
    return proc, p.FrameStream(ours), worker_port


def stop_interchange(proc: subprocess.Popen, label: str, timeout: float) -> None:
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
    except (subprocess.TimeoutExpired, TimeoutError):
        logger.warning("Unable to terminate Interchange process of %s (pid %s) in %s s; sending SIGKILL",
                       label, pid, timeout)
        proc.kill()
        try:
            proc.wait(timeout=timeout)
        except (subprocess.TimeoutExpired, TimeoutError):
            logger.error("The interchange of %s (pid %s) survived SIGKILL", label, pid)
    stdout = getattr(proc, "stdout", None)
    if stdout is not None:
        stdout.close()


class _LineReader:
    """Reads one line from a stream in a thread, so that the wait for it can time out."""

    def __init__(self, stream: Any) -> None:
        self.line: bytes = b""
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True, name="remote-interchange-start")
        self.thread.start()

    def _read(self, stream: Any) -> None:
        try:
            self.line = stream.readline()
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            self.error = e


def start_remote_interchange(executor: HighThroughputExecutor, channel: Any,
                             settings: dict[str, Any]) -> tuple[Any, p.FrameStream, int, threading.Thread]:
    """Start ``executor``'s interchange on ``channel``'s host and connect a relay to it.

    Copies the certificates there first (into ``executor.remote_cert_dir``). Returns the remote
    process (``poll``, ``wait``, ``terminate``: closing its input stops it), our end of the
    link, the worker port it bound, and the relay's thread. Raises ``BadStateException`` naming
    the host when the interchange does not start."""
    import zmq

    from parsl_repro import curvezmq
    from parsl_repro.executors.high_throughput.relay import Relay

    remote_dir = executor.remote_dir
    assert remote_dir is not None
    channel.makedirs(remote_dir, 0o700, exist_ok=True)
    if executor.cert_dir is not None:
        for name in sorted(os.listdir(executor.cert_dir)):
            channel.push_file(os.path.join(executor.cert_dir, name), executor.remote_cert_dir)
    worker_init = getattr(executor.provider, "worker_init", "") or ""
    command = " ".join(shlex.quote(word) for word in remote_interchange_command(executor.interchange_launch_cmd))
    proc = channel.execute_no_wait(f"{worker_init.strip()}\nexec {command}" if worker_init.strip() else
                                   f"exec {command}")
    proc.stdin.write((json.dumps(settings) + "\n").encode())
    proc.stdin.flush()
    reader = _LineReader(proc.stdout)
    reader.thread.join(REMOTE_START_TIMEOUT)
    host = getattr(channel, "hostname", "?")
    if not reader.line:
        proc.terminate()
        why = f"it did not answer within {REMOTE_START_TIMEOUT:.0f} s" if reader.thread.is_alive() else \
            f"it exited with status {proc.poll()} before binding its ports"
        raise BadStateException(executor, RuntimeError(
            f"the remote interchange of {executor.label} on {host} did not start: {why}; is parsl_repro installed "
            f"there (after the provider's worker_init)? See {posixpath.join(remote_dir, 'interchange.log')} on {host}"))
    reply = json.loads(reader.line)
    ours, theirs = socket.socketpair()
    context = curvezmq.ClientContext(executor.cert_dir)
    zsock = context.socket(zmq.PAIR)
    address = executor.interchange_address or host
    zsock.connect(f"tcp://{address}:{int(reply['client_port'])}")
    thread = Relay(ours, zsock, f"htex-relay-{executor.label}").start()
    logger.info("Remote interchange of %s started on %s: worker port %s, executor port %s", executor.label, host,
                reply["worker_port"], reply["client_port"])
    return proc, p.FrameStream(theirs), int(reply["worker_port"]), thread


def remote_interchange_command(launch_cmd: Sequence[str]) -> list[str]:
    """What runs on the remote host: ``launch_cmd`` as given, except that Parsl's default
    (``interchange.py``) becomes ``python3 -m REMOTE_MODULE`` (``python3`` as found on the
    host's PATH after ``worker_init``)."""
    if not launch_cmd or launch_cmd[0] == "interchange.py":
        return ["python3", "-m", REMOTE_MODULE, *launch_cmd[1:]]
    return list(launch_cmd)


def remote_interchange_settings(executor: HighThroughputExecutor) -> dict[str, Any]:
    """The settings a remote interchange is sent: the local ones with the remote host's paths,
    no Unix socket, the default log file there, and where to bind for the executor and pools."""
    settings = interchange_settings(executor)
    bind = executor.interchange_bind_address
    ports = executor.worker_ports
    settings.update(worker_ipc=None, cert_dir=executor.remote_cert_dir if executor.cert_dir else None,
                    logdir=executor.remote_dir, log_config=None, worker_bind_address=executor.address or bind,
                    client_bind_address=bind, client_port=ports[1] if ports and len(ports) > 1 else None)
    return settings
