"""Two runs side by side, for the Compare page: outcome, duration, tasks by state, per-app calls,
durations, failures and memo hits, and what differs in their environment (Python, platform,
packages) and code (app digests per app name, script sha256, git commit).

Per-app figures are aggregated in SQL (GROUP BY app) and bounded; the package lists are the runs'
``environment`` rows, one JSON list each."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, case, func, select

from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.read.common import Page, rows
from parsl_repro.monitoring.read.runs import run_header
from parsl_repro.monitoring.read.sqltime import Epoch

CHOICE_LIMIT = 500
APP_LIMIT = 500
DIGEST_LIMIT = 2000
FAILED_STATES = ("failed", "dep_fail")
MEMO_HIT = "memo_done"


@dataclass
class RunSide:
    """One run's share of a comparison."""

    run: dict[str, Any]  # run_header: outcome, duration, states, tasks, memo_hits, and the run's record
    apps: dict[str, dict[str, Any]]  # app -> calls, failed, memo_hits, returned, total_seconds, mean_seconds
    apps_left_out: int
    digests: dict[str, list[str]]  # app -> its app digests in this run
    packages: dict[str, str] | None  # name -> version; None when no package list was recorded


@dataclass
class Difference:
    """One line of a side-by-side table: a label, the two values and B minus A when numeric."""

    label: str
    a: Any
    b: Any

    @property
    def delta(self) -> float | None:
        if isinstance(self.a, int | float) and isinstance(self.b, int | float) and not isinstance(self.a, bool):
            return self.b - self.a
        return None

    @property
    def same(self) -> bool:
        return self.a == self.b


@dataclass
class Comparison:
    """Run A against run B: every difference the Compare page shows."""

    a: RunSide
    b: RunSide
    states: list[Difference] = field(default_factory=list)
    apps: list[dict[str, Any]] = field(default_factory=list)  # app, a_*, b_* of every per-app figure
    environment: list[Difference] = field(default_factory=list)
    packages_added: list[tuple[str, str]] = field(default_factory=list)  # in B, not in A
    packages_removed: list[tuple[str, str]] = field(default_factory=list)  # in A, not in B
    packages_changed: list[tuple[str, str, str]] = field(default_factory=list)  # name, A's version, B's
    code: list[dict[str, Any]] = field(default_factory=list)  # app, a digests, b digests, what differs
    provenance: list[Difference] = field(default_factory=list)  # script sha256, git commit, dirty flag

    @property
    def packages_known(self) -> bool:
        return self.a.packages is not None and self.b.packages is not None


def run_choices(engine: Engine, limit: int = CHOICE_LIMIT) -> Page:
    """The newest ``limit`` runs (id, workflow name, script, start, outcome) to choose from."""
    w = m.Workflow
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(w)).scalar_one()
        found = rows(conn.execute(select(w.run_id, w.workflow_name, w.script_path, w.time_began, w.outcome)
                                  .order_by(w.time_began.desc()).limit(limit)))
    return Page(found, total, limit)


def compare(engine: Engine, a: str, b: str) -> Comparison:
    """Run ``a`` against run ``b`` (B minus A wherever there is a difference). Raises
    ``RunNotFound`` naming the first id that is not in the store."""
    left, right = _side(engine, a), _side(engine, b)
    found = Comparison(left, right)
    states = sorted(set(left.run["states"]) | set(right.run["states"]))
    found.states = [Difference(state, left.run["states"].get(state, 0), right.run["states"].get(state, 0))
                    for state in states]
    for app in sorted(set(left.apps) | set(right.apps)):
        row: dict[str, Any] = {"app": app, "in": "both" if app in left.apps and app in right.apps
                               else ("A only" if app in left.apps else "B only")}
        for side, name in ((left, "a"), (right, "b")):
            for key, value in side.apps.get(app, {}).items():
                row[f"{name}_{key}"] = value
        found.apps.append(row)
    found.environment = [Difference(label, left.run.get(key), right.run.get(key)) for key, label in
                         (("python_version", "Python"), ("platform", "Platform"),
                          ("parsl_repro_version", "parsl_repro"), ("host", "Host"), ("user", "User"),
                          ("packages_digest", "Packages digest"))]
    if found.packages_known:
        mine, theirs = left.packages or {}, right.packages or {}
        found.packages_added = sorted((name, theirs[name]) for name in set(theirs) - set(mine))
        found.packages_removed = sorted((name, mine[name]) for name in set(mine) - set(theirs))
        found.packages_changed = sorted((name, mine[name], theirs[name]) for name in set(mine) & set(theirs)
                                        if mine[name] != theirs[name])
    found.code = _code_differences(left, right)
    found.provenance = [Difference(label, left.run.get(key), right.run.get(key)) for key, label in
                        (("script_path", "Script"), ("script_sha256", "Script sha256"),
                         ("git_repository", "Git repository"), ("git_commit", "Git commit"),
                         ("git_dirty", "Uncommitted changes"), ("git_diff_sha256", "Git diff sha256"))]
    return found


def _side(engine: Engine, run_id: str) -> RunSide:
    t, e = m.Task, m.Environment
    run = run_header(engine, run_id)
    seconds = Epoch(t.task_time_returned) - Epoch(t.task_time_invoked)
    returned = t.task_time_returned.isnot(None) & t.task_time_invoked.isnot(None)
    with engine.connect() as conn:
        per_app = (select(t.task_func_name.label("app"), func.count().label("calls"),
                          func.sum(case((t.task_status_name.in_(FAILED_STATES), 1), else_=0)).label("failed"),
                          func.sum(case((t.task_status_name == MEMO_HIT, 1), else_=0)).label("memo_hits"),
                          func.sum(case((returned, 1), else_=0)).label("returned"),
                          func.sum(case((returned, seconds), else_=None)).label("total_seconds"))
                   .where(t.run_id == run_id).group_by(t.task_func_name))
        found = rows(conn.execute(per_app.order_by(func.count().desc(), t.task_func_name).limit(APP_LIMIT + 1)))
        total_apps = len(found) if len(found) <= APP_LIMIT else conn.execute(
            select(func.count(func.distinct(t.task_func_name))).where(t.run_id == run_id)).scalar_one()
        apps = {}
        for row in found[:APP_LIMIT]:
            total = row["total_seconds"]
            row["total_seconds"] = None if total is None else float(total)
            row["mean_seconds"] = None if total is None or not row["returned"] else float(total) / row["returned"]
            apps[row.pop("app")] = row
        digests: dict[str, list[str]] = {}
        for app, digest in conn.execute(
                select(t.task_func_name, t.app_digest).where(t.run_id == run_id, t.app_digest.isnot(None))
                .group_by(t.task_func_name, t.app_digest).order_by(t.task_func_name, t.app_digest)
                .limit(DIGEST_LIMIT)):
            digests.setdefault(app, []).append(digest)
        packages = None
        if run.get("packages_digest"):
            recorded = conn.execute(select(e.packages).where(e.packages_digest == run["packages_digest"])).scalar()
            packages = _packages(recorded)
    return RunSide(run, apps, max(0, total_apps - len(apps)), digests, packages)


def _packages(recorded: str | None) -> dict[str, str] | None:
    """``[[name, version], ...]`` as a dict; None when missing or unreadable."""
    if not recorded:
        return None
    try:
        return {str(name): str(version) for name, version in json.loads(recorded)}
    except (ValueError, TypeError):
        return None


def _code_differences(left: RunSide, right: RunSide) -> list[dict[str, Any]]:
    """Per app name, what differs in its code between the runs: other app digests, or the app
    being in one run only."""
    found = []
    for app in sorted(set(left.apps) | set(right.apps)):
        mine, theirs = left.digests.get(app, []), right.digests.get(app, [])
        if app not in right.apps:
            what = "only in A"
        elif app not in left.apps:
            what = "only in B"
        elif mine != theirs and (mine or theirs):
            what = "different code (app digests differ)" if mine and theirs else "digest recorded in one run only"
        else:
            continue
        found.append({"app": app, "a_digests": mine, "b_digests": theirs, "difference": what})
    return found
