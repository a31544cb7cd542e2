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
import time
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


READY_TAG = "PARSL_REPRO_INTERCHANGE_READY "
"""How the remote interchange's answer starts, so that whatever ``worker_init`` or a login
script prints on standard output is skipped."""


class _ReadyReader:
    """Reads the remote interchange's standard output in a thread until its tagged answer, so
    that the wait for it can time out; keeps the other lines for the error message."""

    def __init__(self, stream: Any) -> None:
        self.answer: dict[str, Any] | None = None
        self.other: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True, name="remote-interchange-start")
        self.thread.start()

    def _read(self, stream: Any) -> None:
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode(errors="replace").rstrip("\n")
                if line.startswith(READY_TAG):
                    self.answer = json.loads(line[len(READY_TAG):])
                    return
                self.other = (self.other + [line])[-20:]
        except Exception as e:  # noqa: BLE001 - the waiting thread reports that no answer came
            self.other.append(f"({type(e).__name__}: {e})")


class RemoteInterchange:
    """What ``start_remote_interchange`` leaves running: the remote process, and the relay (with
    its CurveZMQ context) that carries the link to it; ``close`` stops the relay."""

    def __init__(self, proc: Any, relay: Any, context: Any, thread: threading.Thread, url: str) -> None:
        self.proc, self.relay, self.context, self.thread = proc, relay, context, thread
        self.url = url  # where the executor's relay connected: tcp://interchange_address:port

    def close(self, timeout: float = 2.0) -> None:
        self.relay.stop.set()
        self.thread.join(timeout)
        self.context.destroy(linger=0)


def start_remote_interchange(executor: HighThroughputExecutor, channel: Any,
                             settings: dict[str, Any]) -> tuple[RemoteInterchange, p.FrameStream, int]:
    """Start ``executor``'s interchange on ``channel``'s host and connect a relay to it.

    Copies the certificates there first (into ``executor.remote_cert_dir``). The remote command
    runs the provider's ``worker_init`` with its output sent to ``<remote_dir>/interchange.stderr``
    (as is the interchange's standard error, so nothing there can fill the SSH session's window),
    then the interchange, which answers one tagged line. Returns once the CurveZMQ handshake
    with it has succeeded: the remote side (``proc``: ``poll``, ``wait``, ``terminate``, ``kill``;
    closing its input stops it) with the relay, our end of the link, and the worker port it
    bound. Raises ``BadStateException`` naming the host when it does not start or cannot be
    reached, after stopping whatever did start."""
    import zmq

    from parsl_repro import curvezmq
    from parsl_repro.executors.high_throughput.relay import Relay

    remote_dir = executor.remote_dir
    assert remote_dir is not None
    host = getattr(channel, "hostname", "?")
    channel.makedirs(remote_dir, 0o700, exist_ok=True)
    if executor.cert_dir is not None:
        for name in sorted(os.listdir(executor.cert_dir)):
            channel.push_file(os.path.join(executor.cert_dir, name), executor.remote_cert_dir)
    worker_init = (getattr(executor.provider, "worker_init", "") or "").strip()
    command = " ".join(shlex.quote(word) for word in remote_interchange_command(executor.interchange_launch_cmd))
    stderr = shlex.quote(posixpath.join(remote_dir, "interchange.stderr"))
    script = f"exec 2>>{stderr}\n" + (f"{{\n{worker_init}\n}} >&2\n" if worker_init else "") + f"exec {command}"
    proc = channel.execute_no_wait(script)
    context = zsock = None
    try:
        proc.stdin.write((json.dumps(settings) + "\n").encode())
        proc.stdin.flush()
        reader = _ReadyReader(proc.stdout)
        reader.thread.join(REMOTE_START_TIMEOUT)
        if reader.answer is None:
            if reader.thread.is_alive():
                why = f"it did not answer within {REMOTE_START_TIMEOUT:.0f} s"
            else:  # its output ended: its exit status follows on the session
                try:
                    why = f"it exited with status {proc.wait(10)} before binding its ports"
                except TimeoutError:
                    why = "it closed its output before binding its ports"
            said = "; it printed: " + " | ".join(reader.other[-5:]) if reader.other else ""
            raise BadStateException(executor, RuntimeError(
                f"the remote interchange of {executor.label} on {host} did not start: {why}{said}. Is parsl_repro "
                f"installed there (on the PATH after the provider's worker_init)? See {stderr} and "
                f"{posixpath.join(remote_dir, 'interchange.log')} on {host}"))
        client_port = int(reader.answer["client_port"])
        address = executor.interchange_address or host
        context = curvezmq.ClientContext(executor.cert_dir)
        zsock = context.socket(zmq.PAIR)
        url = f"tcp://{address}:{client_port}"
        _connect_and_handshake(executor, zsock, url)
        ours, theirs = socket.socketpair()
        relay = Relay(ours, zsock, f"htex-relay-{executor.label}")
        thread = relay.start()
    except BaseException:
        if zsock is not None:
            zsock.close(linger=0)
        if context is not None:
            context.destroy(linger=0)
        proc.terminate()
        proc.kill()
        raise
    logger.info("Remote interchange of %s started on %s: worker port %s, executor port %s", executor.label, host,
                reader.answer["worker_port"], client_port)
    return RemoteInterchange(proc, relay, context, thread, url), p.FrameStream(theirs), \
        int(reader.answer["worker_port"])


HANDSHAKE_TIMEOUT = 30.0
"""Seconds the CurveZMQ handshake with a remote interchange may take."""


def _connect_and_handshake(executor: HighThroughputExecutor, zsock: Any, url: str) -> None:
    """Connect ``zsock`` to ``url`` and wait until the CurveZMQ (or plain ZMTP) handshake has
    succeeded; ``BadStateException`` naming the address when it fails or does not come (a
    firewall between here and the login node, a wrong ``interchange_address``)."""
    import zmq
    from zmq.utils.monitor import recv_monitor_message

    wanted = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH | \
        zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    monitor = zsock.get_monitor_socket(wanted)
    try:
        zsock.connect(url)
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not monitor.poll(left * 1000):
                raise BadStateException(executor, RuntimeError(
                    f"could not reach the remote interchange of {executor.label} at {url} within "
                    f"{HANDSHAKE_TIMEOUT:.0f} s: this machine must reach that address and port directly (set "
                    f"interchange_address, and fix the port with worker_ports=(worker port, executor port) "
                    f"if a firewall is in the way)"))
            event = recv_monitor_message(monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                return
            raise BadStateException(executor, RuntimeError(
                f"the CurveZMQ handshake with the remote interchange of {executor.label} at {url} failed "
                f"(event {event}): the keys there are not this run's"))
    finally:
        zsock.disable_monitor()
        monitor.close(linger=0)


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
