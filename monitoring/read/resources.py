"""A run's resources, for the Resources page and the report: CPU and memory over time (all tasks,
or split per node or per block) from the ``resource`` samples, the heaviest tries, the nodes the
executors saw, each block's life cycle from the provider's job states, and worker efficiency
(busy workers over available workers).

Every series is a time-weighted mean over the bins of one run-wide grid (at most ``BINS``),
computed in SQL; every list is bounded. The cost is one pass over the run's rows per part:

    samples --LEAD per try--> spans [sample, next sample) with RSS and CPU rate
            --GROUP BY start bin, end bin--> CPUs in use and RSS per bin, in one statement
    samples --GROUP BY try--> the heaviest tries by peak RSS and by CPU time
    tries   --spans [running, returned)--> the same GROUP BY --> busy workers per bin
    nodes   --first and latest record per uid--> the same GROUP BY --> workers, CPUs, memory offered

At 100,000 tasks (200,000 samples, 150,000 tries) on SQLite the usage pass takes about 0.5 s
(sorting the samples per try for LEAD, then by bin), the tries' pass and the heaviest tries
about 0.2 s each; a count of the samples reads the run/task index alone.
"""
from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, case, func, literal, select, union_all

from parsl_repro.jobs.states import TERMINAL_STATES
from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.read.apps import Histogram
from parsl_repro.monitoring.read.common import LIVE, Page, aware, display_outcome, require_run, rows
from parsl_repro.monitoring.read.sqltime import Epoch, Floor

BINS = 150
"""At most this many time bins per series."""
TOP_TASKS = 15
"""Rows in each table of the heaviest tries."""
SERIES = 12
"""At most this many nodes (or blocks) get a series of their own; the rest are summed as one."""
DISTRIBUTION_BINS = 40
"""Bins of each per-try distribution (CPU time, peak and mean memory)."""
DISTRIBUTIONS = ("cpu_time", "peak_rss", "mean_rss")
NODE_LIMIT = 100
"""Nodes listed (the browser builds a table cell in about a millisecond at this page's size); what
the nodes offered is summed over all of them."""
BLOCK_EVENT_LIMIT = 5000
INTERNAL_EXECUTOR = "_parsl_internal"  # join apps' bookkeeping: it runs on no worker
OTHERS = "(others)"
SPLITS = ("node", "block")
PARTS = frozenset({"usage", "top", "workers"})
"""What ``resources`` can read besides the run's header and nodes (each a pass over many rows)."""
TERMINAL = frozenset(state.name for state in TERMINAL_STATES)
"""Job states a block never leaves."""


# --- what the page gets ----------------------------------------------------------------------------
@dataclass
class Grid:
    """The run-wide time bins: ``count`` bins of ``width`` seconds from ``start``."""

    start: datetime.datetime
    width: float
    count: int

    @property
    def span(self) -> float:
        """Seconds from the grid's start to its end."""
        return self.count * self.width

    def centres(self) -> list[datetime.datetime]:
        """The middle of each bin, for plotting."""
        return [self.start + datetime.timedelta(seconds=(i + 0.5) * self.width) for i in range(self.count)]

    def index(self, seconds: float) -> int:
        """The bin holding ``seconds`` after the start, clamped to the grid (as SQL computes it:
        the whole part of seconds / width)."""
        return self.clamp(math.floor(seconds / self.width))

    def clamp(self, index: Any) -> int:
        """A bin number (computed in SQL) clamped to the grid: records a little outside the run's
        span, from clock skew between hosts, count in its first or last bin."""
        return min(self.count - 1, max(0, int(index)))


@dataclass
class Usage:
    """One series: mean CPUs in use and mean resident memory (bytes) in each bin."""

    label: str
    cpu: list[float]
    rss: list[float]


@dataclass
class BlockLife:
    """One block's job states in order: ``segments`` are (status, start, end), end None for the
    state the block was in when the record ends."""

    executor: str
    block_id: str
    job_id: str | None
    segments: list[tuple[str, datetime.datetime, datetime.datetime | None]]
    provider: str | None = None  # "SlurmProvider slurm": the provider's class and label
    host: str | None = None  # where its scheduler commands ran (a channel's host)
    script_sha256: str | None = None  # of the submit script the job ran
    message: str | None = None  # the provider's last word on it (why it failed, say)

    @property
    def last(self) -> str:
        """The block's latest state."""
        return self.segments[-1][0] if self.segments else ""


@dataclass
class Capacity:
    """What the nodes that were up offered in each bin (time-weighted): workers, CPUs, memory."""

    workers: list[float]
    cpus: list[float]
    memory: list[float]


@dataclass
class Resources:
    """Everything the Resources page shows of one run."""

    run_id: str
    outcome: str
    live: bool
    time_began: datetime.datetime | None
    time_completed: datetime.datetime | None
    executors: list[str]  # labels the tries ran on (found only for a run without samples)
    executor_kinds: list[str]  # executor classes in the recorded configuration
    monitoring: bool | None  # whether the configuration had a MonitoringHub (None: not recorded)
    interval: float | None  # the sampling interval recorded with the samples
    samples: int
    grid: Grid | None = None
    total: Usage | None = None
    top_rss: list[dict[str, Any]] = field(default_factory=list)
    top_cpu: list[dict[str, Any]] = field(default_factory=list)
    # how the tries spread: "cpu_time" (s), "peak_rss" and "mean_rss" (bytes), one histogram each
    distributions: dict[str, Histogram] = field(default_factory=dict)
    nodes: Page = field(default_factory=Page)
    blocks: list[BlockLife] = field(default_factory=list)
    blocks_total: int = 0
    busy: list[float] = field(default_factory=list)  # mean tries running in each bin
    unreturned: int = 0  # tries with no returned time: in flight, or cut off by a kill
    unreturned_running: int = 0  # of those, the ones recorded as running (busy to the end of the record)
    capacity: Capacity | None = None  # None: no node was recorded
    split: dict[str, Split] = field(default_factory=dict)  # "node"/"block" series, when asked for

    @property
    def has_samples(self) -> bool:
        return self.samples > 0

    @property
    def efficiency(self) -> float | None:
        """Busy worker-seconds over available worker-seconds; None without nodes (or without the
        ``workers`` part)."""
        if self.capacity is None or not self.busy:
            return None
        offered = sum(self.capacity.workers)
        if offered <= 0:
            return None
        return min(1.0, sum(min(b, a) for b, a in zip(self.busy, self.capacity.workers, strict=True)) / offered)

    def why_no_samples(self) -> str:
        """Why this run has no resource samples, in the user's terms."""
        head = ("This run has no resource samples: they come from the workers of a HighThroughputExecutor "
                "with MonitoringHub(resource_monitoring_interval=...) in the configuration")
        kinds = set(self.executor_kinds)
        if kinds and kinds <= {"ThreadPoolExecutor"}:
            return (f"{head}; this run used the threads executor ({', '.join(self.executors) or 'threads'}): "
                    f"its tasks run as threads of the submitting process, which is not sampled.")
        if self.monitoring is False:
            return f"{head}; this run's configuration had no MonitoringHub (monitoring=None)."
        if "ThreadPoolExecutor" in kinds:
            return f"{head}; tasks that ran on this run's threads executor are not sampled."
        if not self.executors:
            return f"{head}; no task of this run was launched on an executor."
        return (f"{head}; none arrived for this run: its tasks may have ended before the first sample was "
                f"due, or the workers could not report.")


@dataclass
class Split:
    """Usage per node or per block: the busiest ``SERIES`` each with a series, the rest summed."""

    by: str
    series: list[Usage]
    left_out: int  # how many nodes or blocks are summed in OTHERS


@dataclass
class RunState:
    """What a page needs of a run before it reads the run's parts."""

    workflow_name: str | None
    outcome: str  # as shown: see common.display_outcome
    live: bool

    @property
    def ended(self) -> bool:
        """Whether the run's end is known (completed, failed, killed): not live here, and not
        running on another host."""
        return self.outcome != LIVE


def run_state(engine: Engine, run_id: str) -> RunState:
    """The run's name, outcome and liveness from its row alone (no count of its tasks). Raises
    ``RunNotFound``."""
    with engine.connect() as conn:
        run = require_run(conn, run_id)
    outcome, live = display_outcome(run.outcome, run.host, run.pid, run.time_completed)
    return RunState(run.workflow_name, outcome, live)


def resources(engine: Engine, run_id: str, *, parts: frozenset[str] = PARTS, split: tuple[str, ...] = (),
              bins: int = BINS, top: int = TOP_TASKS) -> Resources:
    """The resources of run ``run_id`` over at most ``bins`` time bins, with the run's nodes
    always and the ``parts`` asked for (each a pass over the run's samples or tries):

    - ``usage``: CPU and memory of all tasks (and per ``"node"``/``"block"`` for those in
      ``split``, a pass more each);
    - ``top``: the ``top`` heaviest tries by peak RSS and by CPU time;
    - ``workers``: busy workers, tries that never returned, and the blocks' life cycles.

    Raises ``RunNotFound``."""
    y = m.Try
    with engine.connect() as conn:
        run = require_run(conn, run_id)
        outcome, live = display_outcome(run.outcome, run.host, run.pid, run.time_completed)
        samples, interval = _sampling(conn, run_id)
        executors = [] if samples else [label for (label,) in conn.execute(  # only to say why there are none
            select(y.task_executor).where(y.run_id == run_id).group_by(y.task_executor).order_by(y.task_executor))
            if label != INTERNAL_EXECUTOR]
        data = Resources(run_id=run_id, outcome=outcome, live=live, time_began=aware(run.time_began),
                         time_completed=aware(run.time_completed), executors=executors,
                         executor_kinds=_executor_kinds(run.config_summary),
                         monitoring=_has_monitoring(run.config_summary), interval=interval, samples=samples)
        data.grid = grid = _grid(conn, run, live, bins)
        data.nodes = _nodes(conn, run_id)
        if "workers" in parts:
            data.blocks, data.blocks_total = _blocks(conn, run_id)
        if grid is None:
            return data
        if samples and "usage" in parts:
            data.total = _usage(conn, run_id, grid, None, [])[0]
            for by in split:
                data.split[by] = _split(conn, run_id, grid, by)
        if samples and "top" in parts:
            data.top_rss, data.top_cpu, data.distributions = _top(conn, run_id, top, DISTRIBUTION_BINS)
        if "workers" in parts:
            data.busy = _busy(conn, run_id, grid)
            data.unreturned, data.unreturned_running = conn.execute(
                select(func.count(), func.count(y.task_try_time_running))
                .where(y.run_id == run_id, y.task_try_time_returned.is_(None),
                       y.task_executor != INTERNAL_EXECUTOR)).one()
        data.capacity = _capacity(conn, run_id, grid)  # the usage and the efficiency figures show it
    return data


def split_usage(engine: Engine, run_id: str, by: str, *, bins: int = BINS) -> tuple[Grid | None, Split | None]:
    """The run's CPU and memory per ``by`` (``"node"`` or ``"block"``), on the same grid as
    ``resources``; (grid, None) when the run has no samples. Raises ``RunNotFound``."""
    with engine.connect() as conn:
        run = require_run(conn, run_id)
        _, live = display_outcome(run.outcome, run.host, run.pid, run.time_completed)
        grid = _grid(conn, run, live, bins)
        if grid is None or not _sampling(conn, run_id)[0]:
            return grid, None
        return grid, _split(conn, run_id, grid, by)


def _sampling(conn: Any, run_id: str) -> tuple[int, float | None]:
    """How many samples the run has (counted in the run/task index alone) and its sampling
    interval (one MonitoringHub option per run: read from the first sample that has one)."""
    r = m.Resource
    samples = conn.execute(select(func.count()).select_from(r).where(r.run_id == run_id)).scalar_one()
    if not samples:
        return 0, None
    interval = conn.execute(select(r.resource_monitoring_interval)
                            .where(r.run_id == run_id, r.resource_monitoring_interval.isnot(None)).limit(1)).scalar()
    return samples, interval


def _split(conn: Any, run_id: str, grid: Grid, by: str) -> Split:
    """CPU and memory per node or block (``by``) of the ``SERIES`` that ran the most tries."""
    if by not in SPLITS:
        raise ValueError(f"usage is split by node or block, not {by!r}")
    column = m.Try.hostname if by == "node" else m.Try.block_id
    names, left_out = _busiest(conn, run_id, column)
    series = _usage(conn, run_id, grid, column, names)
    named = {usage.label: usage for usage in series}
    ordered = [named[name] for name in names if name in named]
    if OTHERS in named:
        ordered.append(named[OTHERS])
    for usage in ordered:
        usage.label = f"{by} {usage.label}" if usage.label != OTHERS else f"other {by}s"
    return Split(by, ordered, left_out)


def _grid(conn: Any, run: Any, live: bool, bins: int) -> Grid | None:
    """One grid for every figure: ``bins`` bins from the run's start to its end (or to its newest
    record, or to now while it is live)."""
    r, y, b = m.Resource, m.Try, m.Block
    start = aware(run.time_began)
    if start is None:
        return None
    end = aware(run.time_completed)
    if end is None:
        latest = conn.execute(select(func.max(y.task_try_time_returned), func.max(y.task_try_time_running),
                                     func.max(y.task_try_time_launched)).where(y.run_id == run.run_id)).one()
        block = conn.execute(select(func.max(b.timestamp)).where(b.run_id == run.run_id)).scalar()
        last_sample = conn.execute(select(func.max(r.timestamp)).where(r.run_id == run.run_id)).scalar()
        seen = [aware(value) for value in (*latest, last_sample, block) if value is not None]
        if live:
            seen.append(datetime.datetime.now(datetime.UTC))
        end = max(seen, default=start)
    span = max((end - start).total_seconds(), 1e-3)
    width = span / bins
    return Grid(start, width, int(span // width) + 1)


def _usage(conn: Any, run_id: str, grid: Grid, column: Any, names: list[str]) -> list[Usage]:
    """Mean CPUs in use and mean RSS per bin, for all tasks (``column`` None) or per value of
    ``column`` (a try's host or block) among ``names``, the rest summed as ``OTHERS``.

    A sample holds from its time to the try's next sample (the last one for a sampling interval):
    its RSS for that span, and the growth of user+system time to the next sample, spread evenly
    over the span, as its CPU use. So an HTEX worker's process times, which include the tasks it
    ran before, count only while they grow. The last sample of a try holds for its sampling
    interval (a bin's width if it has none)."""
    r, y = m.Resource, m.Try
    t0 = grid.start.timestamp()
    columns = [r.task_id, r.try_id, (Epoch(r.timestamp) - t0).label("s"),
               (func.coalesce(r.psutil_process_time_user, 0.0)
                + func.coalesce(r.psutil_process_time_system, 0.0)).label("cpu_time"),
               func.coalesce(r.psutil_process_memory_resident, 0.0).label("rss"),
               case((r.resource_monitoring_interval > 0, r.resource_monitoring_interval), else_=grid.width)
               .label("sample_interval")]
    source: Any = r
    groups: tuple[str, ...] = ()
    if column is not None:
        # the series' number, not its name: an integer is sorted and grouped faster (~10% of the pass)
        series = {name: number for number, name in enumerate(names, start=1)}
        columns.append((case(series, value=column, else_=0) if series else literal(0)).label("series"))
        source = r.__table__.outerjoin(y.__table__, and_(y.run_id == r.run_id, y.task_id == r.task_id,
                                                         y.try_id == r.try_id))
        groups = ("series",)
    # each level computed once per row (OFFSET 0: see _spread)
    sampled = select(*columns).select_from(source).where(r.run_id == run_id).offset(0).subquery()
    # samples of one try taken at the same microsecond (never seen) go in a fixed order by their values:
    # ordering by the sample's id instead would carry one more column through the sort (~15% slower)
    order = {"partition_by": (sampled.c.task_id, sampled.c.try_id),
             "order_by": (sampled.c.s, sampled.c.cpu_time, sampled.c.rss)}
    paired = select(sampled.c.s, sampled.c.cpu_time, sampled.c.rss, sampled.c.sample_interval,
                    *[sampled.c[g] for g in groups],
                    func.lead(sampled.c.s).over(**order).label("next_s"),
                    func.lead(sampled.c.cpu_time).over(**order).label("next_cpu_time")).offset(0).subquery()
    p = paired.c
    spans = select(p.s, func.coalesce(p.next_s, p.s + p.sample_interval).label("e"), p.rss,
                   case((p.next_s > p.s, (p.next_cpu_time - p.cpu_time) / (p.next_s - p.s)), else_=0.0).label("cpu"),
                   *[p[g] for g in groups])
    spread = _spread(conn, grid, spans, ("rss", "cpu"), groups)
    found = []
    for key, values in spread.items():
        label = "all tasks" if not key else OTHERS if not key[0] else str(names[int(key[0]) - 1])
        found.append(Usage(label, [round(max(0.0, v), 4) for v in values["cpu"]],
                           [round(max(0.0, v)) for v in values["rss"]]))
    if not found and column is None:
        found.append(Usage("all tasks", [0.0] * grid.count, [0.0] * grid.count))
    return found


def _spread(conn: Any, grid: Grid, spans: Any, weights: tuple[str, ...],
            groups: tuple[str, ...] = ()) -> dict[tuple[Any, ...], dict[str, list[float]]]:
    """Per group, the time-weighted mean in each bin of each weight column of ``spans`` (a
    select with columns ``s`` and ``e``: seconds from the grid's start).

    One GROUP BY (start bin, end bin) sums each weight w, w x start and w x end; from those,
    a span inside one bin adds w x its length there, and a longer one adds its first and last
    partial bins and w to every whole bin in between (a running sum). At most bins^2 / 2 rows per
    group come back, however many spans there are."""
    width, limit = grid.width, grid.span
    # OFFSET 0 keeps each level a subquery of its own, computed once per row: flattened, every
    # reference to s and e would parse the stored times again
    given = spans.offset(0).subquery()
    # clamped to the grid, and never ending before it starts (clock skew between hosts)
    start = case((given.c.s < 0, 0.0), (given.c.s > limit, limit), else_=given.c.s)
    end = case((given.c.e < start, start), (given.c.e > limit, limit), else_=given.c.e)
    clamped = select(start.label("s"), end.label("e"), *[given.c[w] for w in weights],
                     *[given.c[g] for g in groups]).offset(0).subquery()
    binned = select(clamped, Floor(clamped.c.s / width).label("sb"), Floor(clamped.c.e / width).label("eb")).subquery()
    keys = [binned.c[g] for g in groups]
    sums = []
    for w in weights:
        weight = binned.c[w]
        sums += [func.sum(weight), func.sum(weight * binned.c.s), func.sum(weight * binned.c.e)]
    query = select(binned.c.sb, binned.c.eb, *keys, *sums).group_by(binned.c.sb, binned.c.eb, *keys)
    partial: dict[tuple[Any, ...], dict[str, list[float]]] = {}
    whole: dict[tuple[Any, ...], dict[str, list[float]]] = {}
    for row in conn.execute(query):
        first, last = grid.clamp(row[0]), grid.clamp(row[1])
        key, values = tuple(row[2:2 + len(keys)]), [float(v or 0.0) for v in row[2 + len(keys):]]
        if key not in partial:
            partial[key] = {w: [0.0] * grid.count for w in weights}
            whole[key] = {w: [0.0] * (grid.count + 1) for w in weights}
        for k, w in enumerate(weights):
            total, at_start, at_end = values[3 * k:3 * k + 3]
            if first == last:
                partial[key][w][first] += at_end - at_start
            else:
                partial[key][w][first] += (first + 1) * width * total - at_start
                partial[key][w][last] += at_end - last * width * total
                whole[key][w][first + 1] += total
                whole[key][w][last] -= total
    for key, series in partial.items():
        for w in weights:
            running = 0.0
            for i in range(grid.count):
                running += whole[key][w][i]
                series[w][i] = series[w][i] / width + running
    return partial


def _busiest(conn: Any, run_id: str, column: Any) -> tuple[list[str], int]:
    """The ``SERIES`` values of ``column`` (host or block) that ran the most tries, and how many
    others there are."""
    y = m.Try
    present = and_(y.run_id == run_id, column.isnot(None), column != "")
    # count() OVER () runs after the GROUP BY: how many hosts (or blocks) there are, in the same pass
    found = conn.execute(select(column, func.count(), func.count().over()).where(present).group_by(column)
                         .order_by(func.count().desc(), column).limit(SERIES + 1)).all()
    return [value for value, _, _ in found[:SERIES]], max(0, (found[0][2] if found else 0) - SERIES)


def _per_try(run_id: str, name: str) -> Any:
    """Each try's peak and mean RSS and CPU time (growth of user+system from its first sample to its
    last) from its samples, as a CTE computed once however often it is used."""
    r = m.Resource
    cpu = func.coalesce(r.psutil_process_time_user, 0.0) + func.coalesce(r.psutil_process_time_system, 0.0)
    return (select(r.task_id, r.try_id, func.max(r.psutil_process_memory_resident).label("peak_rss"),
                   func.avg(r.psutil_process_memory_resident).label("mean_rss"),
                   (func.max(cpu) - func.min(cpu)).label("cpu_time"), func.count().label("samples"))
            .where(r.run_id == run_id).group_by(r.task_id, r.try_id).cte(name)
            .prefix_with("MATERIALIZED", dialect="sqlite").prefix_with("MATERIALIZED", dialect="postgresql"))


def _top(conn: Any, run_id: str, top: int,
         bins: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Histogram]]:
    """The ``top`` tries by peak RSS and by CPU time (growth of user+system from the try's first
    sample to its last), each with app, host, block and its number of samples; and how all the
    sampled tries spread in CPU time, peak RSS and mean RSS (a histogram each, ``bins`` bins from
    the smallest value to the largest). One statement, whose per-try totals are computed once."""
    t, y = m.Task, m.Try
    per_try = _per_try(run_id, "per_try")
    extremes = select(*[f(per_try.c[name]).label(f"{label}_{name}") for name in DISTRIBUTIONS
                        for f, label in ((func.min, "low"), (func.max, "high"))]).cte("extremes")
    nothing = literal(None)
    parts = []
    for name in ("peak_rss", "cpu_time"):
        ranked = (select(per_try).order_by(per_try.c[name].desc(), per_try.c.task_id, per_try.c.try_id)
                  .limit(top).subquery())
        parts.append(select(literal(name).label("part"), ranked.c.task_id, ranked.c.try_id, ranked.c.peak_rss,
                            ranked.c.mean_rss, ranked.c.cpu_time, ranked.c.samples, nothing.label("bin"),
                            nothing.label("low"), nothing.label("high")))
    for name in DISTRIBUTIONS:
        low, high, value = extremes.c[f"low_{name}"], extremes.c[f"high_{name}"], per_try.c[name]
        width = case((high > low, (high - low) / bins), else_=1.0)
        # a millionth of a bin more, so that a value on an edge lands above it despite rounding
        index = Floor((value - low) / width + 1e-6)
        parts.append(select(literal(f"spread {name}"), nothing, nothing, nothing, nothing, nothing,
                            func.count(), index, func.min(low), func.min(high))
                     .select_from(per_try).join(extremes, literal(True)).where(value.is_not(None)).group_by(index))
    both = union_all(*parts).subquery()
    query = (select(both, t.task_func_name.label("app"), y.hostname, y.block_id)
             .outerjoin(t, and_(t.run_id == run_id, t.task_id == both.c.task_id))
             .outerjoin(y, and_(y.run_id == run_id, y.task_id == both.c.task_id, y.try_id == both.c.try_id)))
    found = rows(conn.execute(query))
    spread: dict[str, Histogram] = {}
    for row in found:
        if not row["part"].startswith("spread "):
            continue
        name = row["part"][len("spread "):]
        low, high = float(row["low"]), float(row["high"])
        histogram = spread.setdefault(name, Histogram(low, (high - low) / bins if high > low else 1.0,
                                                      [0] * (bins if high > low else 1)))
        counts = histogram.counts
        counts[min(max(int(row["bin"] or 0), 0), len(counts) - 1)] += row["samples"]  # the largest: the last bin
    ranked_rows = [row for row in found if not row["part"].startswith("spread ")]
    by_rss = sorted((row for row in ranked_rows if row["part"] == "peak_rss"),
                    key=lambda row: (-(row["peak_rss"] or 0), row["task_id"], row["try_id"]))
    by_cpu = sorted((row for row in ranked_rows if row["part"] == "cpu_time"),
                    key=lambda row: (-(row["cpu_time"] or 0), row["task_id"], row["try_id"]))
    return by_rss, by_cpu, {name: spread[name] for name in DISTRIBUTIONS if name in spread}


def _nodes(conn: Any, run_id: str) -> Page:
    """One row per node (manager uid), from its latest record: host, executor, block, CPUs, memory,
    workers, whether it was still active, first seen and last heartbeat."""
    n = m.Node
    total = conn.execute(select(func.count(func.distinct(n.uid))).where(n.run_id == run_id)).scalar_one()
    if not total:
        return Page([], 0, NODE_LIMIT)
    per_uid = (select(n.uid, func.min(n.timestamp).label("first_seen"),
                      func.max(n.last_heartbeat).label("last_heartbeat"), func.max(n.id).label("latest"),
                      func.count().label("records"))
               .where(n.run_id == run_id).group_by(n.uid).subquery())
    query = (select(n.uid, n.hostname, n.executor_label, n.block_id, n.cpu_count, n.total_memory, n.worker_count,
                    n.active, n.python_v, n.timestamp.label("latest_record"), per_uid.c.first_seen,
                    per_uid.c.last_heartbeat, per_uid.c.records)
             .join(per_uid, n.id == per_uid.c.latest)
             .order_by(per_uid.c.first_seen, n.uid).limit(NODE_LIMIT))
    return Page(rows(conn.execute(query)), total, NODE_LIMIT)


def _blocks(conn: Any, run_id: str) -> tuple[list[BlockLife], int]:
    """Each block's job states in order (from the first ``BLOCK_EVENT_LIMIT`` events), and how
    many blocks the run had."""
    b = m.Block
    total = conn.execute(select(func.count()).select_from(
        select(b.executor_label, b.block_id).where(b.run_id == run_id)
        .group_by(b.executor_label, b.block_id).subquery())).scalar_one()
    events = rows(conn.execute(
        select(b.executor_label, b.block_id, b.timestamp, b.job_id, b.status, b.provider, b.host, b.script_sha256,
               b.message).where(b.run_id == run_id)
        .order_by(b.executor_label, b.block_id, b.timestamp).limit(BLOCK_EVENT_LIMIT)))
    lives: dict[tuple[str, str], BlockLife] = {}
    for event in events:
        key = (event["executor_label"], event["block_id"])
        life = lives.get(key)
        if life is None:
            life = lives[key] = BlockLife(key[0], key[1], event["job_id"], [])
        for known in ("provider", "host", "script_sha256", "message"):
            if event[known]:
                setattr(life, known, event[known])
        if life.segments:
            status, start, _ = life.segments[-1]
            if status == event["status"]:
                continue
            life.segments[-1] = (status, start, event["timestamp"])
        life.job_id = event["job_id"] or life.job_id
        life.segments.append((event["status"], event["timestamp"], None))
    return list(lives.values()), total


def _busy(conn: Any, run_id: str, grid: Grid) -> list[float]:
    """Mean tries running in each bin: each try from running to returned (or to the end of the
    record if it never returned), time-weighted. Join apps' internal tries use no worker."""
    y = m.Try
    t0 = grid.start.timestamp()
    spans = (select((Epoch(y.task_try_time_running) - t0).label("s"),
                    (func.coalesce(Epoch(y.task_try_time_returned), t0 + grid.span) - t0).label("e"),
                    literal(1.0).label("tries"))
             .where(y.run_id == run_id, y.task_try_time_running.isnot(None), y.task_executor != INTERNAL_EXECUTOR))
    found = _spread(conn, grid, spans, ("tries",)).get((), {}).get("tries", [0.0] * grid.count)
    return [round(max(0.0, value), 3) for value in found]


def _capacity(conn: Any, run_id: str, grid: Grid) -> Capacity | None:
    """Workers, CPUs and memory of the nodes up in each bin, time-weighted, over every node of the
    run (not only those listed); None when no node was recorded. A node is up from its first record
    to its latest if that one says it left (inactive), else to the end of the record, and offers
    what its latest record says."""
    n = m.Node
    t0 = grid.start.timestamp()
    per_uid = (select(func.min(n.timestamp).label("first_seen"), func.max(n.id).label("latest"))
               .where(n.run_id == run_id).group_by(n.uid).subquery())
    spans = (select((Epoch(per_uid.c.first_seen) - t0).label("s"),
                    case((n.active, literal(grid.span)), else_=Epoch(n.timestamp) - t0).label("e"),
                    func.coalesce(n.worker_count, 0).label("workers"), func.coalesce(n.cpu_count, 0).label("cpus"),
                    func.coalesce(n.total_memory, 0).label("memory"))
             .join(per_uid, n.id == per_uid.c.latest))
    found = _spread(conn, grid, spans, ("workers", "cpus", "memory")).get(())
    if found is None:
        return None
    return Capacity([round(value, 3) for value in found["workers"]], [round(value, 3) for value in found["cpus"]],
                    [round(value) for value in found["memory"]])


def _executor_kinds(config_summary: str | None) -> list[str]:
    """The executor classes named in the recorded configuration."""
    return sorted(set(re.findall(r"\b(\w+Executor)\(", config_summary or "")))


def _has_monitoring(config_summary: str | None) -> bool | None:
    """Whether the recorded configuration had a MonitoringHub; None when none was recorded."""
    if not config_summary:
        return None
    if re.search(r"\bmonitoring=None\b", config_summary):
        return False
    return "MonitoringHub(" in config_summary
