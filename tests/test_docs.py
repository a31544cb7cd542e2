"""The code blocks of the docs that are marked as runnable run, and print what the docs show.

Marking a block
===============

A doc marks a fenced code block with an HTML comment on the line immediately before its opening
fence (no blank line between; GitHub does not render HTML comments)::

    <!-- doctest: SESSION [ACTION] [key=value ...] -->

For example ``<!-- doctest: gs -->``, ``<!-- doctest: gs prelude=no -->``,
``<!-- doctest: ckpt file file=ckpt.py -->``, ``<!-- doctest: ckpt shell tty -->``,
``<!-- doctest: pg skip reason="needs a PostgreSQL server" -->``. Words are split as a POSIX shell
does, so a value with spaces is written in double quotes. In a list item, the marker and the fence
are indented alike; the block's text is taken without that indentation.

SESSION is a name (letters, digits, ``_``, ``-``, ``.``). All blocks of one SESSION in one file run
in the order of the file, in one fresh temporary directory, the session's working directory, so a
block sees the files that earlier blocks of its session wrote (and each kernel a snippet loads makes
the next ``runinfo/NNN``). Different sessions are independent (separate directories): each
(file, SESSION) pair is one test case, with an id like ``getting-started.md::gs``.

Actions for a ```python block:

``run`` (the default)
    Write the block, after the session's prelude (see ``prelude``), to ``snippet_N.py`` (N counts
    the session's blocks from 1), or to NAME with ``file=NAME``, in the session directory, and run
    it there with the venv's python (``sys.executable``), stdin empty, 120 s at most. It must exit
    with status 0, or N given ``exit=N``. Its stdout (with stderr interleaved, given
    ``stderr=merge``; otherwise stderr is only shown when the block fails) must match the expected
    output: the very next fenced block of the file, if that is a ```text block with no marker of
    its own; if there is no such block, stdout must be empty. ``prelude=no`` leaves the session's
    prelude out of this block. (``file=NAME`` alone is a ``run`` block: to only write a file, say
    ``file file=NAME``.)
``file``
    Only write the block to ``file=NAME`` (required) in the session directory, e.g. for a script
    that the ``$ python NAME`` commands of a later ``shell`` block run. Nothing is run.
``prelude``
    The session's prelude: prepended to every later ``run`` block of the session that does not say
    ``prelude=no`` (a later ``prelude`` block replaces it; earlier blocks do not get it). The block
    is also run once, where it stands, to check that it works: it must exit with status 0 and
    print nothing.

Actions for a ```text (or ```console) block:

``shell``
    A terminal transcript. Each line starting with ``$`` and a space is a command (one line; no
    ``\\`` continuations); the lines after it, up to the next command, are its expected output. Each
    command runs with ``bash -c`` in the session directory, stdout and stderr merged as a terminal
    shows them, with the venv's ``bin`` directory first on ``PATH`` (so ``python`` and
    ``parsl-repro`` are the venv's), 120 s at most. A command killed by a signal is followed, as an
    interactive shell shows it, by a line naming the signal (``Killed``). Options:

    * ``tty``: run each command under a pseudo-terminal (the ``pty`` module), its stdin, stdout,
      stderr and controlling terminal, so that ``sys.stdout.isatty()`` is true for the last command
      of a pipeline, as in a terminal; ``TERM=xterm-256color``, so rich draws its tables with box
      characters. Escape sequences (colours, bold) are dropped from the output, as a terminal does
      not show them either. Without ``tty``, stdin is empty and stdout a pipe.
    * ``columns=N``: the terminal's width, and ``COLUMNS`` (default 140).
    * ``exit=N``: every command of the block must exit with status N (not checked otherwise).

Action for any block:

``skip``
    A block deliberately not run, with ``reason=words-joined-by-dashes`` or ``reason="in quotes"``
    (required): e.g. a snippet that needs a remote PostgreSQL server that does not exist, or a
    transcript of a database outage. Skipped blocks are counted: each is one skipped test of
    ``test_skipped_block``, with its reason (``pytest -rs`` lists them). A marked ```text block is
    never taken as the expected output of the ``run`` block before it.

Every ```python block of the docs in ``DOCS`` must carry a marker (``run``, ``file``, ``prelude``
or ``skip``), so a new snippet cannot escape the test. A malformed or misplaced marker fails
``test_markers_follow_the_grammar``.
```sh blocks (installation commands) and unmarked ```text blocks are never run.

Environment
===========

Every command and snippet runs with ``PYTHONUNBUFFERED=1``, ``TZ=UTC`` (times in outputs are in
UTC), ``LC_ALL=C.UTF-8``, ``PYTHONIOENCODING=utf-8``, ``COLUMNS`` (140 unless ``columns=N``),
without ``PARSL_REPRO_PROVENANCE_URL`` (each session records into its own
``runinfo/provenance.db``), with a git identity (``GIT_AUTHOR_NAME`` ...; no global git
configuration) so that a transcript may commit, and, unless under ``tty``, with ``TERM=dumb`` and
``NO_COLOR=1``. Exit
statuses are those a shell reports: killed by signal N is 128 + N.

Comparison
==========

As doctest's ELLIPSIS: trailing whitespace of every line and trailing blank lines are ignored, and
``...`` in the expected text, together with the spaces before and after it, stands for any text,
possibly empty, possibly several lines (so a table cell may show ``...`` padded to the column's
width). A
mismatch fails the session's test with a unified diff, naming the doc file and the line of the
block (of the command, in a transcript); the session's later blocks still run (unless a block timed
out), so one run shows every mismatch of a session.
"""
from __future__ import annotations

import difflib
import fcntl
import os
import pty
import re
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "docs" / "getting-started.md", ROOT / "docs" / "provenance.md", ROOT / "docs" / "api.md",
        ROOT / "docs" / "visualize.md", ROOT / "docs" / "provenance-export.md",
        ROOT / "docs" / "reproduce.md"]

ELLIPSIS = re.compile(r" *\.\.\. *")
"""``...`` and the spaces next to it: spaces let a table keep its columns aligned around a value
that changes from run to run (``│ ...          │``)."""
TIMEOUT = 120  # seconds, per snippet or command
DOC_HOST = "vm"
"""The host name that the docs' outputs show (``parsl-repro runs`` has a host column, whose width
follows the name): commands run on a host of that name (see ``on_doc_host``)."""
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "A. Scientist", "GIT_AUTHOR_EMAIL": "scientist@example.org",
                "GIT_COMMITTER_NAME": "A. Scientist", "GIT_COMMITTER_EMAIL": "scientist@example.org",
                "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
"""So that a transcript's ``git commit`` works on a machine with no git identity configured."""
DEFAULT_COLUMNS = 140
ACTIONS = ("run", "file", "prelude", "shell", "skip")
ACTIONS_BY_LANGUAGE = {"python": ("run", "file", "prelude", "skip"), "text": ("shell", "skip"),
                       "console": ("shell", "skip")}
OPTIONS_BY_ACTION = {"run": {"file", "exit", "stderr", "prelude"}, "file": {"file"}, "prelude": set(),
                     "shell": {"columns", "exit"}, "skip": {"reason"}}
FLAGS_BY_ACTION = {"shell": {"tty"}}
SESSION_NAME = re.compile(r"[A-Za-z0-9_.-]+")
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)[^`]*$")
MARKER = re.compile(r"^\s*<!--\s*doctest:(?P<body>.*?)-->\s*$")
MARKER_LIKE = re.compile(r"^\s*<!--\s*doctest\b")
HEADING = re.compile(r"^## +(?P<title>.*?)\s*#*\s*$")
ANSI_ESCAPE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])")


class MarkerError(ValueError):
    """A marker comment that does not follow the grammar."""


@dataclass(frozen=True)
class Marker:
    session: str
    action: str
    options: dict[str, str] = field(default_factory=dict)
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Block:
    """A fenced code block: its text without the fences (and without the indentation of its fence)."""

    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    section: str | None  # the "## " heading it is under
    marker_line: str | None = None  # the marker comment, as written
    marker: Marker | None = None  # None when there is no marker, or it is invalid

    @property
    def where(self) -> str:
        return f"{display(self.path)}:{self.line}"


@dataclass
class Doc:
    """The blocks of one markdown file, its sessions in file order, and what is wrong with its markers."""

    path: Path
    blocks: list[Block]
    problems: list[str]

    def sessions(self) -> dict[str, list[Block]]:
        found: dict[str, list[Block]] = {}
        for block in self.blocks:
            if block.marker is not None and block.marker.action != "skip":
                found.setdefault(block.marker.session, []).append(block)
        return found

    def skipped(self) -> list[Block]:
        return [b for b in self.blocks if b.marker is not None and b.marker.action == "skip"]

    def expected_output(self, block: Block) -> Block | None:
        """The block holding what a ``run`` block prints: the next block, if it is an unmarked ```text block."""
        following = [b for b in self.blocks if b.line > block.line]
        if following and following[0].language == "text" and following[0].marker_line is None:
            return following[0]
        return None


def display(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def parse_marker(body: str, language: str) -> Marker:
    """The marker of a block in ``language`` from the text between ``doctest:`` and ``-->``."""
    try:
        words = shlex.split(body)
    except ValueError as e:
        raise MarkerError(f"cannot split into words: {e}") from None
    if not words:
        raise MarkerError("names no session")
    session, rest = words[0], words[1:]
    if not SESSION_NAME.fullmatch(session) or session in ACTIONS:
        raise MarkerError(f"{session!r} is not a session name (letters, digits, _ - .)")
    allowed = ACTIONS_BY_LANGUAGE.get(language, ("skip",))
    if rest and rest[0] in ACTIONS:
        action, rest = rest[0], rest[1:]
    elif "run" in allowed:
        action = "run"
    else:
        raise MarkerError(f"a ```{language} block needs an action: {' or '.join(allowed)}")
    if action not in allowed:
        raise MarkerError(f"action {action!r} is not for a ```{language} block (only {', '.join(allowed)})")
    options: dict[str, str] = {}
    flags: set[str] = set()
    for word in rest:
        key, equals, value = word.partition("=")
        if not equals:
            if word not in FLAGS_BY_ACTION.get(action, set()):
                raise MarkerError(f"unknown word {word!r} for action {action!r}")
            flags.add(word)
            continue
        if key not in OPTIONS_BY_ACTION[action]:
            raise MarkerError(f"unknown option {key!r} for action {action!r}")
        if key in options:
            raise MarkerError(f"option {key!r} given twice")
        options[key] = value
    check_options(action, options)
    return Marker(session, action, options, frozenset(flags))


def check_options(action: str, options: dict[str, str]) -> None:
    """Refuse missing required options and malformed values."""
    if action == "file" and "file" not in options:
        raise MarkerError("action 'file' needs file=NAME")
    if action == "skip" and not options.get("reason", "").strip():
        raise MarkerError("action 'skip' needs reason=...")
    name = options.get("file")
    if name is not None and (not name or Path(name).is_absolute() or ".." in Path(name).parts):
        raise MarkerError(f"file={name!r}: must be a relative path inside the session directory")
    if "exit" in options and not re.fullmatch(r"\d+", options["exit"]):
        raise MarkerError(f"exit={options['exit']!r}: must be a number")
    if "columns" in options and not re.fullmatch(r"[1-9]\d*", options["columns"]):
        raise MarkerError(f"columns={options['columns']!r}: must be a positive number")
    if options.get("stderr", "merge") != "merge":
        raise MarkerError(f"stderr={options['stderr']!r}: the only value is 'merge'")
    if options.get("prelude", "no") != "no":
        raise MarkerError(f"prelude={options['prelude']!r}: the only value is 'no'")


def parse_doc(path: Path) -> Doc:
    """Every fenced block of a markdown file, with its marker, and every malformed or misplaced marker."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    problems: list[str] = []
    section: str | None = None
    i = 0
    while i < len(lines):
        heading = HEADING.match(lines[i])
        if heading:
            section = heading.group("title")
        opening = FENCE.match(lines[i])
        if not opening:
            if MARKER_LIKE.match(lines[i]) and not (i + 1 < len(lines) and FENCE.match(lines[i + 1])):
                problems.append(f"{display(path)}:{i + 1}: a doctest marker must be on the line immediately "
                                "before a fenced code block")
            i += 1
            continue
        indent, fence = len(opening.group("indent")), opening.group("fence")
        closing = re.compile(rf"^ *{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = next((j for j in range(i + 1, len(lines)) if closing.match(lines[j])), len(lines))
        if end == len(lines):
            problems.append(f"{display(path)}:{i + 1}: the code block is never closed")
        body = [line[indent:] if line[:indent].strip() == "" else line.lstrip() for line in lines[i + 1:end]]
        block = Block(path, i + 1, opening.group("info").lower(), "".join(f"{line}\n" for line in body), section)
        if i > 0 and MARKER_LIKE.match(lines[i - 1]):
            block = marked(block, lines[i - 1], problems)
        blocks.append(block)
        i = end + 1
    return Doc(path, blocks, problems)


def marked(block: Block, line: str, problems: list[str]) -> Block:
    """The block with the marker comment ``line`` parsed (or its error recorded in ``problems``)."""
    match = MARKER.match(line)
    try:
        if not match:
            raise MarkerError("is not of the form <!-- doctest: SESSION [ACTION] [key=value ...] -->")
        marker = parse_marker(match.group("body"), block.language)
        if marker.action == "shell" and not block.text.startswith("$ "):
            raise MarkerError("a shell transcript must begin with a command line, '$ ...'")
    except MarkerError as e:
        problems.append(f"{block.where}: marker {line.strip()!r} {e}")
        return replace(block, marker_line=line.strip())
    return replace(block, marker_line=line.strip(), marker=marker)


# --- comparing outputs ---------------------------------------------------------------------------------------------

def normalized(text: str) -> str:
    """The text without trailing whitespace on any line, and without trailing blank lines."""
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def output_matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is ``expected``, where each ``...`` of ``expected``, with the spaces around
    it, stands for any text."""
    pattern = ".*?".join(re.escape(part) for part in ELLIPSIS.split(normalized(expected)))
    return re.fullmatch(pattern, normalized(actual), flags=re.DOTALL) is not None


def output_diff(expected: str, actual: str, expected_name: str) -> str:
    lines = difflib.unified_diff(normalized(expected).splitlines(), normalized(actual).splitlines(),
                                 f"{expected_name} (expected)", "actual output", lineterm="")
    return "\n".join(lines)


def terminal_text(raw: bytes) -> str:
    """What a terminal shows of ``raw``: without escape sequences, carriage returns taken as overwriting."""
    text = ANSI_ESCAPE.sub("", raw.decode("utf-8", errors="replace").replace("\r\n", "\n"))
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


# --- running -------------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    status: int | None  # as a shell reports it (128 + N for signal N); None when it timed out
    output: str  # stdout, or stdout and stderr interleaved
    stderr: str = ""  # when not interleaved


def environment(columns: int = DEFAULT_COLUMNS, tty: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_")}
    for name in ("PARSL_REPRO_PROVENANCE_URL", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
                 "CLICOLOR_FORCE", "COLUMNS", "LINES"):
        env.pop(name, None)
    env.update(PYTHONUNBUFFERED="1", TZ="UTC", LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8", COLUMNS=str(columns),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)]),
               **GIT_IDENTITY)
    if tty:
        env["TERM"] = "xterm-256color"  # not "dumb": rich draws its tables with box characters as in a terminal
    else:
        env.update(TERM="dumb", NO_COLOR="1")
    return env


def shell_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the process group (started as a new session) of ``proc``, if anything of it is left."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_piped(argv: list[str], cwd: Path, env: dict[str, str], merge_stderr: bool) -> Outcome:
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
        status: int | None = shell_status(proc.returncode)
        kill_group(proc)  # what it left running in the background
    except subprocess.TimeoutExpired:
        kill_group(proc)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # something outside the process group holds the pipes
            out, err = b"", b""
        status = None
    return Outcome(status, out.decode("utf-8", errors="replace"), (err or b"").decode("utf-8", errors="replace"))


def _controlling_terminal() -> None:  # runs in the child, between fork and exec
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def run_in_pty(argv: list[str], cwd: Path, env: dict[str, str], columns: int) -> Outcome:
    """Run ``argv`` with a pseudo-terminal as its stdin, stdout, stderr and controlling terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
                                start_new_session=True, preexec_fn=_controlling_terminal)
    finally:
        os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT
    timed_out = False
    try:
        while True:
            if time.monotonic() > deadline:
                timed_out = True
                break
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:  # exited, and whatever still holds the terminal is silent
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every process holding the terminal has closed it
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    kill_group(proc)  # when it timed out, or what it left running in the background
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        proc.wait()
    status = None if timed_out else shell_status(proc.returncode)
    return Outcome(status, terminal_text(b"".join(chunks)))


def on_doc_host(argv: list[str]) -> list[str]:
    """``argv`` run on a host named ``DOC_HOST``: as it is on such a machine; elsewhere in a UTS
    namespace of its own given that name (``unshare``: as root, or in a user namespace)."""
    if socket.gethostname() == DOC_HOST:
        return argv
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail(f"the docs show runs recorded on host {DOC_HOST!r}; this host is {socket.gethostname()!r} "
                    f"and has no unshare(1) to run them under that name")
    prefix = [unshare, "--uts"] if os.geteuid() == 0 else [unshare, "--user", "--map-root-user", "--uts"]
    return [*prefix, "sh", "-c", f'hostname {DOC_HOST} && exec "$@"', "sh", *argv]


def run_command(command: str, cwd: Path, tty: bool, columns: int) -> Outcome:
    env = environment(columns, tty)
    argv = on_doc_host(["bash", "-c", command])
    if tty:
        outcome = run_in_pty(argv, cwd, env, columns)
    else:
        outcome = run_piped(argv, cwd, env, merge_stderr=True)
    signum = (outcome.status or 0) - 128
    if signum > 0 and signum not in (signal.SIGINT, signal.SIGPIPE):  # as an interactive shell reports it
        name = signal.strsignal(signum) or f"Signal {signum}"
        outcome.output += ("" if outcome.output.endswith("\n") or not outcome.output else "\n") + name + "\n"
    return outcome


def transcript(text: str) -> list[tuple[int, str, str]]:
    """The commands of a shell transcript: (line offset in the block, command, expected output)."""
    commands: list[tuple[int, str, list[str]]] = []
    for offset, line in enumerate(text.splitlines()):
        if line.startswith("$ "):
            commands.append((offset, line[2:], []))
        elif commands:
            commands[-1][2].append(line)
    return [(offset, command, "\n".join(expected)) for offset, command, expected in commands]


def tail(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else "[...]\n" + text[-limit:]


def run_session(doc: Doc, blocks: Iterable[Block], workdir: Path) -> list[str]:
    """Run the blocks of one session in ``workdir``; what went wrong, one report per failing block or command."""
    failures: list[str] = []
    prelude = ""
    for number, block in enumerate(blocks, start=1):
        marker = block.marker
        assert marker is not None
        if marker.action == "file":
            target = workdir / marker.options["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
            continue
        if marker.action == "shell":
            columns = int(marker.options.get("columns", DEFAULT_COLUMNS))
            for offset, command, expected in transcript(block.text):
                outcome = run_command(command, workdir, "tty" in marker.flags, columns)
                where = f"{display(doc.path)}:{block.line + 1 + offset}"
                failure = judge(where, f"$ {command}", outcome, expected, where, wanted_status(marker, None))
                if failure:
                    failures.append(failure)
                if outcome.status is None:
                    return failures + ["(the session's later blocks were not run)"]
            continue
        use_prelude = marker.action == "run" and marker.options.get("prelude") != "no"
        script = workdir / marker.options.get("file", f"snippet_{number}.py")
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text((prelude if use_prelude else "") + block.text, encoding="utf-8")
        outcome = run_piped(on_doc_host([sys.executable, str(script.relative_to(workdir))]), workdir, environment(),
                            merge_stderr=marker.options.get("stderr") == "merge")
        expected_block = doc.expected_output(block) if marker.action == "run" else None
        expected = expected_block.text if expected_block else ""
        what = f"{marker.action} block -> {script.name}"
        if use_prelude and prelude:
            what += f" (the block starts at its line {prelude.count(chr(10)) + 1}, after the prelude)"
        failure = judge(block.where, what, outcome, expected,
                        expected_block.where if expected_block else "no output block (prints nothing)",
                        wanted_status(marker, 0))
        if failure:
            failures.append(failure)
        if outcome.status is None:
            return failures + ["(the session's later blocks were not run)"]
        if marker.action == "prelude":
            prelude = block.text
    return failures


def wanted_status(marker: Marker, default: int | None) -> int | None:
    return int(marker.options["exit"]) if "exit" in marker.options else default


def judge(where: str, what: str, outcome: Outcome, expected: str, expected_name: str,
          expected_status: int | None) -> str | None:
    """A report of what differs from the doc, or None."""
    problems: list[str] = []
    if outcome.status is None:
        problems.append(f"timed out after {TIMEOUT} s")
    elif expected_status is not None and outcome.status != expected_status:
        problems.append(f"exited with status {outcome.status}, not {expected_status}")
    if not output_matches(expected, outcome.output):
        problems.append("printed something else than the doc shows:\n"
                        + (output_diff(expected, outcome.output, expected_name) or "(only whitespace differs)"))
    if not problems:
        return None
    report = f"{where}: {what}: " + "\n".join(problems)
    if problems[0].startswith(("timed out", "exited")):
        report += f"\n--- its output:\n{tail(outcome.output)}"
    if outcome.stderr.strip():
        report += f"\n--- its stderr:\n{tail(outcome.stderr)}"
    return report


# --- the tests -----------------------------------------------------------------------------------------------------

PARSED = [parse_doc(path) for path in DOCS]
SESSIONS = [pytest.param(doc, name, id=f"{doc.path.name}::{name}") for doc in PARSED for name in doc.sessions()]
SKIPPED = [pytest.param(block, id=f"{block.path.name}:{block.line}") for doc in PARSED for block in doc.skipped()]


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT * 5)
@pytest.mark.parametrize(("doc", "session"), SESSIONS)
def test_doc_session(doc: Doc, session: str, tmp_path: Path) -> None:
    failures = run_session(doc, doc.sessions()[session], tmp_path)
    if failures:
        pytest.fail(f"session {session!r} of {display(doc.path)}, run in {tmp_path}:\n\n" + "\n\n".join(failures),
                    pytrace=False)


@pytest.mark.parametrize("block", SKIPPED or [pytest.param(None, id="none")])
def test_skipped_block(block: Block | None) -> None:
    """One skipped test per block marked ``skip``, with its reason: they show in pytest's count of skipped tests."""
    if block is None:
        return  # no block is marked skip
    assert block.marker is not None
    pytest.skip(f"{block.where}: {block.marker.options['reason']}")


def test_markers_follow_the_grammar() -> None:
    problems = [problem for doc in PARSED for problem in doc.problems]
    assert not problems, "\n".join(problems)


def test_installation_commands_are_not_run() -> None:
    installing = [b for doc in PARSED for b in doc.blocks if b.language == "sh"]
    assert installing, "the docs have ```sh blocks (installation commands)"
    run = [b for doc in PARSED for blocks in doc.sessions().values() for b in blocks]
    assert not [b.where for b in run if b.language == "sh"]


def unmarked_python_blocks(doc: Doc) -> list[Block]:
    return [b for b in doc.blocks if b.language == "python" and b.marker_line is None]


def test_every_python_block_has_a_marker() -> None:
    missing = [b.where for doc in PARSED for b in unmarked_python_blocks(doc)]
    assert not missing, ("python blocks without a <!-- doctest: ... --> marker (run, file, prelude, or skip "
                         "with a reason):\n" + "\n".join(missing))


# --- the harness itself, on a small page ---------------------------------------------------------------------------

SAMPLE = '''\
# A page

```sh
touch installed-by-sh
```

<!-- doctest: demo prelude -->
```python
GREETING = "hello"
```

<!-- doctest: demo -->
```python
print(GREETING)
print("/some/where/runinfo/000")
```

```text
hello
/.../runinfo/...
```

<!-- doctest: demo file file=tool.py -->
```python
import sys
print("tool", sys.stdout.isatty(), *sys.argv[1:])
```

- in a list:

  <!-- doctest: demo shell tty columns=60 -->
  ```text
  $ python tool.py a
  tool True a
  $ python tool.py b | cat
  tool False b
  $ python -c "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
  Killed
  ```

<!-- doctest: other run prelude=no exit=3 stderr=merge -->
```python
import sys
print("GREETING" in globals())
sys.exit("bye" if sys.stdout.isatty() else 3)
```

```text
False
```

<!-- doctest: other skip reason="needs a server that is not there" -->
```python
import nowhere
```
'''


def test_sample_page_parses(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(SAMPLE, encoding="utf-8")
    doc = parse_doc(page)
    assert doc.problems == []
    assert [b.language for b in doc.blocks] == ["sh", "python", "python", "text", "python", "text", "python", "text",
                                                 "python"]
    sessions = doc.sessions()
    assert [(b.marker.action if b.marker else None) for b in sessions["demo"]] == ["prelude", "run", "file", "shell"]
    assert [b.marker.options for b in sessions["other"] if b.marker] == [
        {"prelude": "no", "exit": "3", "stderr": "merge"}]
    shell = sessions["demo"][3]
    assert shell.marker is not None and shell.marker.flags == {"tty"} and shell.text.startswith("$ python tool.py a\n")
    assert [b.marker.options["reason"] for b in doc.skipped() if b.marker] == ["needs a server that is not there"]
    assert not any(b.marker_line for b in doc.blocks if b.language == "sh")


def test_sample_page_runs(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(SAMPLE, encoding="utf-8")
    doc = parse_doc(page)
    for name, blocks in doc.sessions().items():
        workdir = tmp_path / name
        workdir.mkdir()
        assert run_session(doc, blocks, workdir) == []
    assert not list(tmp_path.rglob("installed-by-sh"))  # sh blocks are never run
    assert (tmp_path / "demo" / "snippet_2.py").read_text().startswith('GREETING = "hello"\nprint(GREETING)')


def test_a_difference_is_reported_with_a_diff_and_the_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- doctest: s -->\n```python\nprint('one')\nprint('two')\n```\n\n```text\none\nthree\n```\n"
                    "\n<!-- doctest: s shell -->\n```text\n$ echo hi\nho\n```\n", encoding="utf-8")
    doc = parse_doc(page)
    failures = run_session(doc, doc.sessions()["s"], tmp_path)
    assert len(failures) == 2
    assert failures[0].startswith(f"{page}:2: run block -> snippet_1.py: printed something else than the doc shows")
    assert f"--- {page}:7 (expected)\n+++ actual output" in failures[0] and "-three\n+two" in failures[0]
    assert failures[1].startswith(f"{page}:14: $ echo hi: printed") and "-ho\n+hi" in failures[1]


def test_a_block_that_hangs_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "TIMEOUT", 1)
    page = tmp_path / "page.md"
    page.write_text("<!-- doctest: s shell tty -->\n```text\n$ sleep 30 & echo started; wait\nstarted\n```\n\n"
                    "<!-- doctest: t -->\n```python\nimport time\ntime.sleep(30)\n```\n\n"
                    "<!-- doctest: t -->\n```python\nprint('never')\n```\n", encoding="utf-8")
    doc = parse_doc(page)
    started = time.monotonic()
    for name in ("s", "t"):
        workdir = tmp_path / name
        workdir.mkdir()
        failures = run_session(doc, doc.sessions()[name], workdir)
        assert len(failures) == 2 and "timed out after 1 s" in failures[0], failures
        assert failures[1] == "(the session's later blocks were not run)"
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(("marker", "language", "error"), [
    ("s", "text", "needs an action"),
    ("s shell", "python", "not for a ```python block"),
    ("s shell", "sh", "not for a ```sh block"),
    ("s skip", "python", "needs reason"),
    ("s file", "python", "needs file=NAME"),
    ("s run file=../x.py", "python", "relative path"),
    ("s run exit=two", "python", "must be a number"),
    ("s run stderr=separate", "python", "only value is 'merge'"),
    ("s run tty", "python", "unknown word 'tty'"),
    ("s run colour=red", "python", "unknown option 'colour'"),
    ("run", "python", "not a session name"),
    ('s skip reason="unclosed', "python", "cannot split"),
])
def test_malformed_markers_are_refused(marker: str, language: str, error: str) -> None:
    with pytest.raises(MarkerError, match=re.escape(error)):
        parse_marker(marker, language)


@pytest.mark.parametrize(("expected", "actual", "matches"), [
    ("a\nb", "a  \nb\n\n", True),
    ("x ... z", "x y z", True),
    ("x ... z", "x  z", True),
    ("start\n...\nend", "start\none\ntwo\nend", True),
    ("/.../runinfo/000", "/tmp/p/runinfo/001", False),
    ("a.b", "axb", False),
    ("...", "", True),
    ("[0, 1]", "[0, 1]", True),
    ("a", "a\nb", False),
])
def test_output_matching(expected: str, actual: str, matches: bool) -> None:
    assert output_matches(expected, actual) is matches
