"""Read-side questions about the provenance store, for the CLI and the dashboard.

Every function takes an open ``Engine`` and returns plain data (dicts, lists, dataclasses); no
SQL lives outside this package. The store keeps times in UTC; times returned here are
timezone-aware ``datetime`` values in UTC, which callers show in whatever zone suits them.
"""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, delete, func, or_, select

from parsl_repro.errors import ParslError
from parsl_repro.monitoring import cache_notes
from parsl_repro.monitoring import models as m
from parsl_repro.task_states import CANCELLED, SUCCEEDED_STATES, TASK_STATES, States

MEMO_DONE = States.memo_done.name


class RunNotFound(ParslError):
    """A run reference (id, unique prefix or ``last``) matches no run, or several."""


class NothingMatches(ParslError):
    """A filter names something the run does not have: a task id, an app, a state."""


def _rows(result: Any) -> list[dict[str, Any]]:
    return [_row(row) for row in result]


def _row(row: Any) -> dict[str, Any]:
    return {k: _aware(v) for k, v in row._mapping.items()}


def _aware(value: Any) -> Any:
    """A stored (naive, UTC) time as an aware UTC datetime; anything else as it is."""
    if isinstance(value, datetime.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value


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
        detail = _row(run)
        counts = conn.execute(select(m.Task.task_status_name, func.count()).where(m.Task.run_id == run_id)
                              .group_by(m.Task.task_status_name))
        detail["task_states"] = {state or "unknown": n for state, n in counts}
        packages = conn.execute(select(m.Environment.packages)
                                .where(m.Environment.packages_digest == run.packages_digest)).scalar()
        detail["packages"] = [tuple(p) for p in json.loads(packages)] if packages else []
        detail["argv"] = json.loads(run.argv) if run.argv else []
    return detail


def list_tasks(engine: Engine, run_id: str, state: str | None = None, app: str | None = None) -> list[dict[str, Any]]:
    """The tasks of a run in id order, optionally only those in ``state`` or of ``app``. Raises
    ``NothingMatches`` for a state that does not exist or an app the run does not have."""
    if state is not None and state not in TASK_STATES:
        raise NothingMatches(f"There is no task state {state!r}; the states are: {', '.join(TASK_STATES)}")
    t = m.Task
    query = select(t.task_id, t.task_func_name, t.task_status_name, t.task_time_invoked, t.task_time_returned,
                   t.task_fail_count, t.executor, t.args_repr, t.error, t.task_hashsum, t.memo_source_run,
                   t.memo_source_task, t.cache_note).where(t.run_id == run_id).order_by(t.task_id)
    if state:
        query = query.where(t.task_status_name == state)
    if app:
        query = query.where(t.task_func_name == app)
    with engine.connect() as conn:
        rows = _rows(conn.execute(query))
        if not rows and app is not None and not conn.execute(
                select(t.task_id).where(t.run_id == run_id, t.task_func_name == app).limit(1)).first():
            raise NothingMatches(_no_app(conn, run_id, app))
        return rows


def task_story(engine: Engine, run_id: str, task_id: int) -> list[dict[str, Any]]:
    """Every state change of one task, in order, with its cause."""
    s = m.Status
    query = select(s.timestamp, s.try_id, s.previous_status_name, s.task_status_name, s.cause, s.detail) \
        .where(s.run_id == run_id, s.task_id == task_id).order_by(s.id)
    with engine.connect() as conn:
        return _rows(conn.execute(query))


def run_cwd(engine: Engine, run_id: str) -> str | None:
    """The directory the run was started in (relative paths of its tasks are relative to it)."""
    with engine.connect() as conn:
        return conn.execute(select(m.Workflow.cwd).where(m.Workflow.run_id == run_id)).scalar()


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
    """Why one task was or was not a memo hit, component by component.

    ``outcome`` is ``hit``, ``miss``, ``not-cached`` (the app is not cached, or the task's
    arguments could not be keyed) or ``first`` (nothing it could have reused). ``changed`` lists
    what differs from the task it is compared with; ``notes`` what the record says about the task
    itself (an argument keyed by its path only, an identical task still running, ...).
    """
    run_id: str
    task_id: int
    app: str
    outcome: str
    summary: str
    changed: list[str] = field(default_factory=list)
    compared_with: tuple[str, int] | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "task_id": self.task_id, "app": self.app, "outcome": self.outcome,
                "summary": self.summary, "changed": self.changed, "notes": self.notes,
                "compared_with": list(self.compared_with) if self.compared_with else None}


@dataclass(frozen=True)
class MemoSources:
    """Which earlier results a run's memo table started with (``workflow.memo_sources``)."""
    enabled: bool
    from_store: bool
    runs: frozenset[str]
    files: tuple[str, ...]
    began: datetime.datetime

    @classmethod
    def of(cls, recorded: str | None, began: datetime.datetime) -> MemoSources:
        if recorded is None:  # recorded before schema 4, when every earlier run was consulted by default
            return cls(True, True, frozenset(), (), began)
        data = json.loads(recorded)
        return cls(data.get("enabled", True), data.get("from_store", False), frozenset(data.get("runs", ())),
                   tuple(data.get("files", ())), began)

    def loaded(self, run_id: str, began: datetime.datetime) -> bool:
        """Whether this run could reuse results of ``run_id`` (begun at ``began``)."""
        return self.enabled and (run_id in self.runs or (self.from_store and began < self.began))

    @property
    def nothing(self) -> bool:
        return not (self.from_store or self.runs or self.files)

    def describe(self) -> str:
        if not self.enabled:
            return "app caching was off for this run (Config(app_cache=False))"
        if self.nothing:
            return ("this run loaded no earlier results: with neither checkpoint_files nor checkpoint_mode its memo "
                    "table started empty, as in Parsl (checkpoint_files=get_last_checkpoint() or "
                    "Config(reuse_from_store=True) reuse earlier runs)")
        if self.from_store:
            return "this run loaded the results of every earlier run in the store"
        named = ", ".join(sorted(r[:12] for r in self.runs)) or "none recorded in the store"
        files = f" and {len(self.files)} checkpoint file(s)" if self.files else ""
        return f"this run loaded only the results of the runs its checkpoints name ({named}){files}"


def why(engine: Engine, run_id: str, app: str | None = None, task_id: int | None = None) -> list[Explanation]:
    """Explain memo outcomes. By default: every cached task of the run that was not a hit, and
    hits that carry a note (an argument keyed by its path only). Raises ``NothingMatches`` when
    ``task_id`` or ``app`` is not in the run."""
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
        not_a_hit = or_(t.task_status_name.is_(None), t.task_status_name != MEMO_DONE, t.cache_note.is_not(None))
        query = query.where(t.task_memoize == "True", not_a_hit)
    with engine.connect() as conn:
        run = conn.execute(select(m.Workflow.packages_digest, m.Workflow.time_began, m.Workflow.memo_sources)
                           .where(m.Workflow.run_id == run_id)).one()
        sources = MemoSources.of(run.memo_sources, run.time_began)
        rows = conn.execute(query).all()
        if not rows and (task_id is not None or app is not None):
            raise NothingMatches(_no_such(conn, run_id, task_id, app))
        return [_explain(conn, row, run.packages_digest, sources) for row in rows]


def cached_task_count(engine: Engine, run_id: str) -> int:
    """How many tasks of the run belong to apps declared with ``cache=True``."""
    with engine.connect() as conn:
        return conn.execute(select(func.count()).where(m.Task.run_id == run_id, m.Task.task_memoize == "True")).scalar()


def _no_such(conn: Any, run_id: str, task_id: int | None, app: str | None) -> str:
    t = m.Task
    if task_id is not None:
        low, high = conn.execute(select(func.min(t.task_id), func.max(t.task_id)).where(t.run_id == run_id)).one()
        if low is None:
            return f"Run {run_id[:12]} has no task {task_id} (it has no tasks)"
        if not low <= task_id <= high:
            return f"Run {run_id[:12]} has no task {task_id} (it has tasks {low} to {high})"
        return f"Task {task_id} of run {run_id[:12]} is not of app {app!r}"
    return _no_app(conn, run_id, app)


def _no_app(conn: Any, run_id: str, app: str | None) -> str:
    t = m.Task
    apps = sorted(conn.execute(select(t.task_func_name).where(t.run_id == run_id).distinct()).scalars())
    return f"Run {run_id[:12]} has no app {app!r}; its apps are: {', '.join(apps) or 'none'}"


def _explain(conn: Any, row: Any, env_digest: str | None, sources: MemoSources) -> Explanation:
    name = row.qualname or row.task_func_name
    notes = cache_notes.split(row.cache_note)
    base = Explanation(row.run_id, row.task_id, name, "miss", "", notes=notes)
    if row.task_memoize != "True":
        base.outcome, base.summary = "not-cached", "the app is not declared with cache=True"
        return base
    if row.task_status_name == MEMO_DONE:
        base.outcome = "hit"
        base.summary = f"hit: reused the result of run {str(row.memo_source_run)[:12]} task {row.memo_source_task}"
        base.compared_with = (row.memo_source_run, row.memo_source_task)
        return base
    if row.task_hashsum is None:
        base.outcome = "not-cached"
        reasons = [n for n in notes if cache_notes.is_not_cached(n)]
        base.notes = [n for n in notes if n not in reasons]
        base.summary = reasons[0] if reasons else (
            "cancelled before its memo key was computed" if row.task_status_name == CANCELLED else
            "no memo key was computed (the task never became ready to run)")
        return base
    if row.memo_source_task is not None:  # an identical call of this run had failed: its failure was reused
        base.summary = (f"reused the failure of run {str(row.memo_source_run)[:12]} task {row.memo_source_task} "
                        f"(an identical call that had failed; within a run, failures are reused as in Parsl)")
        base.compared_with = (row.memo_source_run, row.memo_source_task)
        return base
    in_flight = [n for n in notes if cache_notes.is_in_flight(n)]
    if in_flight:
        base.summary = in_flight[0]
        base.notes = [n for n in notes if n not in in_flight]
        return base
    not_reused = [n for n in notes if cache_notes.is_not_reused(n)]
    base.notes = [n for n in notes if n not in not_reused]
    same = _same_key_earlier(conn, row)
    if same is not None:
        base.compared_with = (same.run_id, same.task_id)
        where = f"run {same.run_id[:12]} task {same.task_id}"
        if not_reused:
            base.changed.extend(not_reused)
            base.summary = f"miss against {where}: " + "; ".join(not_reused)
        elif not sources.loaded(same.run_id, same.time_began):
            base.summary = f"same memo key as {where}, but its results were not loaded: {sources.describe()}"
        elif same.task_status_name not in SUCCEEDED_STATES:
            base.summary = (f"same memo key as {where}, which ended {same.task_status_name}: only successful "
                            f"results are reused across runs")
        else:
            base.summary = (f"same memo key as {where}, but its result is no longer stored (dropped by "
                            f"`parsl-repro gc`, or it could not be serialized)")
        return base
    if sources.nothing or not sources.enabled:
        base.outcome = "first"
        base.summary = f"nothing to reuse: {sources.describe()}"
        return base
    mine = json.loads(row.memo_components or "{}")
    earlier = _nearest_earlier(conn, row, sources)
    if earlier is None:
        base.outcome = "first"
        base.summary = "first run of this app version: nothing to reuse"
        return base
    theirs = json.loads(earlier.memo_components or "{}")
    base.compared_with = (earlier.run_id, earlier.task_id)
    base.changed.extend(_component_differences(mine, theirs))
    if earlier.packages_digest and env_digest and earlier.packages_digest != env_digest:
        base.changed.append("environment: the installed packages differ (not part of the memo key)")
    base.summary = f"miss against run {earlier.run_id[:12]} task {earlier.task_id}: " + (
        "; ".join(base.changed) or "memo keys differ")
    return base


def _same_key_earlier(conn: Any, row: Any) -> Any:
    """The newest task of an earlier run with the same memo key, if any."""
    t, w = m.Task, m.Workflow
    return conn.execute(select(t.run_id, t.task_id, t.task_status_name, w.time_began)
                        .join(w, w.run_id == t.run_id)
                        .where(t.task_hashsum == row.task_hashsum, t.run_id != row.run_id,
                               t.task_time_invoked < row.task_time_invoked)
                        .order_by(w.time_began.desc(), t.task_id).limit(1)).first()


def _nearest_earlier(conn: Any, row: Any, sources: MemoSources, candidates: int = 200) -> Any:
    """The task of the same app (same module and qualname) in an earlier run whose results this
    run loaded, most like this one: among the most recent ``candidates`` with a memo key, the one
    differing in the fewest components."""
    t, a, w = m.Task, m.App, m.Workflow
    same_app = and_(a.qualname == row.qualname, a.module == row.module) if row.qualname else \
        t.task_func_name == row.task_func_name
    loaded = t.run_id.in_(sorted(sources.runs))
    if sources.from_store:
        loaded = or_(loaded, w.time_began < sources.began)
    query = select(t.run_id, t.task_id, t.task_hashsum, t.memo_components, w.packages_digest) \
        .join(a, a.app_digest == t.app_digest, isouter=True).join(w, w.run_id == t.run_id) \
        .where(same_app, t.task_hashsum.is_not(None), t.run_id != row.run_id, loaded) \
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


# --- gc -------------------------------------------------------------------------------------------
def gc_results(engine: Engine, *, keep_runs: int | None = None, older_than_days: float | None = None,
               dry_run: bool = False) -> dict[str, int]:
    """Drop stored results of old runs: those produced by runs outside the newest ``keep_runs``
    or begun more than ``older_than_days`` ago, unless a kept run reused them; and the recorded
    arguments only old runs used."""
    w, r, t, a = m.Workflow, m.Result, m.Task, m.Argument
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
            return {"runs": 0, "results": 0, "arguments": 0, "bytes": 0}
        reused = select(t.task_hashsum).where(t.run_id.in_(kept), t.task_hashsum.is_not(None))
        doomed = and_(r.run_id.in_(old), r.memo_key.not_in(reused))
        count, size = conn.execute(select(func.count(), func.coalesce(func.sum(r.size), 0)).where(doomed)).one()
        still_used = select(t.args_digest).where(t.run_id.in_(kept), t.args_digest.is_not(None))
        old_only = and_(a.digest.in_(select(t.args_digest).where(t.run_id.in_(old))), a.digest.not_in(still_used))
        arguments, argument_bytes = conn.execute(
            select(func.count(), func.coalesce(func.sum(a.size), 0)).where(old_only)).one()
        if not dry_run:
            conn.execute(delete(r).where(doomed))
            conn.execute(delete(a).where(old_only))
    return {"runs": len(old), "results": int(count), "arguments": int(arguments),
            "bytes": int(size) + int(argument_bytes)}
