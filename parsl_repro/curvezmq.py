"""ZeroMQ contexts whose sockets are encrypted and authenticated with CurveZMQ.

``create_certificates(base_dir)`` makes a fresh pair of keypairs for one run, one for the server
side (the interchange, the monitoring router) and one for its clients (the executor, the worker
pools), in ``base_dir/certificates``: a directory only its owner can enter (0o700), holding files
only its owner can read (0o600). Whoever can read that directory can talk to the run, so it must
stay private; contexts refuse to use a directory that is not.

A ``ServerContext`` runs a ZAP authenticator thread that admits only clients presenting a public key
found in the certificate directory; a ``ClientContext`` checks the server's key. With
``cert_dir=None`` both are plain contexts: no encryption, no authentication.

    ctx = ServerContext(cert_dir)             ctx = ClientContext(cert_dir)
    sock = ctx.socket(zmq.ROUTER)             sock = ctx.socket(zmq.DEALER)
    sock.bind(...)                            sock.connect(...)
    ...                                       ...
    ctx.destroy()                             ctx.destroy()
"""
from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from abc import ABCMeta, abstractmethod
from typing import Any

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

logger = logging.getLogger(__name__)

_CERTIFICATES = "certificates"


def create_certificates(base_dir: str | os.PathLike) -> str:
    """Write new server and client keypairs into ``base_dir/certificates`` and return that path.

    Existing keys there are replaced. The directory is created private (0o700); an existing one
    must already be private and owned by this user, since others may have planted keys in it.
    """
    os.makedirs(base_dir, exist_ok=True)
    cert_dir = os.path.join(os.fspath(base_dir), _CERTIFICATES)
    _make_private_directory(cert_dir)
    for name in ("server", "client"):
        public_key, secret_key = zmq.curve_keypair()
        _write_private_file(cert_dir, f"{name}.key", _certificate_text(public_key, None))
        _write_private_file(cert_dir, f"{name}.key_secret", _certificate_text(public_key, secret_key))
    logger.debug("Created CurveZMQ certificates in %s", cert_dir)
    return cert_dir


def _make_private_directory(path: str) -> None:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    else:
        os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
        return
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(f"{path} exists and is not a directory; remove it to create certificates there")
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(
            f"The certificates directory {path} already exists but is not private to this user (mode "
            f"0o{info.st_mode & 0o777:o}, owner uid {info.st_uid}): other users may have added keys to it. "
            f"Remove it, or use a fresh run directory.")


def _write_private_file(directory: str, filename: str, text: str) -> None:
    # mkstemp creates the file 0o600 whatever the umask; the rename replaces old keys atomically.
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{filename}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temporary, os.path.join(directory, filename))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _certificate_text(public_key: bytes, secret_key: bytes | None) -> str:
    # The ZPL layout that zmq.auth.load_certificate(s) reads.
    kind = "public" if secret_key is None else "secret"
    lines = [f"#   CurveZMQ {kind} certificate for one parsl_repro run.",
             "#   Keep it private: anyone who can read the secret keys can join the run.",
             "",
             "metadata",
             "curve",
             f'    public-key = "{public_key.decode("ascii")}"']
    if secret_key is not None:
        lines.append(f'    secret-key = "{secret_key.decode("ascii")}"')
    return "\n".join(lines) + "\n"


def _load_certificate(cert_dir: str | os.PathLike, name: str) -> tuple[bytes, bytes]:
    """Return ``(public_key, secret_key)`` of keypair ``name`` ("server" or "client") in ``cert_dir``."""
    info = os.stat(cert_dir)
    if info.st_mode & 0o777 != 0o700:
        raise OSError(f"The certificates directory must be private (mode 0o700), but {os.fspath(cert_dir)} has "
                      f"mode 0o{info.st_mode & 0o777:o}: other users could read the keys. Make new ones with "
                      f"create_certificates.")
    if info.st_uid != os.getuid():
        raise OSError(f"The certificates directory {os.fspath(cert_dir)} belongs to another user (uid "
                      f"{info.st_uid}); use certificates this user created.")
    secret_file = os.path.join(cert_dir, f"{name}.key_secret")
    public_key, secret_key = zmq.auth.load_certificate(secret_file)
    if secret_key is None:
        raise ValueError(f"No secret key found in {secret_file}")
    return public_key, secret_key


class BaseContext(metaclass=ABCMeta):
    """A zmq context whose ``socket`` applies this side's CurveZMQ keys (or none, without ``cert_dir``)."""

    def __init__(self, cert_dir: str | os.PathLike | None) -> None:
        self.cert_dir = cert_dir
        self._ctx = zmq.Context()

    @property
    def encrypted(self) -> bool:
        """Whether sockets are encrypted and authenticated (False when ``cert_dir`` is None)."""
        return self.cert_dir is not None

    @property
    def closed(self) -> bool:
        return self._ctx.closed

    @abstractmethod
    def socket(self, socket_type: int, *args: Any, **kwargs: Any) -> zmq.Socket:
        """A new socket of ``socket_type`` (zmq.ROUTER, zmq.DEALER, ...) with keys and options applied;
        other arguments go to ``zmq.Context.socket``."""

    def term(self) -> None:
        """Terminate the context; blocks until its sockets are closed."""
        self._ctx.term()

    def destroy(self, linger: int | None = None) -> None:
        """Close every socket of this context (with ``linger`` if given), then terminate it.

        Not thread safe: no other thread may be using one of the sockets.
        """
        self._ctx.destroy(linger)

    def __enter__(self) -> BaseContext:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.destroy(linger=0)


class ServerContext(BaseContext):
    """The side that binds. With certificates, runs an authenticator thread (``auth_thread``) that
    admits only clients whose public key is in ``cert_dir``; it stops in ``term()``/``destroy()``."""

    def __init__(self, cert_dir: str | os.PathLike | None) -> None:
        super().__init__(cert_dir)
        self.auth_thread: ThreadAuthenticator | None = None
        if cert_dir is not None:
            self.auth_thread = ThreadAuthenticator(self._ctx, log=logging.getLogger(f"{__name__}.zap"))
            self.auth_thread.start()
            self.auth_thread.configure_curve(domain="*", location=os.fspath(cert_dir))

    def socket(self, socket_type: int, *args: Any, **kwargs: Any) -> zmq.Socket:
        sock = self._ctx.socket(socket_type, *args, **kwargs)
        try:
            if self.cert_dir is not None:
                _, secret_key = _load_certificate(self.cert_dir, "server")
                try:
                    sock.setsockopt(zmq.CURVE_SECRETKEY, secret_key)
                except zmq.ZMQError as e:
                    raise ValueError("Invalid CurveZMQ key format") from e
                sock.setsockopt(zmq.CURVE_SERVER, True)  # before bind
            sock.setsockopt(zmq.IPV6, True)  # listen on IPv6 as well as IPv4
        except BaseException:
            sock.close(linger=0)
            raise
        return sock

    def _stop_auth_thread(self) -> None:
        auth_thread, self.auth_thread = self.auth_thread, None
        if auth_thread is not None:
            auth_thread.stop()

    def term(self) -> None:
        self._stop_auth_thread()
        super().term()

    def destroy(self, linger: int | None = None) -> None:
        self._stop_auth_thread()
        super().destroy(linger)

    def __del__(self) -> None:
        # A context dropped without term()/destroy() must not leave its thread running.
        if getattr(self, "auth_thread", None) is not None:
            self._stop_auth_thread()


class ClientContext(BaseContext):
    """The side that connects: presents the client keypair and accepts only the server's key."""

    def socket(self, socket_type: int, *args: Any, **kwargs: Any) -> zmq.Socket:
        sock = self._ctx.socket(socket_type, *args, **kwargs)
        try:
            if self.cert_dir is not None:
                public_key, secret_key = _load_certificate(self.cert_dir, "client")
                server_public_key, _ = _load_certificate(self.cert_dir, "server")
                try:
                    sock.setsockopt(zmq.CURVE_PUBLICKEY, public_key)
                    sock.setsockopt(zmq.CURVE_SECRETKEY, secret_key)
                    sock.setsockopt(zmq.CURVE_SERVERKEY, server_public_key)
                except zmq.ZMQError as e:
                    raise ValueError("Invalid CurveZMQ key format") from e
            sock.setsockopt(zmq.IPV6, True)
        except BaseException:
            sock.close(linger=0)
            raise
        return sock
