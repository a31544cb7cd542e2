"""One task of one run, as the task page shows it: its record, state changes with their causes,
tries, files, resource samples, memo key and source, and its neighbours in the task graph. Every
list is bounded (``Page``); resource samples past ``SAMPLE_LIMIT`` are binned in time in SQL."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select

from parsl_repro.monitoring import cache_notes
from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.queries import NothingMatches
from parsl_repro.monitoring.read.common import Page, display_outcome, require_run, row_dict, rows
from parsl_repro.monitoring.read.failures import FirstFailure, first_failures
from parsl_repro.monitoring.read.sqltime import EpochMs, Floor
from parsl_repro.task_states import States

STATE_LIMIT = 500
TRY_LIMIT = 100
FILE_LIMIT = 200
NEIGHBOUR_LIMIT = 50
SAMPLE_LIMIT = 2000
SAMPLE_BINS = 500
"""Time bins per try when a task has more than ``SAMPLE_LIMIT`` samples."""
TEXT_CHARS = 20_000
"""Longest traceback or detail shown; longer ones are cut."""
INTERNAL_EXECUTOR = "_parsl_internal"
"""Where join apps run: in the workflow's own process."""


@dataclass
class Samples:
    """A task's resource samples: ``points`` (try_id, timestamp, cpu seconds user+system, rss
    bytes) in time order, ``total`` recorded. ``bin_seconds`` is set when they were binned (each
    point is then a bin's first time, its largest CPU time and largest RSS). ``reason`` says why
    there are none."""

    points: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    bin_seconds: float | None = None
    reason: str | None = None


@dataclass
class TaskDetail:
    """Everything the task page shows about one task; ``live``: its run is still going."""

    run_id: str
    task_id: int
    task: dict[str, Any]
    app: dict[str, Any] | None
    states: Page
    tries: Page
    files: Page
    samples: Samples
    upstream: Page
    downstream: Page
    memo_components: dict[str, str]
    cache_notes: list[str]
    memo_source_exists: bool | None
    live: bool = False
    first_failures: list[FirstFailure] = field(default_factory=list)
    """For a dependency failure: the tasks upstream that failed first (``failures.first_failures``)."""

    @property
    def never_ran(self) -> bool:
        return not self.tries.total


def task_detail(engine: Engine, run_id: str, task_id: int) -> TaskDetail:
    """One task's record and everything about it. Raises ``RunNotFound``, or ``NothingMatches``
    saying which task ids the run has when it has no task ``task_id``."""
    t = m.Task
    with engine.connect() as conn:
        run = require_run(conn, run_id)
        found = conn.execute(select(m.Task.__table__).where(t.run_id == run_id, t.task_id == task_id)).first()
        if found is None:
            raise NothingMatches(_no_task(conn, run_id, task_id))
        task = row_dict(found)
        app = None
        if task["app_digest"]:
            a = m.App
            app_row = conn.execute(select(a.app_digest, a.qualname, a.module, a.kind)
                                   .where(a.app_digest == task["app_digest"])).first()
            app = row_dict(app_row) if app_row is not None else None
        tries = _tries(conn, run_id, task_id)
        detail = TaskDetail(
            run_id, task_id, task, app, _states(conn, run_id, task_id), tries, _files(conn, run_id, task_id),
            _samples(conn, run_id, task_id), *_neighbours(conn, run_id, task_id),
            memo_components=_components(task["memo_components"]), cache_notes=cache_notes.split(task["cache_note"]),
            memo_source_exists=_run_exists(conn, task["memo_source_run"]),
            live=display_outcome(run.outcome, run.host, run.pid, run.time_completed)[1])
        if not detail.samples.points:
            detail.samples.reason = _no_samples_reason(conn, run, task, tries)
        if task["task_status_name"] == States.dep_fail.name:
            detail.first_failures = first_failures(conn, run_id, [task_id])[task_id]
    return detail


def _no_task(conn: Any, run_id: str, task_id: int) -> str:
    t = m.Task
    low, high = conn.execute(select(func.min(t.task_id), func.max(t.task_id)).where(t.run_id == run_id)).one()
    has = "it has no tasks" if low is None else f"it has tasks {low} to {high}"
    return f"Run {run_id[:12]} has no task {task_id} ({has})"


def _states(conn: Any, run_id: str, task_id: int) -> Page:
    s = m.Status
    where = [s.run_id == run_id, s.task_id == task_id]
    total = conn.execute(select(func.count()).where(*where)).scalar_one()
    found = rows(conn.execute(
        select(s.id, s.timestamp, s.try_id, s.previous_status_name, s.task_status_name, s.cause,
               func.substr(s.detail, 1, TEXT_CHARS).label("detail"))
        .where(*where).order_by(s.id).limit(STATE_LIMIT)))
    return Page(found, total, STATE_LIMIT)


def _tries(conn: Any, run_id: str, task_id: int) -> Page:
    r = m.Try
    where = [r.run_id == run_id, r.task_id == task_id]
    total = conn.execute(select(func.count()).where(*where)).scalar_one()
    found = rows(conn.execute(
        select(r.try_id, r.task_executor, r.block_id, r.manager, r.hostname, r.pid, r.task_try_time_launched,
               r.task_try_time_running, r.task_try_time_returned, func.substr(r.error, 1, TEXT_CHARS).label("error"),
               func.substr(r.traceback, 1, TEXT_CHARS).label("traceback"))
        .where(*where).order_by(r.try_id).limit(TRY_LIMIT)))
    return Page(found, total, TRY_LIMIT)


def _files(conn: Any, run_id: str, task_id: int) -> Page:
    u, f = m.FileUse, m.File
    where = [u.run_id == run_id, u.task_id == task_id]
    total = conn.execute(select(func.count()).where(*where)).scalar_one()
    found = rows(conn.execute(
        select(u.role, u.try_id, u.timestamp, f.file_id, f.url, f.sha256, f.size)
        # ordered by an expression of role, not role itself: else SQLite (no statistics) walks the run's
        # (run_id, role) index for the order instead of finding the task's few uses by (run_id, task_id)
        .join(f, f.file_id == u.file_id).where(*where)
        .order_by(func.coalesce(u.role, ""), f.url, u.try_id).limit(FILE_LIMIT)))
    return Page(found, total, FILE_LIMIT)


def _samples(conn: Any, run_id: str, task_id: int) -> Samples:
    r = m.Resource
    where = [r.run_id == run_id, r.task_id == task_id]
    total, first, last = conn.execute(select(func.count(), EpochMs(func.min(r.timestamp)),
                                             EpochMs(func.max(r.timestamp))).where(*where)).one()
    if not total:
        return Samples()
    cpu = func.coalesce(r.psutil_process_time_user, 0.0) + func.coalesce(r.psutil_process_time_system, 0.0)
    if total <= SAMPLE_LIMIT:
        points = rows(conn.execute(
            select(r.try_id, r.timestamp, cpu.label("cpu"), r.psutil_process_memory_resident.label("rss"))
            .where(*where).order_by(r.try_id, r.timestamp)))
        return Samples(points, total)
    width = max((float(last) - float(first)) / SAMPLE_BINS, 1e-3)
    index = Floor((EpochMs(r.timestamp) - float(first)) / width).label("bin")
    points = rows(conn.execute(
        select(r.try_id, index, func.min(r.timestamp).label("timestamp"), func.max(cpu).label("cpu"),
               func.max(r.psutil_process_memory_resident).label("rss"))
        .where(*where).group_by(r.try_id, index).order_by(r.try_id, index)))
    for point in points:
        del point["bin"]
    return Samples(points, total, width)


def _no_samples_reason(conn: Any, run: Any, task: dict[str, Any], tries: Page) -> str:
    """Why a task has no resource samples, as far as the record tells."""
    if not tries.total:
        return "the task never ran"
    executors = {attempt["task_executor"] for attempt in tries.items}
    if executors == {INTERNAL_EXECUTOR}:
        return "a join app runs in the workflow's own process, which is not sampled"
    threads = set(re.findall(r"ThreadPoolExecutor\((?:[^()]|\([^()]*\))*?label='([^']*)'", run.config_summary or ""))
    if executors and executors <= threads:
        return (f"the {', '.join(sorted(executors))} executor (ThreadPoolExecutor) runs tasks in the workflow's own "
                f"process, where they are not sampled")
    r = m.Resource
    if conn.execute(select(r.id).where(r.run_id == run.run_id).limit(1)).first() is not None:
        return "the task ended before its first sample was taken"
    if re.search(r"\bmonitoring=None\b", run.config_summary or ""):
        return "resource monitoring was off in this run (its Config has monitoring=None)"
    return "no task of this run was sampled: resource monitoring was off, or its executor does not sample tasks"


def _neighbours(conn: Any, run_id: str, task_id: int) -> tuple[Page, Page]:
    """The tasks this one waited on, and the tasks that waited on it, with their app and state."""
    d, t = m.Dependency, m.Task
    pages = []
    for mine, theirs in ((d.task_id, d.depends_on), (d.depends_on, d.task_id)):
        where = [d.run_id == run_id, mine == task_id]
        total = conn.execute(select(func.count()).where(*where)).scalar_one()
        found = rows(conn.execute(
            select(theirs.label("task_id"), d.kind, t.task_func_name, t.task_status_name)
            .join(t, (t.run_id == d.run_id) & (t.task_id == theirs), isouter=True)
            .where(*where).order_by(theirs).limit(NEIGHBOUR_LIMIT)))
        pages.append(Page(found, total, NEIGHBOUR_LIMIT))
    return pages[0], pages[1]


def _components(recorded: str | None) -> dict[str, str]:
    if not recorded:
        return {}
    try:
        parsed = json.loads(recorded)
    except ValueError:
        return {"(unreadable)": recorded}
    return {str(key): str(value) for key, value in parsed.items()} if isinstance(parsed, dict) else {}


def _run_exists(conn: Any, run_id: str | None) -> bool | None:
    if run_id is None:
        return None
    return conn.execute(select(m.Workflow.run_id).where(m.Workflow.run_id == run_id)).first() is not None
