"""Read-side questions about the provenance store, for the CLI and the dashboard.

Every function takes an open ``Engine`` and returns plain data (dicts, lists, dataclasses); no
SQL lives outside this package.
"""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, delete, func, or_, select

from parsl_repro.errors import ParslError
from parsl_repro.monitoring import models as m


class RunNotFound(ParslError):
    """A run reference (id, unique prefix or ``last``) matches no run, or several."""


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in result]


def resolve_run(engine: Engine, ref: str | None) -> str:
    """The run id that ``ref`` names: a full id, a unique prefix, or ``last`` (the default)."""
    with engine.connect() as conn:
        if ref in (None, "last"):
            run_id = conn.execute(select(m.Workflow.run_id).order_by(m.Workflow.time_began.desc()).limit(1)).scalar()
            if run_id is None:
                raise RunNotFound("The provenance store holds no runs yet")
            return run_id
        matches = list(conn.execute(select(m.Workflow.run_id).where(m.Workflow.run_id.startswith(ref))).scalars())
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunNotFound(f"No run matches {ref!r}; `parsl-repro runs` lists them")
    raise RunNotFound(f"{ref!r} matches {len(matches)} runs ({', '.join(x[:12] for x in matches[:5])}...); "
                      f"give more of the id")


def list_runs(engine: Engine, limit: int | None = 50) -> list[dict[str, Any]]:
    """Runs, newest first, with their outcome and task counts."""
    w = m.Workflow
    query = select(w.run_id, w.workflow_name, w.time_began, w.time_completed, w.outcome, w.tasks_completed_count,
                   w.tasks_failed_count, w.host, w.user, w.script_path, w.rundir).order_by(w.time_began.desc())
    if limit:
        query = query.limit(limit)
    with engine.connect() as conn:
        return _rows(conn.execute(query))


def run_detail(engine: Engine, run_id: str) -> dict[str, Any]:
    """Everything recorded about one run, with its task state counts and package count."""
    with engine.connect() as conn:
        run = conn.execute(select(m.Workflow.__table__).where(m.Workflow.run_id == run_id)).one()
        detail = dict(run._mapping)
        counts = conn.execute(select(m.Task.task_status_name, func.count()).where(m.Task.run_id == run_id)
                              .group_by(m.Task.task_status_name))
        detail["task_states"] = {state or "unknown": n for state, n in counts}
        packages = conn.execute(select(m.Environment.packages)
                                .where(m.Environment.packages_digest == run.packages_digest)).scalar()
        detail["packages"] = [tuple(p) for p in json.loads(packages)] if packages else []
        detail["argv"] = json.loads(run.argv) if run.argv else []
    return detail


def list_tasks(engine: Engine, run_id: str, state: str | None = None, app: str | None = None) -> list[dict[str, Any]]:
    """The tasks of a run in id order, optionally only those in ``state`` or of ``app``."""
    t = m.Task
    query = select(t.task_id, t.task_func_name, t.task_status_name, t.task_time_invoked, t.task_time_returned,
                   t.task_fail_count, t.executor, t.args_repr, t.error, t.task_hashsum, t.memo_source_run,
                   t.memo_source_task, t.cache_note).where(t.run_id == run_id).order_by(t.task_id)
    if state:
        query = query.where(t.task_status_name == state)
    if app:
        query = query.where(t.task_func_name == app)
    with engine.connect() as conn:
        return _rows(conn.execute(query))


def task_story(engine: Engine, run_id: str, task_id: int) -> list[dict[str, Any]]:
    """Every state change of one task, in order, with its cause."""
    s = m.Status
    query = select(s.timestamp, s.try_id, s.previous_status_name, s.task_status_name, s.cause, s.detail) \
        .where(s.run_id == run_id, s.task_id == task_id).order_by(s.id)
    with engine.connect() as conn:
        return _rows(conn.execute(query))


def list_files(engine: Engine, run_id: str) -> list[dict[str, Any]]:
    """Every file use of a run: which task used which file (by content digest) in which role."""
    f, u = m.File, m.FileUse
    query = select(u.task_id, u.try_id, u.role, f.url, f.sha256, f.size, u.timestamp) \
        .join(f, f.file_id == u.file_id).where(u.run_id == run_id).order_by(u.task_id, u.role, f.url)
    with engine.connect() as conn:
        return _rows(conn.execute(query))


# --- why: explaining memo misses ----------------------------------------------------------------------
@dataclass
class Explanation:
    """Why one task was or was not a memo hit, component by component."""
    run_id: str
    task_id: int
    app: str
    outcome: str  # hit | miss | not-cached | first
    summary: str
    changed: list[str] = field(default_factory=list)
    compared_with: tuple[str, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "task_id": self.task_id, "app": self.app, "outcome": self.outcome,
                "summary": self.summary, "changed": self.changed,
                "compared_with": list(self.compared_with) if self.compared_with else None}


def why(engine: Engine, run_id: str, app: str | None = None, task_id: int | None = None) -> list[Explanation]:
    """Explain memo outcomes. By default: every cached task of the run that was not a hit."""
    t, a = m.Task, m.App
    query = select(t.run_id, t.task_id, t.task_func_name, t.task_status_name, t.task_memoize, t.task_hashsum,
                   t.memo_components, t.cache_note, t.memo_source_run, t.memo_source_task, t.app_digest,
                   t.task_time_invoked, a.qualname, a.module).join(a, a.app_digest == t.app_digest, isouter=True) \
        .where(t.run_id == run_id).order_by(t.task_id)
    if task_id is not None:
        query = query.where(t.task_id == task_id)
    if app is not None:
        query = query.where(or_(t.task_func_name == app, a.qualname == app))
    if task_id is None and app is None:
        not_a_hit = or_(t.task_status_name.is_(None), t.task_status_name != "memo_done")
        query = query.where(t.task_memoize == "True", not_a_hit)
    explanations = []
    with engine.connect() as conn:
        env = conn.execute(select(m.Workflow.packages_digest).where(m.Workflow.run_id == run_id)).scalar()
        for row in conn.execute(query).all():
            explanations.append(_explain(conn, row, env))
    return explanations


def _explain(conn: Any, row: Any, env_digest: str | None) -> Explanation:
    name = row.qualname or row.task_func_name
    base = Explanation(row.run_id, row.task_id, name, "miss", "")
    if row.task_memoize != "True":
        base.outcome, base.summary = "not-cached", "the app is not declared with cache=True"
        return base
    if row.task_status_name == "memo_done":
        base.outcome = "hit"
        base.summary = f"hit: reused the result of run {str(row.memo_source_run)[:12]} task {row.memo_source_task}"
        base.compared_with = (row.memo_source_run, row.memo_source_task)
        return base
    if row.task_hashsum is None:
        base.outcome = "not-cached"
        base.summary = row.cache_note or "no memo key was computed (the task never became ready to run)"
        return base
    mine = json.loads(row.memo_components or "{}")
    earlier = _nearest_earlier(conn, row)
    if row.cache_note:
        base.changed.append(row.cache_note)
    if earlier is None:
        base.outcome = "first"
        base.summary = f"no earlier task of {name} is recorded, so there was nothing to reuse"
        return base
    theirs = json.loads(earlier.memo_components or "{}")
    base.compared_with = (earlier.run_id, earlier.task_id)
    base.changed.extend(_component_differences(mine, theirs))
    if earlier.packages_digest and env_digest and earlier.packages_digest != env_digest:
        base.changed.append("environment: the installed packages differ (not part of the memo key)")
    if earlier.task_hashsum == row.task_hashsum and not row.cache_note:
        base.summary = (f"same memo key as run {earlier.run_id[:12]} task {earlier.task_id}, but that task's result "
                        f"was not stored as reusable (it failed, or was not loaded into this run)")
    else:
        where = f"run {earlier.run_id[:12]} task {earlier.task_id}"
        base.summary = f"miss against {where}: " + ("; ".join(base.changed) or "memo keys differ")
    return base


def _component_differences(mine: dict[str, str], theirs: dict[str, str]) -> list[str]:
    changes = []
    labels = {"code": "code: the function's source or what it references changed"}
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) == theirs.get(key):
            continue
        if key in labels:
            changes.append(labels[key])
        elif key.startswith("input "):
            path = key[len("input "):]
            if key not in theirs:
                changes.append(f"input file {path} is new")
            elif key not in mine:
                changes.append(f"input file {path} is no longer an input")
            else:
                changes.append(f"input file {path}: content changed")
        elif key.startswith("arg "):
            changes.append(f"argument {key[4:]} changed" if key in theirs and key in mine else f"argument {key[4:]} "
                           f"{'added' if key in mine else 'removed'}")
        elif key.startswith("kwarg "):
            if key == "kwarg inputs" and any(k.startswith("input ") and mine.get(k) != theirs.get(k)
                                             for k in set(mine) | set(theirs)):
                continue  # already explained file by file
            changes.append(f"keyword argument {key[6:]} changed" if key in theirs and key in mine else
                           f"keyword argument {key[6:]} {'added' if key in mine else 'removed'}")
        else:
            changes.append(f"{key} changed")
    return changes


def _nearest_earlier(conn: Any, row: Any, candidates: int = 200) -> Any:
    """The earlier task of the same app (same module and qualname) most like this one: among the
    most recent ``candidates`` with a memo key, the one differing in the fewest components."""
    t, a, w = m.Task, m.App, m.Workflow
    same_app = and_(a.qualname == row.qualname, a.module == row.module) if row.qualname else \
        t.task_func_name == row.task_func_name
    earlier_time = or_(t.task_time_invoked < row.task_time_invoked,
                       and_(t.run_id == row.run_id, t.task_id < row.task_id))
    query = select(t.run_id, t.task_id, t.task_hashsum, t.memo_components, w.packages_digest) \
        .join(a, a.app_digest == t.app_digest, isouter=True).join(w, w.run_id == t.run_id) \
        .where(same_app, t.task_hashsum.is_not(None), earlier_time,
               or_(t.run_id != row.run_id, t.task_id != row.task_id)) \
        .order_by(t.task_time_invoked.desc(), t.task_id.desc()).limit(candidates)
    mine = json.loads(row.memo_components or "{}")
    best, best_score = None, None
    for other in conn.execute(query):
        theirs = json.loads(other.memo_components or "{}")
        # a changed argument weighs more than changed code, so a rerun of the same call after an
        # edit is compared with that call, not with a neighbour that happens to share the code
        score = sum((1 if k == "code" else 2) for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        if best_score is None or score < best_score:
            best, best_score = other, score
    return best


# --- gc -------------------------------------------------------------------------------------------
def gc_results(engine: Engine, *, keep_runs: int | None = None, older_than_days: float | None = None,
               dry_run: bool = False) -> dict[str, int]:
    """Drop stored results of old runs: those produced by runs outside the newest ``keep_runs``
    or begun more than ``older_than_days`` ago, unless a kept run reused them."""
    w, r, t = m.Workflow, m.Result, m.Task
    with engine.begin() as conn:
        runs = list(conn.execute(select(w.run_id, w.time_began).order_by(w.time_began.desc())))
        old = set()
        if keep_runs is not None:
            old |= {x.run_id for x in runs[keep_runs:]}
        if older_than_days is not None:
            cutoff = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(days=older_than_days)
            old |= {x.run_id for x in runs if x.time_began < cutoff}
        kept = [x.run_id for x in runs if x.run_id not in old]
        if not old:
            return {"runs": 0, "results": 0, "bytes": 0}
        reused = select(t.task_hashsum).where(t.run_id.in_(kept), t.task_hashsum.is_not(None))
        doomed = and_(r.run_id.in_(old), r.memo_key.not_in(reused))
        count, size = conn.execute(select(func.count(), func.coalesce(func.sum(r.size), 0)).where(doomed)).one()
        if not dry_run:
            conn.execute(delete(r).where(doomed))
    return {"runs": len(old), "results": int(count), "bytes": int(size)}
