"""Small helpers with Parsl's names: std stream specs, checkpoint directories, timers, repr."""
from __future__ import annotations

import inspect
import logging
import os
import re
import shlex
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Generator, Sequence
from contextlib import contextmanager
from typing import IO, Any

import typeguard

from parsl_repro.errors import ConfigurationError
from parsl_repro.version import VERSION

logger = logging.getLogger(__name__)


def get_version() -> str:
    """The installed parsl_repro version."""
    return VERSION


def _numbered_run_dirs(rundir: str) -> list[str]:
    if not os.path.isdir(rundir):
        return []
    names = sorted((n for n in os.listdir(rundir) if n.isdigit() and os.path.isdir(os.path.join(rundir, n))), key=int)
    return [os.path.join(rundir, n) for n in names]


def get_all_checkpoints(rundir: str = "runinfo") -> Sequence[str]:
    """Every run directory under ``rundir`` that holds a checkpoint, oldest first."""
    found = []
    for run in _numbered_run_dirs(rundir):
        checkpoint = os.path.abspath(os.path.join(run, "checkpoint"))
        if os.path.isdir(checkpoint):
            found.append(checkpoint)
    return found


def get_last_checkpoint(rundir: str = "runinfo") -> Sequence[str]:
    """The checkpoint of the newest run under ``rundir`` that has one, as a one-element list
    (or an empty list when there is none), ready for ``checkpoint_files=``."""
    found = get_all_checkpoints(rundir)
    return found[-1:]


@typeguard.typechecked
def get_std_fname_mode(fdname: str,
                       stdfspec: os.PathLike | str | tuple[str, str] | tuple[os.PathLike, str]) -> tuple[str, str]:
    """Turn a stdout/stderr specification (path, PathLike or ``(path, mode)``) into ``(path, mode)``.

    A specification of the wrong shape raises typeguard's ``TypeCheckError`` naming the argument,
    as Parsl does; the default mode is append (``'a+'``).
    """
    if isinstance(stdfspec, tuple):
        fname, mode = stdfspec
    else:
        fname, mode = stdfspec, "a+"
    path = os.fspath(fname)
    return (path.decode() if isinstance(path, bytes) else path), mode


@contextmanager
def wait_for_file(path: str, seconds: int = 10) -> Generator[None, None, None]:
    """Wait up to ``seconds`` for ``path`` to appear, then run the block either way."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(min(0.05, seconds / 100))
    yield


@contextmanager
def time_limited_open(path: str, mode: str, seconds: int = 1) -> Generator[IO, None, None]:
    """Open ``path`` once it exists (waiting up to ``seconds``)."""
    with wait_for_file(path, seconds):
        pass
    with open(path, mode) as f:
        yield f


def wtime_to_minutes(time_string: str) -> int:
    """Convert a ``HH:MM:SS`` wall time to whole minutes."""
    hours, mins, _seconds = time_string.split(":")
    total = int(hours) * 60 + int(mins)
    if total < 1:
        logger.warning("Time string '%s' parsed to %s minutes, less than 1", time_string, total)
    return total


def parse_period(period: str) -> int:
    """Seconds in an ``'HH:MM:SS'`` period (``checkpoint_period``); ``ConfigurationError`` if malformed."""
    try:
        hours, minutes, seconds = (int(part) for part in period.split(":"))
    except ValueError:
        raise ConfigurationError(f"Config: invalid checkpoint_period {period!r}, expected 'HH:MM:SS'") from None
    return hours * 3600 + minutes * 60 + seconds


class RepresentationMixin:
    """Gives a class a ``__repr__`` that reads like the call that built it.

    Every constructor argument must be kept as an attribute of the same name; with
    ``_validate_repr`` set, a missing one raises ``AttributeError`` instead of printing a
    placeholder.
    """

    __max_width__ = 80
    _validate_repr = False

    def __repr__(self) -> str:
        init = self.__init__  # type: ignore[misc]
        init = getattr(init, "__wrapped__", init)
        spec = inspect.getfullargspec(init)
        names = spec.args[1:]
        n_defaults = len(spec.defaults or ())
        positional = names[: len(names) - n_defaults]
        keyword = names[len(names) - n_defaults:] + list(spec.kwonlyargs)
        if self._validate_repr:
            for name in names:
                if not hasattr(self, name):
                    raise AttributeError(f"class {type(self).__name__} uses {name} in the constructor, "
                                         f"but does not define it as an attribute")
        missing = "<unrecorded>"
        args = [repr(getattr(self, a, missing)) for a in positional]
        kwargs = [f"{k}={getattr(self, k, missing)!r}" for k in sorted(keyword)]
        line = f"{type(self).__name__}({', '.join(args + kwargs)})"
        if len(line) <= self.__max_width__:
            return line
        body = ",".join("\n    " + part.replace("\n", "\n    ") for part in args + kwargs)
        return f"{type(self).__name__}({body}\n)"


class AtomicIDCounter:
    """Hands out 0, 1, 2, ... safely from many threads."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def get_id(self) -> int:
        with self.lock:
            new_id = self.count
            self.count += 1
            return new_id


def setproctitle(title: str) -> None:
    """Set the process title when the optional ``setproctitle`` module is installed."""
    try:
        import setproctitle as module
    except ImportError:
        logger.debug("setproctitle not installed; process title stays as it is (%s)", title)
        return
    module.setproctitle(title)


class Timer:
    """Calls ``callback(*args)`` every ``interval`` seconds on a daemon thread until ``close()``."""

    def __init__(self, callback: Callable, *args: Any, interval: float = 5, name: str | None = None) -> None:
        self.callback = callback
        self.args = args
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name or "Timer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.callback(*self.args)
            except Exception:
                logger.exception("Timer callback %r raised", self.callback)

    def close(self, timeout: float | None = None) -> None:
        """Stop the timer and wait for its thread. Safe to call more than once."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)


class AutoCancelTimer(threading.Timer):
    """A ``threading.Timer`` usable as a context manager: it starts on entry and is cancelled on exit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.daemon = True

    def __enter__(self) -> AutoCancelTimer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cancel()


_DNS_BAD = re.compile(r"[^a-z0-9-]")


def sanitize_dns_label_rfc1123(raw_string: str) -> str:
    """Make ``raw_string`` a valid RFC 1123 DNS label (lowercase, ``[a-z0-9-]``, at most 63 characters)."""
    label = _DNS_BAD.sub("-", raw_string.lower())
    label = re.sub(r"-+", "-", label)[:63].strip("-")
    if not label:
        raise ValueError(f"Sanitized DNS label is empty for input '{raw_string}'")
    return label


def sanitize_dns_subdomain_rfc1123(raw_string: str) -> str:
    """Make ``raw_string`` a valid RFC 1123 subdomain: dot-separated labels, at most 253 characters."""
    labels = [re.sub(r"-+", "-", _DNS_BAD.sub("-", part.lower())).strip("-") for part in raw_string.split(".")]
    name = ".".join(part for part in labels if part)[:253].strip("-.")
    if not name:
        raise ValueError(f"Sanitized DNS subdomain is empty for input '{raw_string}'")
    return name


def execute_wait(cmd: str, walltime: float | None = None) -> tuple[int, str, str]:
    """Run ``cmd`` in a shell and return ``(exit code, stdout, stderr)``; -1 when it timed out."""
    try:
        proc = subprocess.run(["/bin/bash", "-c", cmd], capture_output=True, text=True, timeout=walltime)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        logger.warning("Command %s timed out after %s s", shlex.quote(cmd), walltime)
        return -1, out, err
    return proc.returncode, proc.stdout, proc.stderr


_URL_PASSWORD = re.compile(
    r"(?P<user>//[^\s:/@\[\]]*:)"  # the "//user:" of a URL (any scheme, or a mistyped one)
    r"(?!\d+(?:[/?#\s]|$))"  # not "//host:port/...", whose path may hold an "@"
    r"[^\s@]+@")  # the password: up to the "@", whatever it holds ("/", quotes, "%40")


_URL_PASSWORD_BYTES = re.compile(
    rb"[A-Za-z][A-Za-z0-9+.-]+://"  # a scheme: in binary data, the URL must look like text from its start
    rb"[A-Za-z0-9._~%!$&'()*+,;=-]*:"  # the user and its colon
    rb"(?!\d+[/?#])"  # not a port
    rb"[\x21-\x3f\x41-\x7e]+@"  # the password: printable ASCII up to the "@"
    rb"[A-Za-z0-9\[]")  # the start of a host


def holds_url_password(data: bytes) -> bool:
    """Whether ``data`` (serialized arguments, say) holds a URL with a password in it, written as
    ASCII or UTF-8 text (as pickle writes ``str`` values)."""
    return b"://" in data and _URL_PASSWORD_BYTES.search(data) is not None  # the cheap test first


def redact_secrets(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``: ``postgresql://alice:***@db/x``.

    The one redactor of the project, for a single URL (a database URL in a message, a file URL in
    the store) and for text holding URLs (a ``Config``'s repr, an ``argv`` item). A URL without a
    password is returned as it is. It errs on the side of hiding: a password is whatever lies
    between ``//user:`` and the next ``@`` (SQLAlchemy reads it so, although RFC 3986 allows no
    ``/`` there), unless what follows the colon is a port followed by a path.
    """
    return _URL_PASSWORD.sub(r"\g<user>***@", text)


TRACEBACK_LIMIT = 16 * 1024
"""Characters of a failure's traceback that the record keeps: the end, where the raising frames
and the message are."""


def failure_traceback(error: BaseException, limit: int = TRACEBACK_LIMIT) -> str:
    """``error``'s traceback as Python prints it (with its chained causes; for a task that failed in
    a worker, the worker's frames, which travel back with the exception), without the outer frames
    of parsl_repro and ``concurrent.futures`` that ran the app, passwords in URLs hidden, cut to its
    last ``limit`` characters."""
    described = traceback.TracebackException.from_exception(error)
    for part in _chain(described):
        frames = list(part.stack)
        while len(frames) > 1 and _is_framework(frames[0].filename):
            frames.pop(0)
        part.stack = traceback.StackSummary.from_list(frames)
    text = "".join(described.format())
    if len(text) > limit:
        text = f"[... {len(text) - limit} characters cut ...]\n" + text[-limit:]
    return redact_secrets(text)


_FRAMEWORK_DIRS = (os.path.dirname(os.path.abspath(__file__)) + os.sep,
                   os.path.join("concurrent", "futures") + os.sep)


def _is_framework(filename: str) -> bool:
    return filename.startswith(_FRAMEWORK_DIRS[0]) or _FRAMEWORK_DIRS[1] in filename


def _chain(described: traceback.TracebackException) -> list[traceback.TracebackException]:
    """``described`` and the exceptions it was caused by or raised during, each once."""
    seen: list[traceback.TracebackException] = []
    todo = [described]
    while todo:
        part = todo.pop()
        if any(part is known for known in seen):
            continue
        seen.append(part)
        todo.extend(x for x in (part.__cause__, part.__context__) if x is not None)
    return seen


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
