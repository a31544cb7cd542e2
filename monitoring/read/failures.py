"""Why a run's tasks failed: failures grouped by exception type, then each failed task (a page at a
time) with its message, traceback, the tail of its stderr file, its tries, and for a dependency
failure the upstream task(s) that failed first.

The first failure of a ``dep_fail`` task is found by walking ``dependency`` upstream through
failed tasks, level by level (one query per level, bounded), to the failed tasks none of whose own
dependencies failed. Stderr files are read from the end (at most ``STDERR_BYTES``), and only when
they are regular files: a path recorded as a FIFO or a device would otherwise block the page."""
from __future__ import annotations

import os
import stat
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, case, func, select
from sqlalchemy.sql.elements import ColumnElement

from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.read.common import aware, display_outcome, require_run, rows
from parsl_repro.task_states import CANCELLED, FAILED_STATES, FINISHED_STATES, States

FAILED = States.failed.name
DEP_FAIL = States.dep_fail.name
FAILURE_STATES = sorted(FAILED_STATES)

PER_PAGE = 50
GROUP_LIMIT = 100
CANCELLED_LIMIT = 50
TRY_LIMIT = 20  # tries shown per task: retries are few, but nothing here is unbounded
TYPE_CHARS = 100  # an exception type is the text before the first ':', cut to this length
MESSAGE_CHARS = 4000
TRACEBACK_CHARS = 16_000  # the end of a traceback is kept: the innermost frame is last
STDERR_LINES = 40
STDERR_BYTES = 16 * 1024
WALK_DEPTH = 200  # upstream levels followed to find a first failure
WALK_NODES = 5000  # failed tasks visited by one walk
FIRST_FAILURES_SHOWN = 10


@dataclass
class StderrTail:
    """The end of a task's stderr file as it is now: ``text`` (its last lines) when ``exists``,
    otherwise ``note`` says why nothing is shown."""

    recorded: str  # the path as the task named it
    path: str  # where it was looked for
    exists: bool = False
    text: str = ""
    note: str = ""
    cut: bool = False  # only the end of the file is shown


@dataclass
class FirstFailure:
    """A task that failed first, upstream of a dependency failure, reached through ``via`` (the
    tasks between them, nearest first)."""

    task_id: int
    app: str
    error: str | None
    via: list[int] = field(default_factory=list)


@dataclass
class FailedTask:
    """One failed task with everything that explains it."""

    task_id: int
    app: str
    state: str
    exception: str
    message: str
    time_returned: Any
    fail_count: int
    tries: list[dict[str, Any]]
    more_tries: int = 0
    traceback: str | None = None
    stderr: StderrTail | None = None
    first_failures: list[FirstFailure] = field(default_factory=list)
    more_first_failures: int = 0


@dataclass
class Failures:
    """A run's failures: counts by exception type and one page of failed tasks."""

    run_id: str
    outcome: str
    live: bool
    failed: int  # tasks whose own try failed
    dep_failed: int  # tasks that never ran because a dependency failed
    cancelled: int  # not failures: the run ended before they finished
    unfinished: int  # neither finished nor cancelled: still running, or left in flight by a killed run
    groups: list[dict[str, Any]]  # exception, state, count, example_task, example_message
    more_groups: int
    tasks: list[FailedTask]
    matching: int  # failed tasks that match ``exception`` (all of them when it is None)
    page: int
    per_page: int
    exception: str | None
    cancelled_tasks: list[dict[str, Any]]

    @property
    def total(self) -> int:
        """Failed tasks of both kinds."""
        return self.failed + self.dep_failed

    @property
    def pages(self) -> int:
        """Pages of ``per_page`` tasks that ``matching`` fills (at least one)."""
        return max(1, -(-self.matching // self.per_page))

    @property
    def after(self) -> int:
        """Matching tasks on later pages."""
        return max(0, self.matching - (self.page - 1) * self.per_page - len(self.tasks))


def split_error(error: str | None) -> tuple[str, str]:
    """(exception type, message) of a recorded error ``Type: message``: the text before the first
    ':' (as ``exception_type_sql`` cuts it), and the rest."""
    if not error:
        return "", ""
    head, colon, rest = error.partition(":")
    if not colon:
        return error[:TYPE_CHARS], ""
    return head[:TYPE_CHARS], rest.strip()


def exception_type_sql(column: Any, dialect: str) -> ColumnElement[Any]:
    """SQL for the text of ``column`` before its first ':' (all of it when there is none), cut to
    ``TYPE_CHARS``: what failures are grouped by."""
    text = func.coalesce(column, "")
    if dialect == "postgresql":
        head = func.split_part(text, ":", 1)
    else:
        colon = func.instr(text, ":")
        head = case((colon > 0, func.substr(text, 1, colon - 1)), else_=text)
    return func.substr(head, 1, TYPE_CHARS)


def failures(engine: Engine, run_id: str, *, page: int = 1, per_page: int = PER_PAGE,
             exception: str | None = None) -> Failures:
    """The run's failures: counts of failed, dependency-failed, cancelled and unfinished tasks;
    failures grouped by (exception type, state) with a count and an example, largest first (at
    most ``GROUP_LIMIT`` groups); and page ``page`` of the failed tasks (of type ``exception``
    when given; failed before dep_fail, then by task id) explained by ``explain_tasks``.
    Raises ``RunNotFound``."""
    t = m.Task
    page = max(1, page)
    with engine.connect() as conn:
        run = require_run(conn, run_id)
        outcome, live = display_outcome(run.outcome, run.host, run.pid, run.time_completed)
        kind = exception_type_sql(t.error, conn.dialect.name)
        by_state = dict(conn.execute(select(t.task_status_name, func.count()).where(t.run_id == run_id)
                                     .group_by(t.task_status_name)).all())
        unfinished = sum(n for state, n in by_state.items() if state not in FINISHED_STATES)
        group_rows = conn.execute(
            select(kind.label("exception"), t.task_status_name.label("state"), func.count().label("count"),
                   func.min(t.task_id).label("example_task"))
            .where(t.run_id == run_id, t.task_status_name.in_(FAILURE_STATES))
            .group_by(kind, t.task_status_name).order_by(func.count().desc(), kind)).all()
        groups = [dict(row._mapping) for row in group_rows[:GROUP_LIMIT]]
        examples = _errors(conn, run_id, [group["example_task"] for group in groups])
        for group in groups:
            group["example_message"] = split_error(examples.get(group["example_task"]))[1][:MESSAGE_CHARS]
        matching_filter = [t.run_id == run_id, t.task_status_name.in_(FAILURE_STATES)]
        if exception is not None:
            matching_filter.append(kind == exception)
        matching = conn.execute(select(func.count()).select_from(t).where(*matching_filter)).scalar_one()
        ids = list(conn.execute(
            select(t.task_id).where(*matching_filter)
            .order_by(case((t.task_status_name == FAILED, 0), else_=1), t.task_id)
            .limit(per_page).offset((page - 1) * per_page)).scalars())
        tasks = explain_tasks(conn, run_id, ids, run.cwd)
        cancelled_tasks = rows(conn.execute(
            select(t.task_id, t.task_func_name.label("app"), t.error, t.task_time_returned)
            .where(t.run_id == run_id, t.task_status_name == CANCELLED).order_by(t.task_id).limit(CANCELLED_LIMIT)))
    return Failures(run_id=run_id, outcome=outcome, live=live, failed=by_state.get(FAILED, 0),
                    dep_failed=by_state.get(DEP_FAIL, 0), cancelled=by_state.get(CANCELLED, 0),
                    unfinished=unfinished, groups=groups, more_groups=max(0, len(group_rows) - GROUP_LIMIT),
                    tasks=tasks, matching=matching, page=page, per_page=per_page, exception=exception,
                    cancelled_tasks=cancelled_tasks)


def explain_tasks(conn: Connection, run_id: str, task_ids: list[int], cwd: str | None) -> list[FailedTask]:
    """``task_ids`` (a bounded list) as ``FailedTask``s, in that order: error, traceback (the
    task's, else that of its latest try that has one), tries, stderr tail, and the first failures
    upstream of each."""
    if not task_ids:
        return []
    t, r = m.Task, m.Try
    found = {row.task_id: row for row in conn.execute(
        select(t.task_id, t.task_func_name, t.task_status_name, t.error, t.task_stderr, t.task_time_returned,
               t.task_fail_count, t.traceback).where(t.run_id == run_id, t.task_id.in_(task_ids)))}
    columns = [r.task_id, r.try_id, r.hostname, r.block_id, r.pid, r.task_executor, r.task_try_time_launched,
               r.task_try_time_running, r.task_try_time_returned, r.error, r.traceback]
    tries: dict[int, list[dict[str, Any]]] = {}
    for attempt in rows(conn.execute(select(*columns)
                                     .where(r.run_id == run_id, r.task_id.in_(task_ids))
                                     .order_by(r.task_id, r.try_id))):
        tries.setdefault(attempt["task_id"], []).append(attempt)
    upstream = first_failures(conn, run_id, [task_id for task_id in task_ids if task_id in found])
    explained = []
    for task_id in task_ids:
        row = found.get(task_id)
        if row is None:
            continue
        own = tries.get(task_id, [])
        exception, message = split_error(row.error)
        traceback = row.traceback or next((attempt["traceback"] for attempt in reversed(own) if attempt["traceback"]),
                                          None)
        roots = upstream.get(task_id, [])
        explained.append(FailedTask(
            task_id=task_id, app=row.task_func_name, state=row.task_status_name, exception=exception,
            message=message[:MESSAGE_CHARS], time_returned=aware(row.task_time_returned),
            fail_count=row.task_fail_count or 0, tries=own[-TRY_LIMIT:], more_tries=max(0, len(own) - TRY_LIMIT),
            traceback=traceback[-TRACEBACK_CHARS:] if traceback else None,
            stderr=stderr_tail(row.task_stderr, cwd) if row.task_stderr else None,
            first_failures=roots[:FIRST_FAILURES_SHOWN], more_first_failures=max(0, len(roots) - FIRST_FAILURES_SHOWN)))
    return explained


def _errors(conn: Connection, run_id: str, task_ids: Iterable[int]) -> dict[int, str | None]:
    ids = list(dict.fromkeys(task_ids))
    if not ids:
        return {}
    t = m.Task
    return dict(conn.execute(select(t.task_id, t.error).where(t.run_id == run_id, t.task_id.in_(ids))).all())


def failed_upstream(conn: Connection, run_id: str, task_ids: Iterable[int], *, depth: int = WALK_DEPTH,
                    limit: int = WALK_NODES) -> tuple[dict[int, list[int]], dict[int, tuple[str, str | None]]]:
    """The failed part of the graph upstream of ``task_ids``: ``edges[task]`` lists the failed
    (or dependency-failed) tasks it depended on, and ``about[task]`` is (app, error) of each task
    reached. One query per level, at most ``depth`` levels and about ``limit`` tasks."""
    d, t = m.Dependency, m.Task
    edges: dict[int, list[int]] = {}
    about: dict[int, tuple[str, str | None]] = {}
    frontier = list(dict.fromkeys(task_ids))
    seen = set(frontier)
    for _ in range(depth):
        if not frontier or len(seen) > limit:
            break
        edges.update({task_id: [] for task_id in frontier})
        found = conn.execute(
            select(d.task_id, d.depends_on, t.task_func_name, t.error)
            .join(t, (t.run_id == d.run_id) & (t.task_id == d.depends_on))
            .where(d.run_id == run_id, d.task_id.in_(frontier), t.task_status_name.in_(FAILURE_STATES))
            .order_by(d.task_id, d.depends_on)).all()
        frontier = []
        for task_id, depends_on, app, error in found:
            edges[task_id].append(depends_on)
            about[depends_on] = (app, error)
            if depends_on not in seen:
                seen.add(depends_on)
                frontier.append(depends_on)
    return edges, about


def first_failures(conn: Connection, run_id: str, task_ids: Iterable[int]) -> dict[int, list[FirstFailure]]:
    """For each of ``task_ids``, the tasks upstream of it that failed first: failed tasks none of
    whose own dependencies failed, each with the path to it (nearest first). A task with no failed
    dependency maps to an empty list."""
    starts = list(dict.fromkeys(task_ids))
    edges, about = failed_upstream(conn, run_id, starts)
    found: dict[int, list[FirstFailure]] = {}
    for start in starts:
        parent: dict[int, int | None] = {start: None}
        queue = deque([start])
        roots: list[FirstFailure] = []
        while queue:
            node = queue.popleft()
            upstream = edges.get(node)
            if node != start and upstream is not None and not upstream:
                path = []
                step = parent[node]
                while step is not None and step != start:
                    path.append(step)
                    step = parent[step]
                app, error = about[node]
                roots.append(FirstFailure(node, app, error, list(reversed(path))))
                continue
            for depends_on in upstream or ():
                if depends_on not in parent:
                    parent[depends_on] = node
                    queue.append(depends_on)
        found[start] = sorted(roots, key=lambda root: root.task_id)
    return found


def stderr_tail(recorded: str, cwd: str | None, *, lines: int = STDERR_LINES,
                max_bytes: int = STDERR_BYTES) -> StderrTail:
    """The last ``lines`` lines (from at most ``max_bytes`` read from the end) of the stderr file
    ``recorded`` (a path, relative to ``cwd`` when not absolute, or a ``file://`` URL), or a
    note saying why there is nothing to show: it no longer exists, it is not a regular file, it is
    not local, or it cannot be read."""
    path = recorded
    if "://" in path:
        scheme, _, rest = path.partition("://")
        if scheme != "file":
            return StderrTail(recorded, path, note=f"{recorded} is not a local file ({scheme}://): it is not read here")
        path = rest
    if not os.path.isabs(path):
        if not cwd:
            return StderrTail(recorded, path, note="the run's working directory was not recorded, so the relative "
                                                   f"path {recorded} cannot be found")
        path = os.path.join(cwd, path)
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return StderrTail(recorded, path, note=f"{path}: the file no longer exists")
    except OSError as e:
        return StderrTail(recorded, path, note=f"{path} cannot be read: {e.strerror or e}")
    with os.fdopen(descriptor, "rb") as stream:
        status = os.fstat(stream.fileno())
        if not stat.S_ISREG(status.st_mode):
            return StderrTail(recorded, path, note=f"{path} is not a regular file: it is not read")
        start = max(0, status.st_size - max_bytes)
        stream.seek(start)
        data = stream.read(max_bytes)
    text = data.decode("utf-8", errors="replace")
    kept = text.splitlines()
    cut = start > 0
    if cut and kept:
        kept = kept[1:]  # the first line read is most likely a partial one
    if len(kept) > lines:
        kept, cut = kept[-lines:], True
    return StderrTail(recorded, path, exists=True, text="\n".join(kept), cut=cut,
                      note="" if kept else "the file is empty")
