"""One run's overview: its header counts, tasks by state over time, its tries as a Gantt (each try
below a threshold, busy time per lane and time bin above it, for any zoomed window), tasks per app,
and the run's record.

Every series is aggregated in SQL into at most ``MAX_BINS`` time bins; the Gantt fetches single
tries only when at most ``max_tries`` fall in the window asked for. Time bins are computed in SQL
from each stored time as seconds since 1970 (``strftime`` on SQLite, ``EXTRACT(EPOCH ...)`` on
PostgreSQL: stored times are naive UTC, so both read them as UTC), to the microsecond.

A run's span is from its first task's submission to its last recorded time: its end when it
recorded one, else its newest state change (a live run, or one killed with tasks in flight). A try
with no returned time is in flight and is drawn to that last recorded time. The series of a run
that recorded its end never change, so the last few computed are kept in memory (a zoom back out
is free)."""
from __future__ import annotations

import datetime
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, or_, select

from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.read.common import aware, require_run, row_dict, rows
from parsl_repro.monitoring.read.runs import run_header
from parsl_repro.monitoring.read.sqltime import Epoch, Greatest, Least, from_epoch, naive_utc, number, time_bin
from parsl_repro.task_states import FAILED_STATES, SUCCEEDED_STATES, TASK_STATES

MAX_BINS = 300
"""Time bins of the progress series and of the aggregated Gantt."""
GANTT_MAX_TRIES = 2000
"""Above this many tries in the window shown, the Gantt shows busy time per lane and bin."""
MAX_LANES = 300
"""Above this many workers, the aggregated Gantt has a lane per executor and block instead."""
MAX_CELLS = 40_000
"""Lanes times bins of the aggregated Gantt: many lanes get fewer bins."""
MAX_APPS = 60
"""Tasks per app: the apps with the most tasks; the rest are counted as left out."""
MIN_SPAN = 0.001
"""Seconds: the span given to a run whose every record has the same time."""
EVERY_ROW = 2 ** 62
"""A LIMIT that keeps every row. On a subquery it stops SQLite from merging the subquery into the
query around it, which would compute each of its time expressions again at every use (three
times slower on the Gantt's scan)."""
FINISHED_KEPT = 16
"""Series of finished runs kept in memory (they never change): a zoom back out costs nothing."""


class _Kept:
    """The last ``size`` series computed for runs that recorded their end, by store (engine), run
    and what was asked."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def has(self, key: tuple[Any, ...]) -> bool:
        with self._lock:
            return key in self._items

    def get(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


_finished = _Kept(FINISHED_KEPT)


def kept(engine: Engine, run_id: str) -> bool:
    """Whether the whole-run progress, Gantt and tries per app of ``run_id`` (a run that recorded its
    end) are kept in memory, so that reading them again costs nothing."""
    return (_finished.has(("progress", engine, run_id, MAX_BINS))
            and _finished.has(("gantt", engine, run_id, None, GANTT_MAX_TRIES, MAX_BINS))
            and _finished.has(("apps_running", engine, run_id, MAX_BINS)))


# --- the header ------------------------------------------------------------------------------------
def overview_header(engine: Engine, run_id: str) -> dict[str, Any]:
    """``runs.run_header`` (outcome, live, duration, tasks, states, memo_hits, ...) plus
    ``completed`` and ``failures`` (tasks in a succeeded or a failed final state), ``tries``,
    ``retries`` (tries after a task's first), ``in_flight`` (tries with no returned time) and
    ``time_last``, the run's last recorded time. Raises ``RunNotFound``."""
    header = run_header(engine, run_id)
    t = m.Try
    with engine.connect() as conn:
        tries, retries, in_flight = conn.execute(
            select(func.count(), func.sum(case((t.try_id > 0, 1), else_=0)),
                   func.sum(case((and_(t.task_try_time_returned.is_(None), t.task_try_time_launched.isnot(None)), 1),
                                 else_=0)))
            .where(t.run_id == run_id)).one()
        header["time_last"] = _last_time(conn, header)
    states = header["states"]
    header["completed"] = sum(n for state, n in states.items() if state in SUCCEEDED_STATES)
    header["failures"] = sum(n for state, n in states.items() if state in FAILED_STATES)
    header["tries"], header["retries"], header["in_flight"] = tries, retries or 0, in_flight or 0
    if header["duration"] is None and header["time_last"] is not None and header.get("time_began") is not None:
        header["span"] = (header["time_last"] - header["time_began"]).total_seconds()
    else:
        header["span"] = header["duration"]
    return header


def _last_time(conn: Connection, run: dict[str, Any]) -> datetime.datetime | None:
    """The run's end when it recorded one, else its newest state change (or its start)."""
    if run.get("time_completed") is not None:
        return aware(run["time_completed"])
    newest = conn.execute(select(func.max(m.Status.timestamp)).where(m.Status.run_id == run["run_id"])).scalar()
    return aware(newest) if newest is not None else aware(run.get("time_began"))


@dataclass
class Span:
    """A run's time span (UTC): from its first task's submission (its start when it has no task) to
    its last recorded time."""

    start: datetime.datetime
    end: datetime.datetime

    @property
    def seconds(self) -> float:
        """The span's length, at least ``MIN_SPAN``."""
        return max(MIN_SPAN, (self.end - self.start).total_seconds())


def _span(conn: Connection, run_id: str) -> tuple[Span, bool]:
    """The run's span, and whether the run recorded its end (so nothing more will be recorded)."""
    run = row_dict(require_run(conn, run_id))
    end = _last_time(conn, run)
    s = m.Status
    # the first task's first state change (an index look-up): the run's start, less its set-up time
    first_task = select(func.min(s.task_id)).where(s.run_id == run_id).scalar_subquery()
    first = conn.execute(select(func.min(s.timestamp)).where(s.run_id == run_id, s.task_id == first_task)).scalar()
    start = aware(first if first is not None else run["time_began"])  # anything earlier falls in the first bin
    if end is None or end < start:
        end = start
    return Span(start, end), run.get("time_completed") is not None


# --- progress --------------------------------------------------------------------------------------
@dataclass
class Progress:
    """How many tasks were in each state at the end of each time bin.

    ``times[i]`` ends bin ``i``; ``counts[state][i]`` is the number of tasks in ``state`` then.
    ``states`` lists the states met, in the order a task meets them."""

    span: Span
    bin_seconds: float
    times: list[datetime.datetime] = field(default_factory=list)
    counts: dict[str, list[int]] = field(default_factory=dict)

    @property
    def states(self) -> list[str]:
        """The states any task was in, in ``TASK_STATES`` order (unknown names last)."""
        order = {state: i for i, state in enumerate(TASK_STATES)}
        return sorted(self.counts, key=lambda state: (order.get(state, len(order)), state))


def progress(engine: Engine, run_id: str, bins: int = MAX_BINS) -> Progress:
    """Tasks by state over the run's span in at most ``bins`` bins, from its state changes: each
    change adds one task to its new state and takes one from its previous state, per bin in SQL,
    then summed over bins. Raises ``RunNotFound``."""
    return _series(engine, run_id, ("progress", bins), lambda conn, span: _progress(conn, run_id, span, bins))


def _series(engine: Engine, run_id: str, key: tuple[Any, ...], read: Callable[[Connection, Span], Any]) -> Any:
    """``read(conn, span)`` over the run's span, kept under ``key`` once the run has recorded its end."""
    with engine.connect() as conn:
        span, finished = _span(conn, run_id)
        if finished:
            return _finished.get((key[0], engine, run_id, *key[1:]), lambda: read(conn, span))
        return read(conn, span)


def _progress(conn: Connection, run_id: str, span: Span, bins: int) -> Progress:
    s = m.Status
    width = span.seconds / bins
    start = span.start.timestamp()
    slot = time_bin(Epoch(s.timestamp), start, width)
    moves = conn.execute(
        select(slot, s.task_status_name, s.previous_status_name, func.count())
        .where(s.run_id == run_id).group_by(slot, s.task_status_name, s.previous_status_name)).all()
    delta: dict[str, list[int]] = {}
    for index, state, previous, n in moves:
        index = min(bins - 1, max(0, int(index or 0)))
        delta.setdefault(state, [0] * bins)[index] += n
        if previous:
            delta.setdefault(previous, [0] * bins)[index] -= n
    counts = {}
    for state, changes in delta.items():
        total, series = 0, []
        for change in changes:
            total += change
            series.append(total)
        counts[state] = series
    times = [from_epoch(start + (i + 1) * width) for i in range(bins)]
    return Progress(span, width, times if counts else [], counts)


# --- the Gantt -------------------------------------------------------------------------------------
@dataclass
class Gantt:
    """Tries in a time window, by lane (executor, block, worker).

    ``kind`` is ``tries`` (``tries`` holds each: task_id, try_id, app, lane, start, end, launched,
    running, returned, in_flight), ``binned`` (``busy[lane][bin]`` is the mean number of tries
    running in that lane during bin ``bin``, which starts at ``bin_starts[bin]``) or ``empty``.
    ``total`` is how many tries fall in the window; ``in_flight`` how many of them have no
    returned time (drawn to ``span.end``); ``lane_level`` is ``worker``, or ``block`` when there
    were more than ``MAX_LANES`` workers. ``window`` is the window asked for, None for the run's
    whole span."""

    kind: str
    span: Span
    window: tuple[datetime.datetime, datetime.datetime] | None = None
    total: int = 0
    in_flight: int = 0
    max_tries: int = GANTT_MAX_TRIES
    lane_level: str = "worker"
    lanes: list[str] = field(default_factory=list)
    tries: list[dict[str, Any]] = field(default_factory=list)
    bin_starts: list[datetime.datetime] = field(default_factory=list)
    bin_seconds: float = 0.0
    busy: list[list[float]] = field(default_factory=list)

    @property
    def shown(self) -> tuple[datetime.datetime, datetime.datetime]:
        """The time range drawn: the window, or the run's span."""
        return self.window or (self.span.start, self.span.end)


def gantt(engine: Engine, run_id: str, window: tuple[datetime.datetime, datetime.datetime] | None = None, *,
          max_tries: int = GANTT_MAX_TRIES, bins: int = MAX_BINS) -> Gantt:
    """The tries of ``run_id`` that overlap ``window`` (aware datetimes; None: the whole run), each
    one when there are at most ``max_tries``, else busy time per lane in at most ``bins`` bins.
    A try runs from its running time (its launch time when it has none) to its returned time (the
    run's last recorded time when it has none). Raises ``RunNotFound``."""
    with engine.connect() as conn:
        span, finished = _span(conn, run_id)
        if window is not None:
            low, high = sorted(window)
            low, high = max(low, span.start), min(high, span.end)
            window = (low, high) if high > low else None
        if finished:
            return _finished.get(("gantt", engine, run_id, window, max_tries, bins),
                                 lambda: _gantt(conn, run_id, span, window, max_tries, bins))
        return _gantt(conn, run_id, span, window, max_tries, bins)


def _gantt(conn: Connection, run_id: str, span: Span, window: tuple[datetime.datetime, datetime.datetime] | None,
           max_tries: int, bins: int) -> Gantt:
    t = m.Try
    low, high = window or (span.start, span.end)
    begun = func.coalesce(t.task_try_time_running, t.task_try_time_launched)
    overlap = [t.run_id == run_id, t.task_try_time_launched.isnot(None)]
    if window is not None:
        overlap += [begun <= naive_utc(high),
                    or_(t.task_try_time_returned.is_(None), t.task_try_time_returned >= naive_utc(low))]
    total = conn.execute(select(func.count()).select_from(t).where(*overlap)).scalar_one()
    if total == 0:
        return Gantt("empty", span, window, max_tries=max_tries)
    if total > max_tries:
        return _binned(conn, run_id, span, window, (low, high), max_tries, bins)
    found = rows(conn.execute(
        select(t.task_id, t.try_id, t.task_executor, t.block_id, t.hostname, t.manager, t.pid,
               t.task_try_time_launched.label("launched"), t.task_try_time_running.label("running"),
               t.task_try_time_returned.label("returned"), m.Task.task_func_name.label("app"))
        .join(m.Task, and_(m.Task.run_id == t.run_id, m.Task.task_id == t.task_id), isouter=True)
        .where(*overlap).order_by(begun, t.task_id, t.try_id).limit(max_tries)))
    return _each_try(span, window, found, max_tries)


def _worker(host_or_manager: str | None, pid: int | None) -> str:
    if pid is None:
        return host_or_manager or "worker not recorded"
    return f"{host_or_manager or 'host not recorded'}:{pid}"


def _lane(executor: str | None, block_id: str | None, worker: str | None) -> str:
    parts = [executor or "?"] + ([f"block {block_id}"] if block_id not in (None, "") else [])
    return " · ".join(parts + ([worker] if worker else []))


def _lane_key(executor: str | None, block_id: str | None, worker: str | None) -> tuple[Any, ...]:
    """Lanes sort by executor, block (numerically when it is a number), then worker."""
    block = str(block_id or "")
    return executor or "", (0, int(block), "") if block.isdigit() else (1, 0, block), worker or ""


def _each_try(span: Span, window: tuple[datetime.datetime, datetime.datetime] | None,
              found: list[dict[str, Any]], max_tries: int) -> Gantt:
    """Each try, with tries that overlap in one lane (threads of one process) put on numbered
    rows of that lane."""
    by_lane: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    names: dict[tuple[Any, ...], str] = {}
    in_flight = 0
    for item in found:
        worker = _worker(item["manager"] or item["hostname"], item["pid"])
        key = _lane_key(item["task_executor"], item["block_id"], worker)
        names[key] = _lane(item["task_executor"], item["block_id"], worker)
        item["start"] = item["running"] or item["launched"]
        item["in_flight"] = item["returned"] is None
        in_flight += item["in_flight"]
        item["end"] = max(item["start"], item["returned"] or span.end)
        item["app"] = item["app"] or "?"
        by_lane.setdefault(key, []).append(item)
    lanes: list[str] = []
    tries: list[dict[str, Any]] = []
    for key in sorted(by_lane):
        row_ends: list[datetime.datetime] = []
        rows_of: list[int] = []
        for item in by_lane[key]:  # in order of start
            row = next((i for i, end in enumerate(row_ends) if end <= item["start"]), len(row_ends))
            if row == len(row_ends):
                row_ends.append(item["end"])
            # a try in flight may still be running: nothing shares its row after it
            row_ends[row] = datetime.datetime.max.replace(tzinfo=datetime.UTC) if item["in_flight"] else item["end"]
            rows_of.append(row)
        labels = [names[key]] if len(row_ends) == 1 else [f"{names[key]} #{i + 1}" for i in range(len(row_ends))]
        lanes.extend(labels)
        for item, row in zip(by_lane[key], rows_of, strict=True):
            tries.append(dict(item, lane=labels[row]))
    return Gantt("tries", span, window, total=len(tries), in_flight=in_flight, max_tries=max_tries, lanes=lanes,
                 tries=tries)


def _binned(conn: Connection, run_id: str, span: Span, window: tuple[datetime.datetime, datetime.datetime] | None,
            shown: tuple[datetime.datetime, datetime.datetime], max_tries: int, bins: int) -> Gantt:
    """Busy time per lane and bin, exactly (to float rounding), from one grouped scan: per lane, start bin and end bin,
    how many tries there are and the sums of their starts and ends. A bin's busy time is then the
    tries running when it began times its width, plus each start's time to the bin's end, minus
    each end's time to the bin's end."""
    t = m.Try
    low, high = shown[0].timestamp(), shown[1].timestamp()
    begun_at = func.coalesce(t.task_try_time_running, t.task_try_time_launched)
    begun = Epoch(begun_at)
    recorded_end = func.coalesce(Epoch(t.task_try_time_returned), number(span.end.timestamp()))
    host = func.coalesce(t.manager, t.hostname)
    # which tries: by the stored times themselves
    where = [t.run_id == run_id, t.task_try_time_launched.isnot(None), begun_at <= naive_utc(shown[1]),
             or_(t.task_try_time_returned.is_(None), t.task_try_time_returned >= naive_utc(shown[0]))]
    workers = conn.execute(select(func.count()).select_from(
        select(t.task_executor, t.block_id, host, t.pid).where(*where).distinct().subquery())).scalar_one()
    level = "worker" if workers <= MAX_LANES else "block"
    bins = max(1, min(bins, MAX_CELLS // max(1, workers if level == "worker" else MAX_LANES)))
    width = max(MIN_SPAN, high - low) / bins
    lane_columns = [t.task_executor, t.block_id] + ([host.label("host"), t.pid] if level == "worker" else [])
    # seconds from the window's start (sums of small numbers keep their precision), clipped to it;
    # a try in flight since the last record runs to then, and never ends before it began
    tries = select(*lane_columns,
                   (Greatest(begun, number(low)) - number(low)).label("begun"),
                   (Least(Greatest(recorded_end, begun), number(high)) - number(low)).label("ended"),
                   t.task_try_time_returned.is_(None).label("open")).where(*where).limit(EVERY_ROW).subquery()
    lane_of = [tries.c.task_executor, tries.c.block_id] + ([tries.c.host, tries.c.pid] if level == "worker" else [])
    begun_bin, ended_bin = time_bin(tries.c.begun, 0.0, width), time_bin(tries.c.ended, 0.0, width)
    grouped = conn.execute(  # bins first: the sort behind GROUP BY compares integers before text
        select(begun_bin, ended_bin, func.count(), func.sum(tries.c.begun), func.sum(tries.c.ended),
               func.sum(case((tries.c.open, 1), else_=0)), *lane_of)
        .group_by(begun_bin, ended_bin, *lane_of)).all()
    sums: dict[tuple[Any, ...], list[list[float]]] = {}  # lane -> [starts, start sums, ends, end sums]
    total = open_tries = 0
    for row in grouped:
        first_bin, last_bin, n, begun_sum, ended_sum, opened, *lane = row
        _add_tries(sums, tuple(lane), bins, first_bin, last_bin, n, begun_sum, ended_sum)
        total += n
        open_tries += opened or 0
    named = {}
    for key in sums:
        worker = _worker(key[2], key[3]) if level == "worker" else None
        named[_lane_key(key[0], key[1], worker)] = (_lane(key[0], key[1], worker), key)
    lanes, busy = [], []
    for sort_key in sorted(named):
        name, key = named[sort_key]
        lanes.append(name)
        busy.append(_busy_series(sums[key], bins, width))
    return Gantt("binned", span, window, total=total, in_flight=open_tries, max_tries=max_tries, lane_level=level,
                 lanes=lanes, bin_starts=[from_epoch(low + i * width) for i in range(bins)], bin_seconds=width,
                 busy=busy)


def _add_tries(sums: dict[Any, list[list[float]]], key: Any, bins: int, first_bin: Any, last_bin: Any, n: int,
               begun_sum: float | None, ended_sum: float | None) -> None:
    """Count ``n`` tries of ``key`` that began in ``first_bin`` and ended in ``last_bin`` (with the
    sums of their start and end seconds) into ``sums[key]``: [starts, start sums, ends, end sums]."""
    series = sums.get(key)
    if series is None:
        series = sums[key] = [[0.0] * bins for _ in range(4)]
    first_bin = min(bins - 1, max(0, int(first_bin or 0)))
    last_bin = min(bins - 1, max(0, int(last_bin or 0)))
    series[0][first_bin] += n
    series[1][first_bin] += begun_sum or 0.0
    series[2][last_bin] += n
    series[3][last_bin] += ended_sum or 0.0


def _busy_series(sums: list[list[float]], bins: int, width: float) -> list[float]:
    """Mean tries running in each bin from per-bin [starts, start sums, ends, end sums] (seconds
    from the window's start): the tries running when the bin began times its width, plus each
    start's time to the bin's end, minus each end's time to the bin's end."""
    starts, start_sums, ends, end_sums = sums
    running, series = 0.0, []
    for i in range(bins):
        bin_end = (i + 1) * width
        seconds = running * width + (starts[i] * bin_end - start_sums[i]) - (ends[i] * bin_end - end_sums[i])
        series.append(max(0.0, seconds / width))
        running += starts[i] - ends[i]
    return series


# --- tries running per app -------------------------------------------------------------------------
@dataclass
class AppsRunning:
    """Mean tries running per app in each of ``len(bin_starts)`` bins of ``bin_seconds`` over the
    run's span (``apps``: app -> series, the apps with most tries first, at most ``MAX_APPS``)."""

    span: Span
    bin_starts: list[datetime.datetime] = field(default_factory=list)
    bin_seconds: float = 0.0
    apps: dict[str, list[float]] = field(default_factory=dict)


def apps_running(engine: Engine, run_id: str, bins: int = MAX_BINS) -> AppsRunning:
    """How many tries of each app were running over the run, exactly per bin (as the binned
    Gantt, grouped by app instead of lane), from one grouped scan of the run's tries. Raises
    ``RunNotFound``."""
    return _series(engine, run_id, ("apps_running", bins), lambda conn, span: _apps_running(conn, run_id, span, bins))


def _apps_running(conn: Connection, run_id: str, span: Span, bins: int) -> AppsRunning:
    y, t = m.Try, m.Task
    low = span.start.timestamp()
    width = max(MIN_SPAN, span.seconds) / bins
    begun = Epoch(func.coalesce(y.task_try_time_running, y.task_try_time_launched))
    recorded_end = func.coalesce(Epoch(y.task_try_time_returned), number(span.end.timestamp()))
    tries = (select(t.task_func_name.label("app"), (begun - number(low)).label("begun"),
                    (Greatest(recorded_end, begun) - number(low)).label("ended"))
             .join(t, and_(t.run_id == y.run_id, t.task_id == y.task_id))
             .where(y.run_id == run_id, y.task_try_time_launched.isnot(None)).limit(EVERY_ROW).subquery())
    begun_bin, ended_bin = time_bin(tries.c.begun, 0.0, width), time_bin(tries.c.ended, 0.0, width)
    grouped = conn.execute(select(begun_bin, ended_bin, func.count(), func.sum(tries.c.begun), func.sum(tries.c.ended),
                                  tries.c.app).group_by(begun_bin, ended_bin, tries.c.app)).all()
    sums: dict[str, list[list[float]]] = {}
    tries_of: dict[str, int] = {}
    for first_bin, last_bin, n, begun_sum, ended_sum, app in grouped:
        _add_tries(sums, app, bins, first_bin, last_bin, n, begun_sum, ended_sum)
        tries_of[app] = tries_of.get(app, 0) + n
    chosen = sorted(sums, key=lambda app: (-tries_of[app], app))[:MAX_APPS]
    return AppsRunning(span, [from_epoch(low + i * width) for i in range(bins)], width,
                       {app: _busy_series(sums[app], bins, width) for app in chosen})


# --- tasks per app ---------------------------------------------------------------------------------
@dataclass
class AppCounts:
    """Tasks per app by state: ``items`` are ``{"app", "total", "states": {state: n}}``, most tasks
    first, the first ``limit`` of ``total_apps``."""

    items: list[dict[str, Any]] = field(default_factory=list)
    total_apps: int = 0
    limit: int = MAX_APPS

    @property
    def more(self) -> int:
        """How many apps were left out."""
        return max(0, self.total_apps - len(self.items))

    @property
    def states(self) -> list[str]:
        """The states met, in the order a task meets them."""
        met = {state for item in self.items for state in item["states"]}
        order = {state: i for i, state in enumerate(TASK_STATES)}
        return sorted(met, key=lambda state: (order.get(state, len(order)), state))


def app_counts(engine: Engine, run_id: str, limit: int = MAX_APPS) -> AppCounts:
    """Task counts by app and state, grouped in SQL. Raises ``RunNotFound``."""
    t = m.Task
    with engine.connect() as conn:
        require_run(conn, run_id)
        grouped = conn.execute(select(t.task_func_name, t.task_status_name, func.count())
                               .where(t.run_id == run_id).group_by(t.task_func_name, t.task_status_name)).all()
    apps: dict[str, dict[str, Any]] = {}
    for app, state, n in grouped:
        item = apps.setdefault(app or "?", {"app": app or "?", "total": 0, "states": {}})
        item["states"][state or "unknown"] = n
        item["total"] += n
    ordered = sorted(apps.values(), key=lambda item: (-item["total"], item["app"]))
    return AppCounts(ordered[:limit], len(ordered), limit)


# --- the record ------------------------------------------------------------------------------------
def run_record(engine: Engine, run_id: str) -> dict[str, Any]:
    """The run's row (script, git, Python, platform, config summary, argv, cwd, host, user, run
    dir, ...) with ``packages`` (a list of ``(name, version)``, None when not recorded),
    ``argv`` and ``memo_sources`` decoded from JSON when they are JSON, and ``parent_in_store``
    (whether the parent run is in this store). Raises ``RunNotFound``."""
    with engine.connect() as conn:
        run = row_dict(require_run(conn, run_id))
        packages = None
        if run.get("packages_digest"):
            packages = conn.execute(select(m.Environment.packages)
                                    .where(m.Environment.packages_digest == run["packages_digest"])).scalar()
        parent = run.get("parent_run_id")
        run["parent_in_store"] = bool(parent) and conn.execute(
            select(func.count()).select_from(m.Workflow).where(m.Workflow.run_id == parent)).scalar_one() > 0
    run["packages"] = [tuple(item) for item in _json(packages, [])] if packages else None
    run["argv"] = _json(run.get("argv"), run.get("argv"))
    run["memo_sources"] = _json(run.get("memo_sources"), run.get("memo_sources"))
    return run


def _json(text: str | None, otherwise: Any) -> Any:
    if not text:
        return otherwise
    try:
        return json.loads(text)
    except ValueError:
        return otherwise
