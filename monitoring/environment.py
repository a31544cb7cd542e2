"""The environment a workflow run starts in, captured for its provenance record.

:func:`capture_environment` answers "what code ran, where, with what": the ``__main__`` script and the
sha256 of its bytes, the command line, user, host, working directory, the Python interpreter and
platform, every installed distribution with its version (and one digest over that list), and the git
commit of the repository holding the script, whether its tracked files had uncommitted changes and a
digest of those changes. The result is a frozen :class:`RunEnvironment`; :meth:`RunEnvironment.as_dict`
gives a JSON-ready dict for the provenance store.

Capturing never fails a run: a missing ``git``, a directory outside any repository, a git command that
runs out of time or a script file that cannot be read is logged at DEBUG and leaves the fields it
concerns ``None``.

A run's record gets a :class:`PendingEnvironment`: it reads at once what the run may change later
(``argv``, the working directory, the ``__main__`` script's path, ``sys.path``) and leaves the slow
part (the package list, git, the script's digest) to whoever first reads it. In a recorded run
that is the run's writer process, which receives it unread, so that starting a run never waits for
the capture and the run's own process does not spend its time on it.

Secrets are kept out of the record:

* environment variables are not recorded at all;
* in ``argv`` (see :func:`redact_argv`) the value after a flag whose name reads as a secret
  (``--password VALUE``, ``--token=VALUE``, ``--api-key VALUE``, ...) becomes ``"***"``, as does the
  value of a ``NAME=VALUE`` item whose name reads as a secret (``DB_PASSWORD=...``, ``GITHUB_TOKEN=...``),
  and the password in a URL's user info (``postgres://user:***@host/db``). A name reads as a secret when,
  split into words at punctuation and camelCase boundaries, one of its words ends in ``password``,
  ``passwd``, ``passphrase``, ``secret`` or ``token``, or its last word is ``key`` or ends in ``apikey``
  (so ``--api-key`` and ``--key`` are redacted but ``--max-tokens``, ``--tokenizer`` and ``--key-column``
  are not). Everything else in ``argv`` is kept as given.

Git is run as ``git -C <dir> ...`` with stdin closed, ``GIT_OPTIONAL_LOCKS=0`` (so it never takes the
index lock another git process may need) and one time budget for all its commands; a command that
overruns is killed together with anything it started.
"""
from __future__ import annotations

import dataclasses
import functools
import getpass
import hashlib
import importlib.metadata
import logging
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from parsl_repro.utils import redact_secrets

logger = logging.getLogger(__name__)

REDACTED = "***"

# Variables that would make `git -C <dir>` look somewhere other than <dir> for the repository.
_GIT_LOCATION_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_NAMESPACE")


@dataclass(frozen=True)
class RunEnvironment:
    """Where, how and with what code a run was started (see the module docstring for what is redacted)."""

    script_path: str | None  # absolute path of the __main__ script (None in an interactive session / python -c)
    script_sha256: str | None  # sha256 hex of the script file's bytes
    argv: tuple[str, ...]  # sys.argv with secret values replaced by "***"
    user: str
    host: str
    cwd: str
    python_version: str  # e.g. "3.11.7"
    python_executable: str
    platform: str  # platform.platform()
    packages: tuple[tuple[str, str], ...]  # (normalised distribution name, version), sorted, deduplicated
    packages_digest: str  # sha256 hex over the canonical "name==version\n" lines
    git_commit: str | None  # HEAD commit of the repository containing the script (or cwd if no script)
    git_dirty: bool | None  # uncommitted changes to tracked files (None when not in a git repo)
    git_diff_sha256: str | None  # sha256 of `git diff HEAD` output when dirty, else None
    git_repository: str | None  # top-level path of that repository

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``argv`` as a list, ``packages`` as a list of ``[name, version]`` pairs."""
        data = dataclasses.asdict(self)
        data["argv"] = list(self.argv)
        data["packages"] = [[name, version] for name, version in self.packages]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunEnvironment:
        """The inverse of :meth:`as_dict` (unknown keys are ignored)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in fields}
        values["argv"] = tuple(values.get("argv", ()))
        values["packages"] = tuple((str(name), str(version)) for name, version in values.get("packages", ()))
        return cls(**values)


def capture_environment(script_path: str | None = None, *, git_timeout: float = 2.0) -> RunEnvironment:
    """Capture the environment of this process.

    ``script_path`` defaults to :func:`script_of_main`. The git fields describe the repository holding
    the script (its real path, so a symlinked script is traced to the repository of its target), or the
    current directory when there is no script. ``git_timeout`` is the time in seconds allowed for all git
    commands together. Never raises for git or script-file problems; those fields are left ``None``.
    """
    script_path = script_of_main() if script_path is None else os.path.abspath(script_path)
    return _capture(_StartFacts(script_path, redact_argv(sys.argv), _cwd(), None, sys.executable), git_timeout)


class _StartFacts(NamedTuple):
    """What a capture needs to read at once, because the run may change it as it goes on."""
    script_path: str | None
    argv: tuple[str, ...]  # redacted
    cwd: str
    sys_path: tuple[str, ...] | None  # where to look for distributions; None: this process's sys.path
    executable: str


def _capture(facts: _StartFacts, git_timeout: float) -> RunEnvironment:
    """The environment of the process ``facts`` were read in: this one, or the run whose writer this is
    (same interpreter, host and user)."""
    script_path, argv, cwd = facts.script_path, facts.argv, facts.cwd
    packages = installed_packages(facts.sys_path)
    if script_path is not None:
        git_dir = os.path.dirname(os.path.realpath(script_path))
    else:
        git_dir = cwd or "."
    repository, commit, dirty, diff_sha256 = _git_state(git_dir, git_timeout)
    return RunEnvironment(
        script_path=script_path,
        script_sha256=_file_sha256(script_path) if script_path is not None else None,
        argv=argv,
        user=_user(),
        host=socket.gethostname(),
        cwd=cwd,
        python_version=platform.python_version(),
        python_executable=facts.executable,
        platform=platform.platform(),
        packages=packages,
        packages_digest=packages_digest(packages),
        git_commit=commit,
        git_dirty=dirty,
        git_diff_sha256=diff_sha256,
        git_repository=repository,
    )


class PendingEnvironment(Mapping[str, Any]):
    """``capture_environment().as_dict()`` of this process, captured when first read rather than when made.

    What a run may change as it goes on (``argv``, the working directory, the ``__main__`` script's
    path, ``sys.path``) is read when it is made; the rest (packages, git, the script's digest, ...)
    by the first thread that reads it, once: others wait for that capture and see the same values.
    A capture that raises is logged and leaves only what was read at once.

    Pickled once read, it is a plain ``dict``. Pickled before, it carries only what was read at
    once, and the process that unpickles it captures the rest when it reads it: the run's writer
    process, a child of the same interpreter, host and user, which looks for the run's packages
    along the run's ``sys.path``. (The run's process, reading its own copy later, captures the same
    things again.)
    """

    def __init__(self, facts: _StartFacts | None = None, git_timeout: float = 2.0) -> None:
        self._facts = facts or _StartFacts(script_of_main(), redact_argv(sys.argv), _cwd(), tuple(sys.path),
                                           sys.executable)
        self._git_timeout = git_timeout
        self._lock = threading.Lock()
        self._data: dict[str, Any] | None = None

    def resolve(self) -> dict[str, Any]:
        """The captured environment as a plain dict (captured now if no thread has yet)."""
        with self._lock:
            if self._data is None:
                facts = self._facts
                try:
                    self._data = _capture(facts, self._git_timeout).as_dict()
                except Exception:
                    logger.exception("Capturing the run's environment failed; its record names only the "
                                     "script, argv and working directory")
                    self._data = {"script_path": facts.script_path, "argv": list(facts.argv), "cwd": facts.cwd}
            return self._data

    def __getitem__(self, key: str) -> Any:
        return self.resolve()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.resolve())

    def __len__(self) -> int:
        return len(self.resolve())

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        data = self._data
        return (dict, (data,)) if data is not None else (PendingEnvironment, (self._facts, self._git_timeout))

    def __repr__(self) -> str:
        data = self._data
        return f"PendingEnvironment({'<not captured yet>' if data is None else data!r})"


def script_of_main() -> str | None:
    """The absolute path of ``sys.modules['__main__'].__file__`` when it is a real file, else ``None``.

    ``None`` in an interactive session, under ``python -c`` or when ``__main__`` came from a zip or
    a frozen executable.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not isinstance(path, str) or not path:
        return None
    path = os.path.abspath(path)
    return path if os.path.isfile(path) else None


@functools.lru_cache(maxsize=4)
def installed_packages(path: tuple[str, ...] | None = None) -> tuple[tuple[str, str], ...]:
    """Every distribution installed along ``path`` (default: ``sys.path``) as ``(normalised name, version)``,
    sorted by name.

    Names are normalised as in PEP 503 (``Typing_Extensions`` -> ``typing-extensions``). When a name is
    installed more than once along the path the first one, which is the one imported, is kept.
    Cached per process and path (``installed_packages.cache_clear()`` forgets it), so packages installed
    after the first call are not seen.
    """
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions(**({} if path is None else {"path": list(path)})):
        try:
            name = dist.metadata["Name"]
            version = dist.version
        except Exception as exc:  # a broken dist-info directory must not stop the capture
            logger.debug("skipping unreadable distribution %r: %s", dist, exc)
            continue
        if not name:
            continue
        found.setdefault(_normalise_name(name), version or "")
    return tuple(sorted(found.items()))


def packages_digest(packages: Iterable[tuple[str, str]]) -> str:
    """The sha256 hex digest over the canonical ``"name==version\\n"`` lines of ``packages``.

    Names are normalised and the pairs deduplicated and sorted (as :func:`installed_packages` returns
    them) first, so the digest depends only on which versions are listed, not on their order.
    """
    canonical = sorted({(_normalise_name(name), version) for name, version in packages})
    text = "".join(f"{name}=={version}\n" for name, version in canonical)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def redact_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """``argv`` with secret values replaced by ``"***"`` (the rules are in the module docstring)."""
    redacted: list[str] = []
    redact_next = False
    for item in argv:
        if redact_next:
            redacted.append(REDACTED)
            redact_next = False
            continue
        flag = _FLAG.match(item)
        if flag is not None:
            if _is_secret_name(flag.group("name")):
                if flag.group("value") is None:
                    redact_next = True
                    redacted.append(item)
                else:
                    redacted.append(f"{flag.group('dashes')}{flag.group('name')}={REDACTED}")
                continue
            redacted.append(redact_secrets(item))
            continue
        assignment = _ASSIGNMENT.match(item)
        if assignment is not None and _is_secret_name(assignment.group("name")):
            redacted.append(f"{assignment.group('name')}={REDACTED}")
            continue
        redacted.append(redact_secrets(item))
    return tuple(redacted)


_FLAG = re.compile(r"^(?P<dashes>--?)(?P<name>[A-Za-z][\w.-]*)(?:=(?P<value>.*))?$", re.DOTALL)
_ASSIGNMENT = re.compile(r"^(?P<name>[A-Za-z_][\w.-]*)=(?P<value>.*)$", re.DOTALL)
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SECRET_WORD_ENDINGS = ("password", "passwd", "passphrase", "secret", "token")


def _is_secret_name(name: str) -> bool:
    words = [word.lower() for word in _WORD.findall(name)]
    if not words:
        return False
    if any(word.endswith(_SECRET_WORD_ENDINGS) for word in words):
        return True
    return words[-1] == "key" or words[-1].endswith("apikey")


def _normalise_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _file_sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        logger.debug("cannot read script %s for its digest: %s", path, exc)
        return None


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError as exc:  # the working directory was removed
        logger.debug("cannot read the working directory: %s", exc)
        return ""


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception as exc:  # no login name variable and no passwd entry (e.g. an arbitrary container uid)
        logger.debug("cannot determine the user name: %s", exc)
        return str(os.getuid()) if hasattr(os, "getuid") else ""


def _git_state(directory: str, timeout: float) -> tuple[str | None, str | None, bool | None, str | None]:
    """(repository top level, HEAD commit, dirty, sha256 of `git diff HEAD`) for ``directory``."""
    deadline = time.monotonic() + timeout
    env = {key: value for key, value in os.environ.items() if key not in _GIT_LOCATION_VARIABLES}
    env["GIT_OPTIONAL_LOCKS"] = "0"
    env["GIT_TERMINAL_PROMPT"] = "0"

    # One call for both: prints the top level, then the commit; exits 1 after the top level when HEAD
    # has no commit yet, and 128 with no output outside a repository.
    located = _run_git(directory, ["rev-parse", "--show-toplevel", "--verify", "-q", "HEAD^{commit}"], env, deadline)
    if located is None:
        return None, None, None, None
    returncode, output = located
    lines = output.decode("utf-8", "surrogateescape").splitlines()
    if returncode not in (0, 1) or not lines:
        logger.debug("%s is not in a git work tree (git rev-parse exited %d)", directory, returncode)
        return None, None, None, None
    repository = lines[0]
    if returncode != 0 or len(lines) < 2:
        logger.debug("git repository %s has no commit yet", repository)
        return repository, None, None, None
    commit = lines[1].strip()

    # `git diff` (unlike `git diff-index`) refreshes stat information in memory, so a file touched but
    # unchanged is not reported. Options pin the output against user configuration (colour, external
    # diff drivers, textconv); --binary makes binary changes count by content.
    diffed = _run_git(
        repository,
        ["diff", "HEAD", "--no-color", "--no-ext-diff", "--no-textconv", "--binary"],
        env,
        deadline,
    )
    if diffed is None:
        return repository, commit, None, None
    returncode, output = diffed
    if returncode != 0:
        logger.debug("git diff HEAD in %s exited %d", repository, returncode)
        return repository, commit, None, None
    if not output:
        return repository, commit, False, None
    return repository, commit, True, hashlib.sha256(output).hexdigest()


def _run_git(directory: str, args: list[str], env: dict[str, str], deadline: float) -> tuple[int, bytes] | None:
    """(exit code, stdout) of ``git -C directory *args``, or None when git cannot run or runs out of time."""
    remaining = deadline - time.monotonic()
    command = ["git", "-C", directory, *args]
    if remaining <= 0:
        logger.debug("no time left for %s", command)
        return None
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=os.name == "posix",
        )
    except OSError as exc:  # git is not installed, or not executable
        logger.debug("cannot run %s: %s", command, exc)
        return None
    try:
        stdout, stderr = process.communicate(timeout=remaining)
    except subprocess.TimeoutExpired:
        logger.debug("%s did not finish within the git time budget; killed", command)
        _kill(process)
        return None
    if process.returncode != 0 and stderr:
        logger.debug("%s: %s", command, stderr.decode("utf-8", "replace").strip())
    return process.returncode, stdout


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill ``process`` and, on POSIX, its session, so no child keeps the pipes open; then reap it."""
    try:
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except OSError:
        pass
    try:
        process.communicate(timeout=1.0)
    except subprocess.TimeoutExpired:  # a child that escaped the session still holds a pipe
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        process.wait()
