"""``parsl-repro replay``: run a recorded run's tasks again from the record, and verify them.

Each task is run from what the store holds, not from today's script: its app rebuilt from the
recorded source and recipe (``memo.recipe``), its arguments read back from their recorded bytes,
a bash app's recorded command line. Tasks are submitted in their recorded order, and where a
task's call held another task's future (``task.arg_futures``) the replay passes the replayed
task's future instead, so the kernel runs them in dependency order and a difference flows
downstream as it would have. A task that cannot be replayed (its code cannot be rebuilt here,
its arguments were not stored, an input file changed) is reported with the reason; its
dependants still run, fed from the values recorded in their own arguments. A join app's tasks are
launched by the replayed join app itself.

The replay is a run of its own, recorded in the same store, whose parent is the original
(``workflow.replay_of``). Files the run wrote go to a directory of the replay's own
(``<runinfo>/replay-NNN/``, see ``paths``) unless ``in_place``; the replay's process works in
that directory. Input files are checked against their recorded sha256 before anything runs.

With ``verify``, each task is compared with the record: its result (the sha256 of its
serialized value, with mapped paths put back) and every file it wrote (sha256; for text, the
first lines that differ). Apps marked ``deterministic=False`` are reported apart.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import difflib
import hashlib
import logging
import os
import re
import runpy
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from typing import Any

from parsl_repro.app.bash import BashApp
from parsl_repro.app.python import PythonApp
from parsl_repro.config import Config
from parsl_repro.dataflow.dflow import DataFlowKernel
from parsl_repro.dataflow.errors import DependencyError, JoinError
from parsl_repro.errors import ParslError
from parsl_repro.executors.threads import ThreadPoolExecutor
from parsl_repro.memo.identity import AppIdentity, pin_identity
from parsl_repro.memo.recipe import CannotRebuild, options_of, rebuild
from parsl_repro.monitoring.engine import open_for_reading, sqlite_path
from parsl_repro.monitoring.queries import resolve_run
from parsl_repro.monitoring.read.files import file_sha256
from parsl_repro.monitoring.read.replay import (
    RecordedRun,
    RecordedTask,
    read_arguments,
    read_join_children,
    read_replayed,
    read_run,
)
from parsl_repro.reproduce.paths import PathMap, item_at, replace_at
from parsl_repro.serialize import deserialize_value, serialize_value
from parsl_repro.task_states import SUCCEEDED_STATES, States

logger = logging.getLogger(__name__)

REPLAYED = "replayed"  # ran and succeeded (or failed as recorded); not compared (no --verify)
IDENTICAL = "identical"
DIFFERENT = "different"
NONDETERMINISTIC = "nondeterministic"
FAILED = "failed"
NOT_REPLAYABLE = "not replayable"
BLOCKED = "blocked"
NOT_RUN = "not run"
SKIPPED = "skipped"
VERDICTS = (REPLAYED, IDENTICAL, DIFFERENT, NONDETERMINISTIC, FAILED, NOT_REPLAYABLE, BLOCKED, NOT_RUN, SKIPPED)
PROBLEMS = frozenset({DIFFERENT, FAILED, NOT_REPLAYABLE, BLOCKED})
"""Verdicts that make ``replay --verify`` exit non-zero."""
RAN_STATES = SUCCEEDED_STATES | {States.failed.name}
"""States of a recorded task that ran (or found its result) and so can be replayed."""
DIFF_LINES = 6
TEXT_LIMIT = 4 << 20


class ReplayError(ParslError):
    """The replay could not start: its configuration, its directory, the record itself."""


@dataclass
class Difference:
    """One thing that differs: ``what`` (``result``, or ``output PATH``), the recorded and the new
    digest, and for text files the first differing lines (a unified diff)."""
    what: str
    recorded: str | None
    replayed: str | None
    lines: list[str] = field(default_factory=list)


@dataclass
class TaskVerdict:
    task_id: int
    app: str
    verdict: str
    reason: str = ""
    replay_task_id: int | None = None
    differences: list[Difference] = field(default_factory=list)


@dataclass
class ReplayReport:
    original: str
    replay_run_id: str | None
    directory: str | None
    verified: bool
    input_problems: list[str]
    tasks: list[TaskVerdict]
    interrupted: bool = False
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        found = dict.fromkeys(VERDICTS, 0)
        for t in self.tasks:
            found[t.verdict] += 1
        return found

    @property
    def exit_status(self) -> int:
        if self.interrupted:
            return 130
        verdicts = {t.verdict for t in self.tasks}
        if self.verified:
            return 1 if verdicts & PROBLEMS else 0
        return 1 if verdicts & {FAILED, NOT_REPLAYABLE, BLOCKED} else 0

    def as_dict(self) -> dict[str, Any]:
        return {"original": self.original, "replay_run_id": self.replay_run_id, "directory": self.directory,
                "verified": self.verified, "interrupted": self.interrupted, "seconds": round(self.seconds, 3),
                "input_problems": self.input_problems, "counts": self.counts(),
                "tasks": [dataclasses.asdict(t) for t in self.tasks]}


# --- the configuration ---------------------------------------------------------------------------

def load_config_file(path: str) -> Config:
    """The ``config`` a Python file defines, as Parsl's tools read one. ``ReplayError`` says why not,
    with the file and line where loading it failed."""
    full = os.path.abspath(path)
    if not os.path.isfile(full):
        raise ReplayError(f"The config file {path} does not exist")
    try:
        namespace = runpy.run_path(full, run_name="__parsl_repro_config__")
    except SyntaxError as e:
        raise ReplayError(f"The config file {path} failed to load: {e.filename}, line {e.lineno}: "
                          f"SyntaxError: {e.msg}") from e
    except Exception as e:  # noqa: BLE001 - whatever the user's file raises is the message
        frames = [f for f in traceback.extract_tb(e.__traceback__) if os.path.abspath(f.filename) == full]
        where = f"{path}, line {frames[-1].lineno}" if frames else path
        raise ReplayError(f"The config file {path} failed to load: {where}: {type(e).__name__}: {e}") from e
    config = namespace.get("config")
    if not isinstance(config, Config):
        found = f"a {type(config).__name__}" if "config" in namespace else "nothing"
        raise ReplayError(f"The config file {path} must define `config`, a parsl_repro.config.Config; it defines "
                          f"{found} by that name")
    return config


def default_config(jobs: int | None) -> Config:
    return Config(executors=[ThreadPoolExecutor(max_threads=jobs or os.cpu_count() or 1, label="threads")])


# --- the run -------------------------------------------------------------------------------------

def _absolute_url(url: str) -> str:
    path = sqlite_path(url)
    if path is None or os.path.isabs(path):
        return url
    return url[:-len(path)] + os.path.abspath(path)


def _replay_directory(base: str) -> str:
    os.makedirs(base, exist_ok=True)
    taken = [int(n[7:]) for n in os.listdir(base) if re.fullmatch(r"replay-\d+", n)]
    number = max(taken, default=-1) + 1
    while True:
        path = os.path.join(base, f"replay-{number:03d}")
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            number += 1


def _sha256(path: str) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None


class _Replay:
    def __init__(self, url: str, run: RecordedRun, *, config: Config, only: Sequence[str], verify: bool,
                 in_place: bool, say: Callable[[str], None]) -> None:
        self.url = url
        self.run = run
        self.config = config
        self.only = set(only)
        self.verify = verify
        self.say = say
        self.cwd = run.cwd or os.getcwd()
        base = run.runinfo_dir if run.runinfo_dir and os.path.isdir(run.runinfo_dir) else os.path.abspath("runinfo")
        self.runinfo = base
        self.directory = None if in_place else _replay_directory(base)
        self.paths = PathMap(self.cwd, set(), self.directory)  # what the replay writes: set by plan()
        self.verdicts: dict[int, TaskVerdict] = {}
        self.futures: dict[int, Any] = {}  # original task id -> the replay's AppFuture
        self.apps: dict[str, Any] = {}
        self.app_problems: dict[str, str] = {}
        self.dfk: DataFlowKernel | None = None
        self.made: list[Any] = []  # every app object made, given the kernel once it exists
        self.engine = open_for_reading(url)

    # -- before anything runs
    def plan(self) -> tuple[list[RecordedTask], list[str]]:
        """The tasks to submit, in order; the input problems found (their tasks marked)."""
        run = self.run
        submit: list[RecordedTask] = []
        replayed_joins: set[int] = set()
        covered: set[int] = set()
        for task in run.tasks.values():
            if task.join_parent is not None and (task.join_parent in replayed_joins or task.join_parent in covered):
                covered.add(task.task_id)  # launched again by the replayed join app (or one it launches)
                continue
            reason = self._not_replayable(task)
            if reason is not None:
                self.verdicts[task.task_id] = TaskVerdict(task.task_id, task.func_name, *reason)
                continue
            if not (task.app_kind == "bash" and task.command):
                try:
                    self.app_for(task)
                except CannotRebuild as e:
                    self.verdicts[task.task_id] = TaskVerdict(task.task_id, task.func_name, NOT_REPLAYABLE,
                                                              f"cannot replay: {e}")
                    continue
            if task.app_kind == "join":
                replayed_joins.add(task.task_id)
            submit.append(task)
        # A file is mapped into the replay's directory only when a task of the replay writes it; one
        # written by a task that is not replayed is read where the run left it, checked like an input.
        # A task dropped for a bad input writes nothing, so check again until nothing changes.
        checked: dict[str, str | None] = {}
        problems: list[str] = []
        while True:
            writers = submit + [run.tasks[i] for i in covered]
            self.paths.produced = {f.path for t in writers for f in t.writes if f.path}
            problems += self._check_inputs(submit, checked)
            kept = [t for t in submit if t.task_id not in self.verdicts]
            if len(kept) == len(submit):
                return kept, problems
            submit = kept
            replayed_joins &= {t.task_id for t in kept}

    def _not_replayable(self, task: RecordedTask) -> tuple[str, str] | None:
        if task.status not in RAN_STATES:
            return NOT_RUN, f"it did not run in the recorded run (it ended {task.status or 'unrecorded'})"
        if self.only and task.func_name not in self.only:
            return SKIPPED, "not among the apps named with --only"
        if task.args_note:
            return NOT_REPLAYABLE, task.args_note.removeprefix("not replayable: ")
        if task.args_digest is None:
            return NOT_REPLAYABLE, "its arguments were not recorded"
        return None

    def _check_inputs(self, tasks: list[RecordedTask], checked: dict[str, str | None]) -> list[str]:
        """Check the files ``tasks`` read that the replay does not write against their recorded sha256;
        mark the tasks that read a changed or missing one. ``checked``: what earlier calls found."""
        produced = self.paths.produced
        problems = []
        for task in tasks:
            for f in task.reads:
                if f.path is None or f.path in produced or f.sha256 is None:
                    continue
                if f.path not in checked:
                    now = _sha256(f.path) if os.path.isfile(f.path) else None
                    if now is None:
                        checked[f.path] = f"input {f.path} is missing (recorded sha256 {f.sha256[:12]})"
                    elif now != f.sha256:
                        checked[f.path] = (f"input {f.path} changed since the run (recorded sha256 {f.sha256[:12]}, "
                                           f"now {now[:12]})")
                    else:
                        checked[f.path] = None
                    if checked[f.path]:
                        problems.append(checked[f.path])
                if checked[f.path] and task.task_id not in self.verdicts:
                    self.verdicts[task.task_id] = TaskVerdict(task.task_id, task.func_name, NOT_REPLAYABLE,
                                                              checked[f.path])
        return problems

    # -- building apps
    def _labels(self, wanted: Any) -> Any:
        known = {e.label for e in self.config.executors}
        if isinstance(wanted, list):
            if wanted == ["_parsl_internal"]:
                return wanted
            kept = [label for label in wanted if label in known]
            return kept or "all"
        return "all"

    def make_app(self, options: dict[str, Any], function: Callable) -> Any:
        """The app object for a rebuilt function, as its recorded decorator options say. An app that
        another app's code calls carries its recorded identity (``digest``) when the store has it."""
        identity = self._identity(options["digest"]) if options.get("digest") else None
        if identity is not None:
            pin_identity(function, identity)
        kind = options.get("kind", "python")
        common = {"data_flow_kernel": self.dfk, "cache": bool(options.get("cache")),
                  "ignore_for_cache": options.get("ignore_for_cache") or None,
                  "deterministic": options.get("deterministic", True)}
        if kind == "bash":
            app: Any = BashApp(function, executors=self._labels(options.get("executors")), **common)
        elif kind == "join":
            app = PythonApp(function, executors=["_parsl_internal"], join=True, **common)
        else:
            app = PythonApp(function, executors=self._labels(options.get("executors")), **common)
        if options.get("name"):
            app.__name__ = options["name"]
        self.made.append(app)
        return app

    def _identity(self, digest: str) -> AppIdentity | None:
        app = self.run.apps.get(digest)
        if app is None:
            return None
        return AppIdentity(app.qualname, app.module, app.source, app.digest, dict(app.components))

    def app_for(self, task: RecordedTask) -> Any:
        """The replay's app object for ``task``'s recorded app; raises ``CannotRebuild``."""
        digest = task.app_digest
        if digest is None:
            raise CannotRebuild("the record does not say which code it ran (no app digest)")
        if digest in self.app_problems:
            raise CannotRebuild(self.app_problems[digest])
        if digest not in self.apps:
            app = self.run.apps.get(digest)
            try:
                if app is None:
                    raise CannotRebuild("its app is not described in the store")
                if not app.recipe:
                    raise CannotRebuild("the run was recorded before parsl_repro kept recipes to rebuild apps")
                function = rebuild(app.recipe, self._identity(digest), self.make_app)
            except CannotRebuild as e:
                self.app_problems[digest] = str(e)
                raise
            self.apps[digest] = self.make_app({"kind": app.kind, **options_of(app.recipe)}, function)
        return self.apps[digest]

    def command_app(self, task: RecordedTask, command: str) -> Any:
        """A bash app that runs ``command`` (a recorded command line, its paths mapped)."""
        def recorded_command(*args: Any, **kwargs: Any) -> str:
            return command

        recorded_command.__name__ = task.func_name
        identity = self._identity(task.app_digest) if task.app_digest else None
        if identity is not None:
            pin_identity(recorded_command, identity)
        app = self.run.apps.get(task.app_digest or "")
        options = {"kind": "bash", "name": task.func_name, **options_of(app.recipe if app else None)}
        return self.make_app(options, recorded_command)

    # -- submitting
    def _mapping_submit(self, submit: Callable[..., Any]) -> Callable[..., Any]:
        """The kernel's ``submit``, with every task's paths mapped into the replay's directory first:
        those the replay submits from the record, and those a replayed join app's code builds, which
        no record rewrites. Whatever a call declares it writes (``outputs=``, ``stdout=``, ``stderr=``)
        is mapped even when the record saw no such write (the task failed, say)."""
        def mapping(func: Any, app_args: Any = (), *rest: Any, app_kwargs: dict | None = None, **options: Any) -> Any:
            if self.directory is not None:
                self.paths.declare(app_kwargs or {})
                app_args = self.paths.value(tuple(app_args))
                app_kwargs = self.paths.value(dict(app_kwargs or {}))
            return submit(func, app_args, *rest, app_kwargs=app_kwargs, **options)

        return mapping

    def arguments(self, tasks: list[RecordedTask]) -> dict[str, tuple[str, bytes]]:
        return {d: (s, v) for d, s, v in read_arguments(self.engine, [t.args_digest for t in tasks if t.args_digest])}

    def submit(self, task: RecordedTask, stored: dict[str, tuple[str, bytes]]) -> None:
        verdict = TaskVerdict(task.task_id, task.func_name, NOT_REPLAYABLE)
        try:
            serializer, body = stored[task.args_digest]  # type: ignore[index]
        except KeyError:
            verdict.reason = "its arguments' bytes are not in the store"
            self.verdicts[task.task_id] = verdict
            return
        try:
            args, kwargs = deserialize_value(serializer, body)
        except Exception as e:  # noqa: BLE001 - a class gone from this environment, and the like
            verdict.reason = f"its recorded arguments cannot be read back here ({e})"
            self.verdicts[task.task_id] = verdict
            return
        self.paths.declare(kwargs)  # before its command line is mapped; the kernel's submit maps the call
        call = {"a": list(args), "k": dict(kwargs)}
        for path, upstream, kind in task.arg_futures:
            future = self.futures.get(upstream)
            if future is None:
                continue  # not replayed: the value recorded in the arguments stands
            try:
                if kind == "output":
                    current = getattr(item_at(call, path), "filepath", None)
                    wanted = self.paths.path(current) if isinstance(current, str) else None
                    match = next((d for d in future.outputs if d.filepath == wanted), None)
                    if match is not None:
                        call = replace_at(call, path, match)
                else:
                    call = replace_at(call, path, future)
            except (LookupError, TypeError, ValueError):
                logger.warning("Task %s: the recorded position %s of task %s's future is not in its arguments",
                               task.task_id, path, upstream)
        try:
            if task.app_kind == "bash" and task.command:
                app = self.command_app(task, self.paths.command(task.command))
            else:
                app = self.app_for(task)
        except CannotRebuild as e:
            verdict.reason = f"cannot replay: {e}"
            self.verdicts[task.task_id] = verdict
            return
        future = app(*call["a"], **call["k"])
        self.futures[task.task_id] = future

    # -- after
    def judge(self, task: RecordedTask, future: Any, replay_ids: dict[int, int]) -> TaskVerdict:
        verdict = TaskVerdict(task.task_id, task.func_name, IDENTICAL if self.verify else REPLAYED,
                              replay_task_id=future.tid)
        error = future.exception()
        recorded_ok = task.status in SUCCEEDED_STATES
        if error is not None:
            if isinstance(error, DependencyError):
                waits = [replay_ids.get(int(d.split()[1]), d) for _e, d in error.dependent_exceptions_tids
                         if re.match(r"task \d+", str(d))]
                verdict.verdict = BLOCKED
                verdict.reason = ("it waits on task " + ", ".join(map(str, waits)) + ", which failed in the replay"
                                  if waits else f"a dependency failed in the replay: {error}")
                return verdict
            described = f"{type(error).__name__}: {error}"
            if not recorded_ok and (task.error or "").startswith(type(error).__name__):
                verdict.reason = f"failed as recorded ({described.splitlines()[0][:200]})"
                return verdict
            verdict.verdict = FAILED
            verdict.reason = described.splitlines()[0][:500] + ("" if recorded_ok else " (recorded: a different error)")
            return verdict
        if not recorded_ok:
            verdict.verdict = DIFFERENT
            verdict.reason = f"it succeeded; the recorded run failed ({(task.error or '').splitlines()[0][:200]})"
            return verdict
        if self.verify:
            self._compare_result(task, future.result(), verdict)
            self._compare_files(task, {self.paths.destination(f.path): f.path for f in task.writes if f.path},
                                verdict)
            self._settle(task, verdict)
        return verdict

    def _compare_result(self, task: RecordedTask, value: Any, verdict: TaskVerdict) -> None:
        if task.result_digest is None:
            return
        try:
            _method, body = serialize_value(self.paths.back(value), "the replayed result")
            digest = hashlib.sha256(body).hexdigest()
        except Exception as e:  # noqa: BLE001
            verdict.differences.append(Difference("result", task.result_digest, f"not serializable: {e}"))
            return
        if digest != task.result_digest:
            verdict.differences.append(Difference("result", task.result_digest, digest))

    def _compare_files(self, task: RecordedTask, replayed: dict[str, str], verdict: TaskVerdict,
                       digests: dict[str, str | None] | None = None) -> None:
        """``replayed``: {where the replay wrote it: the recorded path}."""
        by_path = {f.path: f for f in task.writes if f.path}
        for new_path, old_path in replayed.items():
            recorded = by_path.get(old_path)
            if recorded is None or recorded.sha256 is None:
                continue
            now = digests.get(new_path) if digests is not None and new_path in digests else _sha256(new_path)
            if now == recorded.sha256 or self.paths.sha256_mapped_back(new_path) == recorded.sha256:
                continue  # the same bytes, or the same once the replay's paths in it read as the run's
            label = recorded.role if recorded.role in ("stdout", "stderr") else "output"
            diff = Difference(f"{label} {old_path}", recorded.sha256, now or "missing")
            if now is not None:
                diff.lines = _first_differences(old_path, recorded.sha256, new_path)
            verdict.differences.append(diff)

    def _settle(self, task: RecordedTask, verdict: TaskVerdict) -> None:
        if not verdict.differences:
            return
        app = self.run.apps.get(task.app_digest or "")
        deterministic = options_of(app.recipe if app else None).get("deterministic", True)
        verdict.verdict = DIFFERENT if deterministic else NONDETERMINISTIC
        verdict.reason = "; ".join(d.what for d in verdict.differences) + " differ" + (
            "" if deterministic else " (the app is marked deterministic=False)")

    def judge_children(self, replay_run_id: str, joins: dict[int, int]) -> None:
        """Verdicts for the tasks the replayed join apps launched (and those their own join apps
        launched), from the replay's record: each join's launches paired in order with the recorded."""
        while joins:
            launched = read_join_children(self.engine, replay_run_id, joins.values())
            pairs: list[tuple[int, int]] = []
            for original_join, replay_join in joins.items():
                recorded = self.run.join_children.get(original_join, [])
                again = launched.get(replay_join, [])
                pairs += list(zip(recorded, again, strict=False))
                for missing in recorded[len(again):]:
                    child = self.run.tasks[missing]
                    why = f"the replayed join app (task {replay_join}) did not launch it"
                    self.verdicts[missing] = TaskVerdict(missing, child.func_name, DIFFERENT, why)
            rows = read_replayed(self.engine, replay_run_id, [b for _a, b in pairs])
            joins = {}
            for original, replayed in pairs:
                task = self.run.tasks[original]
                row = rows.get(replayed)
                ok = IDENTICAL if self.verify else REPLAYED
                verdict = TaskVerdict(original, task.func_name, ok, replay_task_id=replayed)
                if row is None or row.status not in SUCCEEDED_STATES:
                    verdict.verdict = FAILED if task.status in SUCCEEDED_STATES else ok
                    verdict.reason = (row.error or row.status or "not recorded") if row else "not recorded"
                elif self.verify:
                    if task.result_digest and row.result_digest != task.result_digest:
                        verdict.differences.append(Difference("result", task.result_digest, row.result_digest))
                    originals = {self.paths.destination(f.path): f.path for f in task.writes if f.path}
                    written = {f.path: f.sha256 for f in row.writes if f.path}
                    self._compare_files(task, originals, verdict, written)
                    self._settle(task, verdict)
                self.verdicts[original] = verdict
                if task.app_kind == "join":
                    joins[original] = replayed

    # -- the whole
    def execute(self, progress: Callable[[int, int], None] | None = None) -> ReplayReport:
        started = time.monotonic()
        tasks, problems = self.plan()
        for problem in problems:
            self.say(f"before running: {problem}")
        home = os.getcwd()
        work = self.cwd if self.directory is None else self.paths.destination(self.cwd)
        os.makedirs(work, exist_ok=True)
        if self.directory is not None:  # the folders the run wrote into, as it had them; what it read
            for folder in {os.path.dirname(self.paths.destination(p)) for p in self.paths.produced}:
                os.makedirs(folder, exist_ok=True)
            self.paths.link_inputs({f.path for t in tasks for f in t.reads if f.path and f.path not in
                                    self.paths.produced})
        self.config.run_dir = os.path.abspath(self.config.run_dir) if os.path.isabs(self.config.run_dir) \
            else self.runinfo
        if self.config.provenance in (True, None):
            self.config.provenance = self.url
        interrupted = False
        replay_run_id = None
        os.chdir(work)
        try:
            self.dfk = DataFlowKernel(self.config, replay_of=(self.run.run_id, self.run.name or self.run.run_id))
            self.dfk.submit = self._mapping_submit(self.dfk.submit)  # type: ignore[method-assign]
            replay_run_id = self.dfk.run_id
            for app in self.made:
                app.data_flow_kernel = self.dfk
            self.say(f"replaying {len(tasks)} of {len(self.run.tasks)} tasks of run {self.run.run_id} as run "
                     f"{replay_run_id}" + (f", writing in {self.directory}" if self.directory else ", in place"))
            try:
                for start in range(0, len(tasks), 2000):
                    chunk = tasks[start:start + 2000]
                    stored = self.arguments(chunk)
                    for task in chunk:
                        self.submit(task, stored)
                pending = set(self.futures.values())
                total = len(pending)
                while pending:
                    _done, pending = concurrent.futures.wait(pending, timeout=1.0)
                    if progress is not None:
                        progress(total - len(pending), total)
            except KeyboardInterrupt:
                interrupted = True
                self.say("interrupted: stopping the replay (its run is recorded as interrupted)")
            finally:
                self.dfk.cleanup()
        finally:
            os.chdir(home)
        replay_ids = {f.tid: original for original, f in self.futures.items()}
        joins: dict[int, int] = {}
        for original, future in self.futures.items():
            task = self.run.tasks[original]
            if not future.done() or isinstance(future.exception(), CancelledError):
                self.verdicts[original] = TaskVerdict(original, task.func_name, NOT_RUN,
                                                      "the replay was interrupted before it ended",
                                                      replay_task_id=future.tid)
                continue
            self.verdicts[original] = self.judge(task, future, replay_ids)
            if task.app_kind == "join" and not isinstance(future.exception(), JoinError | DependencyError):
                joins[original] = future.tid
        if not interrupted:
            self.judge_children(replay_run_id, joins)
        for task in self.run.tasks.values():  # children of a join that failed to launch them
            self.verdicts.setdefault(task.task_id, TaskVerdict(task.task_id, task.func_name, NOT_RUN,
                                                               "its join app did not launch it in the replay"))
        self.engine.dispose()
        return ReplayReport(self.run.run_id, replay_run_id, self.directory, self.verify, problems,
                            [self.verdicts[i] for i in sorted(self.verdicts)], interrupted,
                            time.monotonic() - started)


def _first_differences(old_path: str, old_sha: str, new_path: str) -> list[str]:
    """The first differing lines of two text files, as a unified diff; [] when either is not text or
    the recorded file no longer has its recorded content."""
    try:
        if os.path.getsize(old_path) > TEXT_LIMIT or os.path.getsize(new_path) > TEXT_LIMIT:
            return []
        if _sha256(old_path) != old_sha:
            return ["(the recorded file has changed since the run: its lines cannot be compared)"]
        with open(old_path, encoding="utf-8") as f:
            old = f.read().splitlines()
        with open(new_path, encoding="utf-8") as f:
            new = f.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    lines = list(difflib.unified_diff(old, new, "recorded", "replayed", n=0, lineterm=""))
    return lines[:DIFF_LINES + 3]


def replay(url: str, run: str = "last", *, config: Config | str | None = None, only: Iterable[str] = (),
           verify: bool = False, jobs: int | None = None, in_place: bool = False,
           say: Callable[[str], None] = logger.info,
           progress: Callable[[int, int], None] | None = None) -> ReplayReport:
    """Replay run ``run`` (an id, unique prefix or ``last``) of the store at ``url``; see the module
    docstring. ``config`` is a ``Config`` or the path of a Python file defining one (default: the
    threads executor with ``jobs`` threads). ``say`` receives the lines a person should see as it
    goes. Raises ``ReplayError`` (and ``RunNotFound``) before anything runs."""
    url = _absolute_url(url)
    engine = open_for_reading(url)
    try:
        run_id = resolve_run(engine, run)
        recorded = read_run(engine, run_id)
    finally:
        engine.dispose()
    if isinstance(config, str):
        if jobs is not None:
            raise ReplayError("--jobs sets the threads of the default configuration; with --config, set the "
                              "executors' own workers")
        config = load_config_file(config)
    elif config is None:
        config = default_config(jobs)
    if only:
        apps = {t.func_name for t in recorded.tasks.values()}
        unknown = sorted(set(only) - apps)
        if unknown:
            raise ReplayError(f"Run {run_id} has no app named {', '.join(unknown)}; its apps are "
                              f"{', '.join(sorted(apps)) or 'none'}")
    return _Replay(url, recorded, config=config, only=list(only), verify=verify, in_place=in_place,
                   say=say).execute(progress)
