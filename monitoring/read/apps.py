"""The apps of one run: per app its calls, tasks by state, failures, retries, memo hits, task
durations (statistics and a histogram, both computed in SQL), its slowest tasks, and every version
of its code that the run used (by app digest, with the recorded source).

A task's duration is from its submission (``task_time_invoked``) to its result
(``task_time_returned``): time waiting on dependencies and retries included, as Parsl records
it. SQLite computes it to the millisecond, so no histogram bin is narrower than that."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, case, func, literal, select

from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.queries import NothingMatches
from parsl_repro.monitoring.read.common import Page, display_outcome, require_run, rows
from parsl_repro.monitoring.read.sqltime import EpochMs, Floor
from parsl_repro.task_states import TASK_STATES, States

HISTOGRAM_BINS = 30
APP_LIMIT = 200
VERSION_LIMIT = 50
SLOWEST_LIMIT = 20
SOURCE_CHARS = 20_000
ARGS_CHARS = 200
RESOLUTION = 1e-3
"""The narrowest histogram bin, in seconds."""

FAILED = States.failed.name
MEMO_DONE = States.memo_done.name


def task_duration() -> Any:
    """SQL: a task's seconds from submission to result (NULL while either time is missing)."""
    t = m.Task
    return EpochMs(t.task_time_returned) - EpochMs(t.task_time_invoked)


# --- what the page gets -----------------------------------------------------------------------------
@dataclass
class Histogram:
    """Counts of durations in ``len(counts)`` equal bins from ``low`` of ``width`` seconds each
    (no bins: no finished task)."""

    low: float = 0.0
    width: float = 0.0
    counts: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts)

    def edges(self) -> list[float]:
        """The bins' left edges, then the last bin's right edge."""
        return [self.low + i * self.width for i in range(len(self.counts) + 1)]

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0 to 1) estimated from the bins (linear within a bin), or None when
        empty. Exact to within one bin's width."""
        total = self.total
        if not total:
            return None
        wanted, seen = q * total, 0
        for i, n in enumerate(self.counts):
            if n and seen + n >= wanted:
                return self.low + (i + (wanted - seen) / n) * self.width
            seen += n
        return self.low + len(self.counts) * self.width


@dataclass
class AppSummary:
    """One app's figures in one run. Durations are in seconds, over its ``finished`` tasks (those
    with both a submission and a return time); None when it has none."""

    name: str
    kind: str | None
    calls: int
    states: dict[str, int]
    failed_tries: int
    retries: int
    finished: int
    min: float | None
    mean: float | None
    max: float | None
    total_time: float | None
    versions: int
    histogram: Histogram

    @property
    def failures(self) -> int:
        return self.states.get(FAILED, 0)

    @property
    def dep_failures(self) -> int:
        return self.states.get(States.dep_fail.name, 0)

    @property
    def memo_hits(self) -> int:
        return self.states.get(MEMO_DONE, 0)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile of its durations, estimated from the histogram (SQL has no portable
        percentile) and kept between the shortest and the longest."""
        value = self.histogram.quantile(q)
        if value is None or self.min is None or self.max is None:
            return value
        return min(max(value, self.min), self.max)

    @property
    def median(self) -> float | None:
        return self.quantile(0.5)


@dataclass
class AppVersion:
    """One version of an app's code used by the run: its digest, the recorded identity and source
    (cut at ``SOURCE_CHARS``), and how many of the run's tasks ran it."""

    app: str
    app_digest: str
    tasks: int
    first_task: int
    qualname: str | None
    module: str | None
    kind: str | None
    source: str | None
    source_cut: bool


@dataclass
class RunApps:
    """The apps page's data: the run's apps (the ``APP_LIMIT`` most called of ``apps_total``), the
    versions of their code, and when ``focus`` names one app, its slowest tasks. ``live``: the run
    is still going; ``outcome``: how it ended (``running``, ``completed``, ``killed``, ...)."""

    run_id: str
    apps: list[AppSummary]
    apps_total: int
    versions: list[AppVersion]
    versions_total: int
    focus: str | None = None
    slowest: Page | None = None
    live: bool = False
    outcome: str | None = None

    @property
    def unidentified(self) -> list[str]:
        """Apps with no recorded code identity (only apps declared with ``cache=True`` have one)."""
        return [app.name for app in self.apps if not app.versions]


def run_apps(engine: Engine, run_id: str, app: str | None = None, *, bins: int = HISTOGRAM_BINS) -> RunApps:
    """Every app of the run with its figures and code versions; with ``app``, that app only, and
    its ``SLOWEST_LIMIT`` slowest tasks. Raises ``RunNotFound``, or ``NothingMatches`` naming the
    run's apps when it has no app ``app``."""
    t = m.Task
    in_run = [t.run_id == run_id] + ([t.task_func_name == app] if app is not None else [])
    with engine.connect() as conn:
        run = require_run(conn, run_id)
        summaries, apps_total = _summaries(conn, in_run, bins)
        if app is not None and not summaries:
            names = conn.execute(select(t.task_func_name).where(t.run_id == run_id).distinct()
                                 .order_by(t.task_func_name).limit(APP_LIMIT)).scalars().all()
            raise NothingMatches(f"Run {run_id[:12]} has no app {app!r}; its apps are: "
                                 f"{', '.join(names) or 'none (it has no tasks)'}")
        _add_histograms(conn, in_run, summaries)
        versions, versions_total = _versions(conn, in_run)
        slowest = _slowest(conn, in_run) if app is not None else None
    outcome, live = display_outcome(run.outcome, run.host, run.pid, run.time_completed)
    return RunApps(run_id, summaries, apps_total, versions, versions_total, app, slowest, live, outcome)


def _summaries(conn: Any, in_run: list[Any], bins: int) -> tuple[list[AppSummary], int]:
    """One pass over the run's tasks, each task's duration computed once (a materialized CTE:
    otherwise SQLite computes it again for every aggregate)."""
    t = m.Task
    retried = case((and_(t.task_status_name == FAILED, t.task_fail_count > 0), t.task_fail_count - 1),
                   else_=func.coalesce(t.task_fail_count, 0))
    tasks = (select(t.task_func_name.label("name"), t.app_kind.label("kind"), t.task_status_name.label("state"),
                    t.task_fail_count.label("failed_tries"), retried.label("retries"), t.app_digest,
                    task_duration().label("duration"))
             .where(*in_run).cte("app_tasks")
             .prefix_with("MATERIALIZED", dialect="sqlite").prefix_with("MATERIALIZED", dialect="postgresql"))
    d = tasks.c.duration
    calls = func.count().label("calls")
    per_state = [func.sum(case((tasks.c.state == state, 1), else_=0)).label(f"state_{state}")
                 for state in TASK_STATES]
    query = (select(tasks.c.name, func.max(tasks.c.kind).label("kind"), calls,
                    func.coalesce(func.sum(tasks.c.failed_tries), 0).label("failed_tries"),
                    func.coalesce(func.sum(tasks.c.retries), 0).label("retries"),
                    func.count(d).label("finished"), func.min(d).label("min"), func.max(d).label("max"),
                    func.sum(d).label("total_time"), func.count(tasks.c.app_digest.distinct()).label("versions"),
                    func.count().over().label("apps_total"), *per_state)
             .group_by(tasks.c.name).order_by(calls.desc(), tasks.c.name).limit(APP_LIMIT))
    found, apps_total = [], 0
    for row in rows(conn.execute(query)):
        apps_total = row["apps_total"]
        low, high, total = (None if row[key] is None else float(row[key]) for key in ("min", "max", "total_time"))
        states = {state: int(row[f"state_{state}"]) for state in TASK_STATES if row[f"state_{state}"]}
        unknown = row["calls"] - sum(states.values())
        if unknown:
            states["unknown"] = unknown
        found.append(AppSummary(row["name"], row["kind"], row["calls"], states, int(row["failed_tries"]),
                                int(row["retries"]), row["finished"], low,
                                total / row["finished"] if row["finished"] and total is not None else None, high,
                                total, row["versions"], empty_histogram(low, high, bins)))
    return found, apps_total


def _add_histograms(conn: Any, in_run: list[Any], summaries: list[AppSummary]) -> None:
    """One GROUP BY (app, bin) over the run's finished tasks, each app binned between its own
    shortest and longest duration."""
    t = m.Task
    spread = {s.name: s for s in summaries if s.histogram.counts}
    if not spread:
        return
    low = case({name: literal(s.histogram.low) for name, s in spread.items()}, value=t.task_func_name)
    scale = case({name: literal(1.0 / s.histogram.width) for name, s in spread.items()}, value=t.task_func_name)
    # a millionth of a bin more, so that a duration on an edge lands above it despite rounding
    index = Floor((task_duration() - low) * scale + 1e-6).label("bin")
    query = (select(t.task_func_name, index, func.count())
             .where(*in_run, t.task_func_name.in_(list(spread)), t.task_time_invoked.is_not(None),
                    t.task_time_returned.is_not(None))
             .group_by(t.task_func_name, index))
    for name, position, n in conn.execute(query):
        counts = spread[name].histogram.counts
        counts[min(max(int(position or 0), 0), len(counts) - 1)] += n  # the longest lands on the last right edge


def empty_histogram(low: float | None, high: float | None, bins: int) -> Histogram:
    """Bins from ``low`` to ``high``: ``bins`` of them, or fewer of ``RESOLUTION`` seconds each
    when the spread is narrower (durations are only exact to the millisecond in SQLite)."""
    if low is None or high is None:
        return Histogram()
    span = max(high - low, 0.0)
    if span < bins * RESOLUTION:
        return Histogram(low, RESOLUTION, [0] * (int(span / RESOLUTION + 1e-6) + 1))
    return Histogram(low, span / bins, [0] * bins)


def _versions(conn: Any, in_run: list[Any]) -> tuple[list[AppVersion], int]:
    t, a = m.Task, m.App
    used = (select(t.task_func_name.label("app"), t.app_digest, func.count().label("tasks"),
                   func.min(t.task_id).label("first_task"))
            .where(*in_run, t.app_digest.is_not(None)).group_by(t.task_func_name, t.app_digest).subquery())
    # the number of versions comes with the first ones (a window over the groups), not by a second scan
    query = (select(used, a.qualname, a.module, a.kind, func.substr(a.source, 1, SOURCE_CHARS + 1).label("source"),
                    func.count().over().label("versions_total"))
             .join(a, a.app_digest == used.c.app_digest, isouter=True)
             .order_by(used.c.app, used.c.first_task).limit(VERSION_LIMIT))
    versions, total = [], 0
    for row in rows(conn.execute(query)):
        total = row["versions_total"]
        source = row["source"]
        cut = source is not None and len(source) > SOURCE_CHARS
        versions.append(AppVersion(row["app"], row["app_digest"], row["tasks"], row["first_task"], row["qualname"],
                                   row["module"], row["kind"], source[:SOURCE_CHARS] if cut else source, cut))
    return versions, total


def _slowest(conn: Any, in_run: list[Any]) -> Page:
    t = m.Task
    duration = task_duration()
    finished = [*in_run, duration.is_not(None)]
    total = conn.execute(select(func.count()).where(*finished)).scalar_one()
    query = (select(t.task_id, t.task_status_name, t.task_time_invoked, t.task_fail_count,
                    func.substr(t.args_repr, 1, ARGS_CHARS).label("args"), duration.label("duration"))
             .where(*finished).order_by(duration.desc(), t.task_id).limit(SLOWEST_LIMIT))
    found = rows(conn.execute(query))
    for row in found:
        row["duration"] = float(row["duration"])
    return Page(found, total, SLOWEST_LIMIT)
