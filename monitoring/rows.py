"""The rows a batch of events becomes, and how one transaction writes them.

The hot tables (``task``, ``try``, ``status``: several rows per task) go to the driver's
executemany; the others through SQLAlchemy Core. Every column list and time column here is read
from the models (``parsl_repro.monitoring.models``, the one statement of the schema), and a hot
row is a dict keyed by column name: a task or try row begins as its table's blank row (each
column's default, else None) that events fill in, a status row is what its event says, and a
column a row lacks when it is written takes its default. A column added to a model is therefore
written, as its default, with no change here.

Times stay ``time.time()`` floats until a batch is written, then become what the DateTime
columns hold (naive UTC; on SQLite, the text SQLAlchemy would have stored).
"""
from __future__ import annotations

import datetime
import json
import operator
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Column, DateTime, Engine, Table, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from parsl_repro.events import RunStarted
from parsl_repro.monitoring import models as m
from parsl_repro.task_states import FAILED_STATES, FINISHED_STATES, SUCCEEDED_STATES
from parsl_repro.utils import process_alive
from parsl_repro.version import VERSION

Row = dict[str, Any]
Stamp = Callable[[Any], Any]

_EPOCH = datetime.datetime(1970, 1, 1)
_SECOND = datetime.timedelta(seconds=1)


def utc(t: float | None) -> datetime.datetime | None:
    """A ``time.time()`` value as a naive UTC datetime (what the DateTime columns hold).
    Anything else (None, or a value already converted by an earlier attempt) passes through."""
    if type(t) is not float and type(t) is not int:
        return t  # type: ignore[return-value]
    return _EPOCH + t * _SECOND


_stamp_cache: tuple[int, str] = (-1, "")  # (a second, in microseconds, and its text up to the "."): replaced
#                                             whole, so threads never mix halves


def _sqlite_stamp(t: float | None) -> str | None:
    """A ``time.time()`` value as the text SQLAlchemy stores for DateTime on SQLite
    (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC), for rows written straight to the driver. Several per
    task: the text of the current second is kept."""
    global _stamp_cache
    if type(t) is not float and type(t) is not int:
        return t  # type: ignore[return-value]  # None, or converted by an earlier attempt
    micros = round(t * 1_000_000)
    second, text = _stamp_cache
    if not second <= micros < second + 1_000_000:
        second = micros - micros % 1_000_000
        text = time.strftime("%Y-%m-%d %H:%M:%S.", time.gmtime(second // 1_000_000))
        _stamp_cache = (second, text)
    return text + str(1_000_000 + micros - second)[1:]  # the microseconds, zero-padded to six digits


def _default(column: Column) -> Any:
    """What a row holds in ``column`` until an event says otherwise: the model's default, else None."""
    default = column.default
    return default.arg if default is not None and default.is_scalar else None


class DriverTable:
    """A hot table as the driver sees it, read from its model: the columns an INSERT names (all
    but a database-generated id, in the model's order), those that hold times, and the blank row
    (every such column with its default)."""

    def __init__(self, model: type[m.Base]) -> None:
        table: Table = model.__table__
        columns = [c for c in table.columns if c is not table.autoincrement_column]
        self.name = table.name
        self.columns = tuple(c.name for c in columns)
        self.times = tuple(c.name for c in columns if isinstance(c.type, DateTime))
        self.blank: Row = {c.name: _default(c) for c in columns}
        self._values = operator.itemgetter(*self.columns)

    def insert(self, conn: Connection, rows: Iterable[Row], stamp: Stamp) -> None:
        """INSERT ``rows`` with one executemany; a column a row lacks takes its default."""
        times, values, width = self.times, self._values, len(self.columns)
        params = []
        for row in rows:
            if len(row) != width:
                row = self._complete(row)
            for name in times:
                row[name] = stamp(row[name])
            params.append(values(row))
        mark = _mark(conn)
        names = ", ".join(f'"{c}"' for c in self.columns)
        conn.exec_driver_sql(f'INSERT INTO "{self.name}" ({names}) VALUES ({", ".join(mark for _ in self.columns)})',
                             params)

    def _complete(self, row: Row) -> Row:
        full = {**self.blank, **row}
        if len(full) != len(self.blank):
            raise KeyError(f"table {self.name!r} has no column {sorted(full.keys() - self.blank.keys())}")
        return full

    def update(self, conn: Connection, key_names: tuple[str, ...], updates: dict[tuple, Row], stamp: Stamp) -> None:
        """UPDATE rows written by earlier batches, one executemany per set of changed columns;
        ``updates`` maps each row's key (the values of ``key_names``) to its changes."""
        mark = _mark(conn)
        groups: dict[tuple[str, ...], list[tuple]] = {}
        for key, values in updates.items():
            for name in self.times:
                if name in values:
                    values[name] = stamp(values[name])
            columns = tuple(sorted(values))
            groups.setdefault(columns, []).append((*(values[c] for c in columns), *key))
        where = " AND ".join(f'"{k}" = {mark}' for k in key_names)
        for columns, rows in groups.items():
            assignments = ", ".join(f'"{c}" = {mark}' for c in columns)
            conn.exec_driver_sql(f'UPDATE "{self.name}" SET {assignments} WHERE {where}', rows)


def _mark(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


TASK = DriverTable(m.Task)
TRY = DriverTable(m.Try)
STATUS = DriverTable(m.Status)
_TASK_KEY = ("run_id", "task_id")
_TRY_KEY = ("run_id", "task_id", "try_id")


class BatchRows:
    """The rows one batch will write. Task and try rows made in this batch are dicts that later
    events of the batch fill in, so a task that starts and ends within one batch costs one
    insert; changes to rows of earlier batches are collected as updates."""

    def __init__(self) -> None:
        self.size = 0  # events that made these rows
        self.tasks: dict[tuple[str, int], Row] = {}
        self.task_updates: dict[tuple[str, int], Row] = {}
        self.tries: dict[tuple[str, int, int], Row] = {}
        self.try_updates: dict[tuple[str, int, int], Row] = {}
        self.status: list[Row] = []  # state changes, in order
        self.dependencies: list[Row] = []
        self.apps: list[Row] = []
        self.results: list[Row] = []
        self.arguments: list[Row] = []  # serialized arguments, by digest
        self.files: list[tuple[Row, Row]] = []  # (file entity, its use)
        self.workflow_updates: list[Row] = []
        self.run_starts: list[RunStarted] = []  # written first: every other row of a run refers to its row
        self.inserts: dict[Table, list[Row]] = {}  # table -> plain rows (blocks, nodes, resource samples)

    def empty(self) -> bool:
        return not (self.tasks or self.task_updates or self.tries or self.try_updates or self.status
                    or self.dependencies or self.apps or self.results or self.arguments or self.files
                    or self.workflow_updates
                    or self.inserts or self.run_starts)

    def new_task(self, run_id: str, task_id: int) -> Row:
        """A new task's row, blank but for its key, for this and later events of the batch to fill in."""
        row = TASK.blank.copy()
        row["run_id"], row["task_id"] = run_id, task_id
        self.tasks[(run_id, task_id)] = row
        return row

    def new_try(self, run_id: str, task_id: int, try_id: int) -> Row:
        """A new try's row, blank but for its key, for this and later events of the batch to fill in."""
        row = TRY.blank.copy()
        row["run_id"], row["task_id"], row["try_id"] = run_id, task_id, try_id
        self.tries[(run_id, task_id, try_id)] = row
        return row

    def update_task(self, run_id: str, task_id: int, **values: Any) -> None:
        """Set columns of a task row, made in this batch or written before."""
        key = (run_id, task_id)
        row = self.tasks.get(key)
        if row is None:
            self.task_updates.setdefault(key, {}).update(values)
        else:
            row.update(values)

    def update_try(self, run_id: str, task_id: int, try_id: int, **values: Any) -> None:
        """Set columns of a try row, made in this batch or written before."""
        key = (run_id, task_id, try_id)
        row = self.tries.get(key)
        if row is None:
            self.try_updates.setdefault(key, {}).update(values)
        else:
            row.update(values)

    def commit(self, engine: Engine) -> None:
        """Write these rows in one transaction."""
        with engine.begin() as conn:
            self.write(conn)

    def write(self, conn: Connection) -> None:
        """Write these rows in ``conn``'s transaction: runs first, then what refers to them."""
        stamp = _sqlite_stamp if conn.dialect.name == "sqlite" else utc
        for started in self.run_starts:
            _begin_run(conn, started)
        _insert_ignore(conn, m.App.__table__, self.apps)
        _fill_recipes(conn, self.apps)
        if self.tasks:
            TASK.insert(conn, self.tasks.values(), stamp)
        TASK.update(conn, _TASK_KEY, self.task_updates, stamp)
        if self.tries:
            TRY.insert(conn, self.tries.values(), stamp)
        TRY.update(conn, _TRY_KEY, self.try_updates, stamp)
        if self.status:
            STATUS.insert(conn, self.status, stamp)
        _insert_ignore(conn, m.Dependency.__table__, self.dependencies)
        _insert_ignore(conn, m.Result.__table__, self.results)
        _insert_ignore(conn, m.Argument.__table__, self.arguments)
        if self.files:
            _write_files(conn, self.files)
        for table, table_rows in self.inserts.items():
            conn.execute(table.insert(), table_rows)
        for values in self.workflow_updates:
            run_id = values.pop("run_id")
            conn.execute(update(m.Workflow).where(m.Workflow.run_id == run_id).values(**values))


class HeldRows:
    """Rows of tasks and tries still in progress, kept back from the batch that made them for up
    to ``HOLD_SECONDS`` so that a short task is one INSERT with its final values instead of an
    INSERT and an UPDATE. Finished tasks are never held: what is done is written at once."""

    HOLD_SECONDS = 1.0

    def __init__(self) -> None:
        self.tasks: dict[tuple[str, int], Row] = {}
        self.tries: dict[tuple[str, int, int], Row] = {}
        self.oldest = float("inf")

    def give_back(self, rows: BatchRows) -> None:
        """Hand the held rows to the next batch, which goes on filling them in."""
        rows.tasks, self.tasks = self.tasks, {}
        rows.tries, self.tries = self.tries, {}
        self.oldest = float("inf")

    def take_unfinished(self, rows: BatchRows, hold: bool) -> None:
        """Take from ``rows`` the tasks and tries begun less than ``HOLD_SECONDS`` ago that are not
        finished (nothing when ``hold`` is false: at close, everything is written)."""
        if not hold:
            return
        horizon = time.time() - self.HOLD_SECONDS
        for key, row in list(rows.tasks.items()):
            invoked = row["task_time_invoked"]
            if row["task_status_name"] not in FINISHED_STATES and type(invoked) is float and invoked > horizon:
                self.tasks[key] = rows.tasks.pop(key)
                self.oldest = min(self.oldest, invoked)
        for key, row in list(rows.tries.items()):
            launched = row["task_try_time_launched"]
            if row["task_try_time_returned"] is None and type(launched) is float and launched > horizon:
                self.tries[key] = rows.tries.pop(key)
                self.oldest = min(self.oldest, launched)

    def due(self) -> bool:
        """Whether the oldest held row has waited long enough to be written without its end."""
        return time.time() - self.oldest >= self.HOLD_SECONDS


# --- the run's row ------------------------------------------------------------------------------------
def run_counts(state_counts: dict[str, int]) -> dict[str, int]:
    """The run row's task counts from counts of tasks by state: cancelled tasks are neither."""
    return {"tasks_completed_count": sum(state_counts.get(state, 0) for state in SUCCEEDED_STATES),
            "tasks_failed_count": sum(state_counts.get(state, 0) for state in FAILED_STATES)}


def _begin_run(conn: Connection, started: RunStarted) -> None:
    """Write a run's row (and its package list, once per distinct set) from its ``RunStarted``,
    after marking the runs of its host that were left running by a process now gone as killed."""
    env = started.environment or {}
    if env.get("host"):
        _mark_killed_runs(conn, env["host"])
    if env.get("packages_digest"):
        _insert_ignore(conn, m.Environment.__table__, [{
            "packages_digest": env["packages_digest"], "packages": json.dumps(env.get("packages") or [])}])
    conn.execute(m.Workflow.__table__.insert(), [{
        "run_id": started.run_id, "workflow_name": started.workflow_name,
        "workflow_version": started.workflow_version or str(utc(started.time).replace(microsecond=0)),
        "pid": started.pid, "time_began": utc(started.time), "host": env.get("host", ""), "user": env.get("user", ""),
        "rundir": started.run_dir, "runinfo_dir": started.runinfo_dir, "tasks_failed_count": 0,
        "tasks_completed_count": 0, "outcome": "running", "config_summary": started.config_summary,
        "script_path": env.get("script_path"), "script_sha256": env.get("script_sha256"),
        "argv": json.dumps(env["argv"]) if "argv" in env else None, "cwd": env.get("cwd"),
        "python_version": env.get("python_version"), "platform": env.get("platform"),
        "packages_digest": env.get("packages_digest"), "git_repository": env.get("git_repository"),
        "git_commit": env.get("git_commit"), "git_dirty": env.get("git_dirty"),
        "git_diff_sha256": env.get("git_diff_sha256"), "parsl_repro_version": VERSION,
        "replay_of": started.replay_of, "parent_run_id": started.replay_of}])


def _mark_killed_runs(conn: Connection, host: str) -> None:
    """Runs on ``host`` still marked running whose process is gone ended abruptly: mark them
    ``killed``, with the task counts a clean end would have written (their tasks stay as they are)."""
    w = m.Workflow
    stale = [row.run_id for row in conn.execute(select(w.run_id, w.pid).where(
        w.host == host, w.outcome == "running", w.pid.is_not(None))) if not process_alive(row.pid)]
    for run_id in stale:
        counts = dict(conn.execute(select(m.Task.task_status_name, func.count()).where(
            m.Task.run_id == run_id).group_by(m.Task.task_status_name)).all())
        conn.execute(update(w).where(w.run_id == run_id).values(outcome="killed", **run_counts(counts)))


# --- the other tables -----------------------------------------------------------------------------------
def _insert_ignore(conn: Connection, table: Table, rows: list[Row]) -> None:
    """INSERT ``rows``, skipping those whose key is already there."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        for row in rows:
            try:
                with conn.begin_nested():
                    conn.execute(table.insert(), [row])
            except DBAPIError:
                pass
        return
    conn.execute(insert(table).on_conflict_do_nothing(), rows)


def _fill_recipes(conn: Connection, apps: list[Row]) -> None:
    """Give a recipe to app rows written before recipes were recorded (schema 6 and older)."""
    table = m.App.__table__
    for row in apps:
        if row.get("recipe"):
            conn.execute(update(table).where(table.c.app_digest == row["app_digest"], table.c.recipe.is_(None))
                         .values(recipe=row["recipe"]))


def _write_files(conn: Connection, files: list[tuple[Row, Row]]) -> None:
    """Write file entities (each URL and content once) and their uses."""
    _insert_ignore(conn, m.File.__table__, [f for f, _ in files])
    ids: dict[tuple[str, str | None], int] = {}
    for entity, _use in files:
        key = (entity["url"], entity["sha256"])
        if key in ids:
            continue
        query = select(m.File.file_id).where(m.File.url == entity["url"])
        query = query.where(m.File.sha256.is_(None) if entity["sha256"] is None else m.File.sha256 == entity["sha256"])
        found = conn.execute(query.order_by(m.File.file_id.desc()).limit(1)).scalar()
        if found is None:  # a NULL digest defeats the unique constraint: insert explicitly once
            found = conn.execute(m.File.__table__.insert().values(**entity)).inserted_primary_key[0]
        ids[key] = found
    conn.execute(m.FileUse.__table__.insert(), [dict(use, file_id=ids[(f["url"], f["sha256"])]) for f, use in files])
