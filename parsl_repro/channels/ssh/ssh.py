"""``SSHChannel``: a remote login node's shell and file system, over SSH (paramiko).

Commands run with ``exec_command`` in the login shell of ``username`` (as ``ssh host cmd``
would run them); files move over SFTP. Nothing connects at construction: the first call that
needs the host does (``connect()``), so a configuration that names many sites imports and
constructs without a network.

Host keys. The host's key must be known, from ``host_keys_filename`` (default
``~/.ssh/known_hosts``) or the system's known-hosts files. ``known_hosts_policy`` says what to do
with a host whose key is not there: ``"reject"`` (the default, as ``StrictHostKeyChecking=yes``)
refuses with ``BadHostKeyException`` naming the host, its key's fingerprint and the file to add
it to; ``"accept-new"`` (as OpenSSH's option of that name) trusts it and records it in
``host_keys_filename``; ``"warn"`` trusts it for this connection only. A host whose key differs
from the one recorded is refused under every policy.
"""
from __future__ import annotations

import base64
import errno
import getpass
import hashlib
import logging
import os
import posixpath
import shlex
import socket
import stat
import threading
import time
from typing import IO, Any, cast

from parsl_repro.channels.base import Channel, ChannelProcess
from parsl_repro.channels.errors import (
    AuthException,
    BadHostKeyException,
    BadPermsScriptPath,
    BadScriptPath,
    FileCopyException,
    FileExists,
    SSHException,
)
from parsl_repro.errors import ConfigurationError
from parsl_repro.utils import RepresentationMixin

logger = logging.getLogger(__name__)

KNOWN_HOSTS_POLICIES = ("reject", "accept-new", "warn")

DEFAULT_SCRIPT_DIR = ".parsl_repro/submit_scripts"
"""Where submit scripts go on the host when no ``script_dir`` is given (under the login
directory)."""


def _paramiko() -> Any:
    try:
        import paramiko
    except ImportError as e:  # a dependency of the package; only a broken install lacks it
        raise ImportError("SSH channels need paramiko: pip install 'paramiko>=3.4'") from e
    return paramiko


def _fingerprint(key: Any) -> str:
    """``ssh-ed25519 SHA256:...``, as ``ssh-keygen -lf`` shows a key."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


def _host_key_name(hostname: str, port: int) -> str:
    """The host's name in known_hosts files: ``host``, or ``[host]:port`` off port 22."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


class _SessionInput:
    """A remote command's standard input: writes go straight to the session; ``close`` (once)
    sends end of file. (paramiko's buffered stdin file flushes again when garbage collected
    after its session closed, and complains.)"""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.closed = False

    def write(self, data: bytes) -> int:
        self.session.sendall(data)
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered."""

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.session.shutdown_write()
            except (OSError, EOFError):
                pass


class _SessionOutput:
    """A remote command's standard output, read straight from the session: ``readline``,
    ``read`` and ``close`` (paramiko's buffered file objects end up in reference cycles, whose
    collection makes them flush into an already closed buffer)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.buffer = bytearray()
        self.closed = False

    def _fill(self) -> bool:
        data = self.session.recv(1 << 16)
        self.buffer += data
        return bool(data)

    def readline(self) -> bytes:
        while b"\n" not in self.buffer and not self.closed and self._fill():
            pass
        end = self.buffer.find(b"\n") + 1 or len(self.buffer)
        line = bytes(self.buffer[:end])
        del self.buffer[:end]
        return line

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self.buffer) < size) and not self.closed and self._fill():
            pass
        size = len(self.buffer) if size < 0 else min(size, len(self.buffer))
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def close(self) -> None:
        self.closed = True


class _RemoteProcess:
    """A command started with ``SSHChannel.execute_no_wait``: a paramiko session channel."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.stdin = cast(IO[bytes], _SessionInput(session))
        self.stdout = cast(IO[bytes], _SessionOutput(session))
        self.pid = "remote"

    def poll(self) -> int | None:
        return self.session.recv_exit_status() if self.session.exit_status_ready() else None

    def wait(self, timeout: float | None = None) -> int:
        if not self.session.status_event.wait(timeout):
            raise TimeoutError(f"the remote command did not end within {timeout} s")
        return self.session.recv_exit_status()

    def terminate(self) -> None:
        self.stdin.close()  # end of its input: our remote commands stop on it

    def kill(self) -> None:
        """Close the session (sshd hangs up on the command)."""
        self.session.close()

    @property
    def returncode(self) -> int | None:
        return self.poll()


class SSHChannel(Channel, RepresentationMixin):
    """Commands and files on ``hostname`` over SSH.

    Parameters (Parsl's, plus ``known_hosts_policy`` and ``connect_timeout``)
    --------------------------------------------------------------------------
    hostname, port : the host to reach.
    username : the login (default: the local user, or ``~/.ssh/config``'s ``User`` if paramiko
        finds one there).
    password : a password; else keys (``key_filename``, the SSH agent, ``~/.ssh/id_*``).
    script_dir : directory on the host for submit scripts (default
        ``~/.parsl_repro/submit_scripts``), made on first use.
    envs : environment variables set for every command (as ``export`` words in its command
        line, which other users of the host can read in ``ps``: no secrets here).
    gssapi_auth : authenticate with Kerberos (GSS-API).
    skip_auth : connect without authenticating (hosts that allow the "none" method).
    key_filename : a private key file (or a list of them).
    host_keys_filename : the known-hosts file to read and, with ``accept-new``, to add to
        (default ``~/.ssh/known_hosts``).
    known_hosts_policy : ``"reject"`` (default), ``"accept-new"`` or ``"warn"``; see the module.
    connect_timeout : seconds to wait for the TCP connection and the SSH handshake.
    """

    def __init__(self, hostname: str, username: str | None = None, password: str | None = None,
                 script_dir: str | None = None, envs: dict[str, str] | None = None, gssapi_auth: bool = False,
                 skip_auth: bool = False, port: int = 22, key_filename: str | list[str] | None = None,
                 host_keys_filename: str | None = None, known_hosts_policy: str = "reject",
                 connect_timeout: float = 30) -> None:
        if known_hosts_policy not in KNOWN_HOSTS_POLICIES:
            raise ConfigurationError(f"SSHChannel: field 'known_hosts_policy' must be one of "
                                     f"{', '.join(KNOWN_HOSTS_POLICIES)}, got {known_hosts_policy!r}")
        self.hostname = hostname
        self.username = username
        self.password = password
        self.port = port
        self.envs = dict(envs or {})
        self.gssapi_auth = gssapi_auth
        self.skip_auth = skip_auth
        self.key_filename = key_filename
        self.host_keys_filename = host_keys_filename or os.path.expanduser("~/.ssh/known_hosts")
        self.known_hosts_policy = known_hosts_policy
        self.connect_timeout = connect_timeout
        self._script_dir_given = script_dir
        self._script_dir: str | None = None
        self._client: Any = None
        self._refused: AuthException | BadHostKeyException | None = None
        self._sftp: Any = None
        self._home_dir: str | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:  # never the password
        secret = "" if self.password is None else ", password='***'"
        return (f"{type(self).__name__}({self.hostname!r}, username={self.username!r}{secret}, port={self.port}, "
                f"script_dir={self._script_dir_given!r}, known_hosts_policy={self.known_hosts_policy!r})")

    @property
    def site(self) -> str:
        """``user@host:port``, for messages."""
        user = f"{self.username}@" if self.username else ""
        return f"{user}{self.hostname}" + ("" if self.port == 22 else f":{self.port}")

    # --- connecting ---------------------------------------------------------------------------------
    def _credentials(self) -> dict[str, Any]:
        """What ``SSHClient.connect`` authenticates with (the interactive channels prompt here)."""
        return {"password": self.password, "key_filename": self.key_filename}

    def _authenticate(self, transport: Any) -> None:
        """Authenticate an open transport with the "none" method (``skip_auth``)."""
        transport.auth_none(self.username or getpass.getuser())

    def connect(self) -> None:
        """Connect, unless connected. A refused login or an untrusted host key is remembered:
        later calls raise it again at once, without another attempt (or another prompt), since
        neither mends itself; a network failure is tried again next time."""
        with self._lock:
            if self._refused is not None:
                raise self._refused
            if self._client is not None and self._client.get_transport() is not None \
                    and self._client.get_transport().is_active():
                return
            if self._client is not None:  # its connection died: start afresh
                self._drop()
            try:
                self._client = self._open()
            except (AuthException, BadHostKeyException) as e:
                self._refused = e
                raise

    def _new_client(self) -> Any:
        """A ``paramiko.SSHClient`` that knows the trusted host keys and applies the policy."""
        paramiko = _paramiko()
        client = paramiko.SSHClient()
        try:
            client.load_system_host_keys()
        except OSError:
            pass
        if os.path.exists(self.host_keys_filename):
            client.load_host_keys(self.host_keys_filename)
        client.set_missing_host_key_policy(_MissingKeyPolicy(self))
        return client

    def _open(self) -> Any:
        client = self._new_client()
        logger.debug("Connecting to %s", self.site)
        try:
            if self.skip_auth:
                self._open_transport(client, self._authenticate)
            else:
                # paramiko 4 dropped GSS-API: its arguments are passed only when asked for
                gss = {"gss_auth": True, "gss_kex": True} if self.gssapi_auth else {}
                client.connect(self.hostname, port=self.port, username=self.username,
                               allow_agent=True, look_for_keys=self.password is None, timeout=self.connect_timeout,
                               banner_timeout=self.connect_timeout, auth_timeout=self.connect_timeout,
                               **gss, **self._credentials())
        except BaseException as e:
            client.close()
            raise self._translate(e) from e
        logger.info("Connected to %s", self.site)
        return client

    def _open_transport(self, client: Any, authenticate: Any) -> None:
        """Connect ``client`` by hand: TCP, handshake, host-key check, then ``authenticate(transport)``.

        The host-key check is ``SSHClient.connect``'s: the recorded key's type is asked for first,
        and a host with any key recorded must offer that key (another type counts as changed)."""
        paramiko = _paramiko()
        name = _host_key_name(self.hostname, self.port)
        known = _known_keys(client, name)
        sock = socket.create_connection((self.hostname, self.port), self.connect_timeout)
        try:
            transport = paramiko.Transport(sock)
        except BaseException:
            sock.close()
            raise
        try:
            transport.banner_timeout = transport.auth_timeout = self.connect_timeout
            if known:
                options = transport.get_security_options()
                wanted = [t for t in options.key_types if t in known.keys()]
                options.key_types = wanted + [t for t in options.key_types if t not in wanted]
            transport.start_client(timeout=self.connect_timeout)
            key = transport.get_remote_server_key()
            if known is None:
                _MissingKeyPolicy(self).missing_host_key(client, name, key)
            elif known.get(key.get_name()) != key:
                expected = known.get(key.get_name()) or list(known.values())[0]
                raise paramiko.BadHostKeyException(self.hostname, key, expected)
            authenticate(transport)
            if not transport.is_authenticated():
                raise paramiko.AuthenticationException("no authentication method succeeded")
        except BaseException:
            transport.close()
            raise
        client._transport = transport

    def _translate(self, e: BaseException) -> BaseException:
        """A connection failure as the channel error that names its cause."""
        paramiko = _paramiko()
        if isinstance(e, BadHostKeyException | AuthException | SSHException) or not isinstance(e, Exception):
            return e
        if isinstance(e, paramiko.BadHostKeyException):
            return BadHostKeyException(e, self.site, (
                f"the host key changed: the server offered {_fingerprint(e.key)} but "
                f"{_fingerprint(e.expected_key)} is recorded for it (in {self.host_keys_filename} or the "
                f"system's known_hosts). Someone may be intercepting the connection; if the host was "
                f"re-installed, remove its old line with: ssh-keygen -R "
                f"'{_host_key_name(self.hostname, self.port)}'"))
        if isinstance(e, paramiko.AuthenticationException):
            return AuthException(e, self.site, f"the host refused the login of "
                                               f"{self.username or getpass.getuser()} with {self._auth_method()}")
        # SSHClient.connect wraps a refusal (on every address of the host) in NoValidConnectionsError
        refused = paramiko.ssh_exception.NoValidConnectionsError
        causes = list(e.errors.values()) if isinstance(e, refused) and e.errors else [e]
        if all(isinstance(c, ConnectionRefusedError) or getattr(c, "errno", None) == errno.ECONNREFUSED
               for c in causes):
            reason = f"the connection to port {self.port} was refused (is sshd running there?)"
        elif isinstance(e, socket.gaierror):
            reason = f"unknown host name {self.hostname!r}"
        elif isinstance(e, socket.timeout | TimeoutError):
            reason = f"no answer within {self.connect_timeout} s"
        elif isinstance(e, paramiko.SSHException) and (
                str(e) == "No existing session"  # start_client gave up waiting without an error
                or str(e).startswith("Error reading SSH protocol banner")
                and isinstance(e.__cause__ or e.__context__, socket.timeout | TimeoutError)):
            reason = (f"port {self.port} accepted the connection but the SSH handshake did not finish within "
                      f"{self.connect_timeout} s (is an SSH server listening there?)")
        elif isinstance(e, paramiko.SSHException) and str(e).startswith("Error reading SSH protocol banner"):
            reason = (f"port {self.port} closed the connection before the SSH handshake "
                      f"(is an SSH server listening there, and does it allow this client?)")
        else:
            reason = f"could not connect: {type(e).__name__}: {e}"
        return SSHException(e, self.site, reason)

    def _auth_method(self) -> str:
        """The credentials tried, in words, for an ``AuthException``."""
        if self.skip_auth:
            return "no credentials (skip_auth=True)"
        if self.password is not None:
            return "the password given"
        if self.key_filename:
            return f"key {self.key_filename}"
        return "the SSH agent's and ~/.ssh's keys"

    @property
    def client(self) -> Any:
        """The connected ``paramiko.SSHClient`` (connecting first if needed)."""
        self.connect()
        return self._client

    def sftp(self) -> Any:
        """The channel's SFTP session, opened on first use."""
        with self._lock:
            if self._sftp is None or self._sftp.get_channel().closed:
                client = self.client  # a connection failure raises its own ChannelError
                try:
                    self._sftp = client.open_sftp()
                except Exception as e:
                    raise FileCopyException(e, self.site, "could not open an SFTP session") from e
            return self._sftp

    # --- commands -----------------------------------------------------------------------------------
    def _command(self, cmd: str, envs: dict[str, str] | None) -> str:
        merged = {**self.envs, **(envs or {})}
        exports = "".join(f"export {name}={shlex.quote(str(value))}; " for name, value in merged.items())
        return exports + cmd

    def execute_wait(self, cmd: str, walltime: float | None = None,
                     envs: dict[str, str] | None = None) -> tuple[int, str, str]:
        """As ``Channel.execute_wait``; ``walltime`` bounds the whole call. A command abandoned at
        its walltime is not killed on the host (SSH cannot signal a command without a terminal):
        it ends on its own, or on SIGPIPE when it next writes."""
        client = self.client
        try:
            session = client.get_transport().open_session(timeout=self.connect_timeout)
        except Exception as e:
            self._drop()
            raise SSHException(e, self.site, f"could not open a session to run {cmd!r}: {e}") from e
        deadline = None if walltime is None else time.monotonic() + walltime
        stdout, stderr = bytearray(), bytearray()
        try:
            session.exec_command(self._command(cmd, envs))
            session.shutdown_write()
            try:
                code = _collect(session, deadline, stdout, stderr)
            except TimeoutError:
                logger.warning("Command %r on %s timed out after %s s", cmd, self.site, walltime)
                return -1, stdout.decode(errors="replace"), stderr.decode(errors="replace")
            return code, stdout.decode(errors="replace"), stderr.decode(errors="replace")
        finally:
            session.close()

    def execute_no_wait(self, cmd: str, envs: dict[str, str] | None = None) -> ChannelProcess:
        transport = self.client.get_transport()  # a connection failure raises its own ChannelError
        session = None
        try:
            session = transport.open_session(timeout=self.connect_timeout)
            session.exec_command(self._command(cmd, envs))
        except Exception as e:
            if session is not None:
                session.close()
            raise SSHException(e, self.site, f"could not start {cmd!r}: {e}") from e
        return _RemoteProcess(session)

    # --- files --------------------------------------------------------------------------------------
    @property
    def script_dir(self) -> str:
        with self._lock:
            if self._script_dir is None:
                self._script_dir = self._make_script_dir(self._script_dir_given or DEFAULT_SCRIPT_DIR)
            return self._script_dir

    @script_dir.setter
    def script_dir(self, value: str) -> None:
        with self._lock:
            self._script_dir_given = value
            self._script_dir = None

    def _make_script_dir(self, path: str) -> str:
        path = self.abspath(path)
        try:
            self.makedirs(path, 0o700, exist_ok=True)
        except FileCopyException as e:
            raise BadScriptPath(e.e, self.site) from e
        code, _, err = self.execute_wait(f"test -w {shlex.quote(path)}", self.connect_timeout)
        if code != 0:
            raise BadPermsScriptPath(PermissionError(f"{path} is not writable {err}".strip()), self.site)
        return path

    def push_file(self, source: str, dest_dir: str) -> str:
        dest_dir = self.abspath(dest_dir)
        dest = posixpath.join(dest_dir, os.path.basename(source))
        self.makedirs(dest_dir, 0o700, exist_ok=True)
        try:
            with self._lock:
                sftp = self.sftp()
                sftp.put(source, dest)
                sftp.chmod(dest, stat.S_IMODE(os.stat(source).st_mode))
        except (OSError, EOFError) as e:
            raise FileCopyException(e, self.site, f"could not copy {source} to {dest}") from e
        return dest

    def pull_file(self, remote_source: str, local_dir: str) -> str:
        local = os.path.join(local_dir, posixpath.basename(remote_source))
        source = self.abspath(remote_source)
        try:
            os.makedirs(local_dir, exist_ok=True)
            with self._lock:
                sftp = self.sftp()
                mode = stat.S_IMODE(sftp.stat(source).st_mode)  # before opening local: a missing file
                sftp.get(source, local)                         # leaves no empty copy behind
            os.chmod(local, mode)
        except (OSError, EOFError) as e:
            raise FileCopyException(e, self.site, f"could not copy {remote_source} to {local}") from e
        return local

    def makedirs(self, path: str, mode: int = 0o700, exist_ok: bool = False) -> None:
        path = self.abspath(path)
        if self.isdir(path):
            if not exist_ok:
                raise FileExists(None, self.site, path)
            return
        missing = []
        head = path
        while head not in ("", "/") and not self.isdir(head):
            missing.append(head)
            head = posixpath.dirname(head)
        try:
            with self._lock:
                for directory in reversed(missing):
                    self.sftp().mkdir(directory, mode)
        except OSError as e:
            raise FileCopyException(e, self.site, f"could not create directory {path}") from e

    def isdir(self, path: str) -> bool:
        try:
            with self._lock:
                return stat.S_ISDIR(self.sftp().stat(self.abspath(path)).st_mode)
        except OSError:
            return False

    def abspath(self, path: str) -> str:
        if path.startswith("/"):
            return posixpath.normpath(path)
        if path == "~" or path.startswith("~/"):
            path = path[2:]
        # joined by hand: the server's realpath refuses a path whose parent does not exist yet
        return posixpath.normpath(posixpath.join(self._home(), path)) if path else self._home()

    def _home(self) -> str:
        """The login directory on the host (asked once per connection)."""
        with self._lock:
            if self._home_dir is None:
                self._home_dir = self.sftp().normalize(".")
            return self._home_dir

    def _drop(self) -> None:
        with self._lock:
            client, self._client, self._sftp, self._home_dir = self._client, None, None, None
        if client is not None:
            client.close()

    def close(self) -> bool:
        had = self._client is not None
        self._drop()
        return had


def _collect(session: Any, deadline: float | None, stdout: bytearray, stderr: bytearray) -> int:
    """Read a session's output and error streams into ``stdout``/``stderr`` until both end,
    then its exit status. Raises ``TimeoutError`` at ``deadline`` (``time.monotonic()``).

    Both streams are drained as data comes: a command filling its unread error stream would
    otherwise stall once the SSH window is used up, and waiting per read would let a command
    that prints now and then run past its walltime."""
    out_open = True
    while True:
        while session.recv_stderr_ready():
            stderr += session.recv_stderr(65536)
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise TimeoutError
        session.settimeout(0.05 if remaining is None else min(0.05, remaining))
        try:
            if out_open:
                chunk = session.recv(65536)
                out_open = bool(chunk)
                stdout += chunk
            else:
                chunk = session.recv_stderr(65536)
                if not chunk:
                    break
                stderr += chunk
        except TimeoutError:
            continue
    remaining = None if deadline is None else deadline - time.monotonic()
    if not session.status_event.wait(remaining):
        raise TimeoutError
    return session.recv_exit_status()


def _known_keys(client: Any, name: str) -> Any:
    """The keys recorded for ``name`` (a ``[host]:port``), as ``SSHClient.connect`` finds them: the
    system's known_hosts first, then those the client loaded; None if none."""
    system = getattr(client, "_system_host_keys", None)
    keys = system.lookup(name) if system is not None else None
    return keys if keys is not None else client.get_host_keys().lookup(name)


class _MissingKeyPolicy:
    """paramiko's missing-host-key hook, applying the channel's ``known_hosts_policy``."""

    def __init__(self, channel: SSHChannel) -> None:
        self.channel = channel

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        channel = self.channel
        if channel.known_hosts_policy == "reject":
            raise BadHostKeyException(None, channel.site, (
                f"the host key {_fingerprint(key)} is not known (not in {channel.host_keys_filename} nor the "
                f"system's known_hosts), and known_hosts_policy is 'reject'. Check the fingerprint with the "
                f"site, then add it (ssh-keyscan -p {channel.port} {channel.hostname} >> "
                f"{channel.host_keys_filename}) or pass known_hosts_policy='accept-new'"))
        client.get_host_keys().add(hostname, key.get_name(), key)
        if channel.known_hosts_policy == "accept-new":
            path = channel.host_keys_filename
            if os.path.dirname(path):
                os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            with open(path, "a+") as f:
                f.seek(0)
                ends_line = f.read().endswith("\n") or f.tell() == 0
                f.write(("" if ends_line else "\n") + f"{hostname} {key.get_name()} {key.get_base64()}\n")
            logger.warning("Trusting the new host key %s of %s (recorded in %s)", _fingerprint(key), channel.site,
                           channel.host_keys_filename)
        else:
            logger.warning("Trusting the unknown host key %s of %s for this connection only", _fingerprint(key),
                           channel.site)
