"""The run list and each run's header: outcome, liveness, task counts by state, memo hits."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.read.common import Page, display_outcome, require_run, row_dict, rows, seconds

RUN_LIMIT = 1000


def runs(engine: Engine, limit: int = RUN_LIMIT) -> Page:
    """The newest ``limit`` runs with script, user, host, start, duration, outcome (running,
    completed, failed, killed, interrupted, ...), whether each is live, task counts by state and
    memo hits."""
    w, t = m.Workflow, m.Task
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(w)).scalar_one()
        found = rows(conn.execute(
            select(w.run_id, w.workflow_name, w.script_path, w.user, w.host, w.pid, w.time_began, w.time_completed,
                   w.outcome, w.parent_run_id)
            .order_by(w.time_began.desc()).limit(limit)))
        ids = [run["run_id"] for run in found]
        counts: dict[str, dict[str, int]] = {run_id: {} for run_id in ids}
        if ids:
            for run_id, state, n in conn.execute(
                    select(t.run_id, t.task_status_name, func.count()).where(t.run_id.in_(ids))
                    .group_by(t.run_id, t.task_status_name)):
                counts[run_id][state or "unknown"] = n
    for run in found:
        _describe(run, counts[run["run_id"]])
    return Page(found, total, limit)


def run_header(engine: Engine, run_id: str) -> dict[str, Any]:
    """One run's row for a page header, with outcome, liveness, duration and state counts.
    Raises ``RunNotFound``."""
    t = m.Task
    with engine.connect() as conn:
        run = row_dict(require_run(conn, run_id))
        states = {state or "unknown": n for state, n in conn.execute(
            select(t.task_status_name, func.count()).where(t.run_id == run_id).group_by(t.task_status_name))}
    _describe(run, states)
    return run


def change_token(engine: Engine, run_id: str) -> list[Any]:
    """What changes when anything new is recorded: the newest state change, resource sample and
    node in the store, its number of block events, and this run's outcome. Live pages compare
    tokens and redraw only when one moved. The maxima are of primary keys, so this costs a few
    index look-ups however large the store (a change in another run redraws too, harmlessly)."""
    w = m.Workflow
    with engine.connect() as conn:
        run = conn.execute(select(w.outcome, w.time_completed).where(w.run_id == run_id)).first()
        return [
            conn.execute(select(func.max(m.Status.id))).scalar(),
            conn.execute(select(func.max(m.Resource.id))).scalar(),
            conn.execute(select(func.max(m.Node.id))).scalar(),
            conn.execute(select(func.count()).select_from(m.Block).where(m.Block.run_id == run_id)).scalar(),
            None if run is None else [run.outcome, str(run.time_completed)],
        ]


def _describe(run: dict[str, Any], states: dict[str, int]) -> None:
    outcome, live = display_outcome(run.get("outcome"), run.get("host"), run.get("pid"), run.get("time_completed"))
    run["outcome"] = outcome
    run["live"] = live
    run["duration"] = seconds(run.get("time_began"), run.get("time_completed"))
    run["states"] = states
    run["tasks"] = sum(states.values())
    run["memo_hits"] = states.get("memo_done", 0)
