"""Every task of one run, a page at a time, optionally of one app and in one state: the list
Parsl's visualizer shows on its app pages (name, id, dependencies, completion), with each task's
state, times, duration and failed tries."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select

from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.queries import NothingMatches
from parsl_repro.monitoring.read.apps import task_duration
from parsl_repro.monitoring.read.common import Page, display_outcome, require_run, rows

PAGE_SIZE = 100
DEPENDS_SHOWN = 20
"""Dependencies listed per task; the rest are counted."""


@dataclass
class TaskList:
    """A page of the run's tasks (``tasks``), those of ``app`` in ``state`` when given; ``apps`` and
    ``states`` are every app and state of the run with its number of tasks, for the filters."""

    run_id: str
    tasks: Page
    app: str | None
    state: str | None
    apps: dict[str, int] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    live: bool = False


def run_tasks(engine: Engine, run_id: str, *, app: str | None = None, state: str | None = None, offset: int = 0,
              limit: int = PAGE_SIZE) -> TaskList:
    """Tasks ``offset`` to ``offset + limit`` of run ``run_id`` by task id (of ``app``, in
    ``state``), each with its app, state, dependencies (the first ``DEPENDS_SHOWN``), invoked and
    returned times, duration and failed tries. Raises ``RunNotFound``, or ``NothingMatches``
    naming what the run has when it has no such app or state."""
    t = m.Task
    with engine.connect() as conn:
        run = require_run(conn, run_id)
        counts = conn.execute(select(t.task_func_name, t.task_status_name, func.count())
                              .where(t.run_id == run_id).group_by(t.task_func_name, t.task_status_name)).all()
        apps: dict[str, int] = {}
        states: dict[str, int] = {}
        for name, status, n in counts:
            apps[name] = apps.get(name, 0) + n
            states[status or "unknown"] = states.get(status or "unknown", 0) + n
        if app is not None and app not in apps:
            raise NothingMatches(f"Run {run_id[:12]} has no app {app!r}; its apps are: "
                                 f"{', '.join(sorted(apps)) or 'none (it has no tasks)'}")
        if state is not None and state not in states:
            raise NothingMatches(f"No task of run {run_id[:12]} is in state {state!r}; its states are: "
                                 f"{', '.join(sorted(states)) or 'none (it has no tasks)'}")
        where = [t.run_id == run_id] + ([t.task_func_name == app] if app is not None else []) \
            + ([t.task_status_name == state] if state is not None else [])
        total = sum(n for name, status, n in counts
                    if (app is None or name == app) and (state is None or (status or "unknown") == state))
        offset = max(0, min(offset, max(total - 1, 0)))
        found = rows(conn.execute(
            select(t.task_id, t.task_func_name.label("app"), t.task_status_name.label("state"), t.task_depends,
                   t.task_time_invoked, t.task_time_returned, task_duration().label("duration"),
                   t.task_fail_count)
            .where(*where).order_by(t.task_id).limit(limit).offset(offset)))
    for row in found:
        depends = [int(part) for part in (row.pop("task_depends") or "").split(",") if part.strip().isdigit()]
        row["depends"], row["depends_more"] = depends[:DEPENDS_SHOWN], max(0, len(depends) - DEPENDS_SHOWN)
        row["duration"] = None if row["duration"] is None else float(row["duration"])
    _, live = display_outcome(run.outcome, run.host, run.pid, run.time_completed)
    return TaskList(run_id, Page(found, total, limit, offset), app, state, apps, states, live)
