"""The provenance store: opens the database, records a run, and writes the run's events in batches.

Data flow::

    kernel threads --emit()--> queue --writer thread--> one transaction per batch --> database
                                                   \\--(database unreachable)--> spool file
                                                                                    (replayed on return)

``emit`` only appends to a queue. The writer thread takes everything queued (up to
``MAX_BATCH`` events), turns it into row inserts and updates, and commits them together, so a
run killed with SIGKILL loses at most the last fraction of a second. If the database stops
answering (a PostgreSQL restart), batches go to an owner-only spool file under the run
directory and are written, in order, once it answers again; the user is warned, and anything
that cannot be kept is counted and reported, never dropped silently.
"""
from __future__ import annotations

import datetime
import json
import logging
import os
import pickle
import queue
import reprlib
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import DBAPIError, OperationalError

from parsl_repro.data_provider.files import public_url
from parsl_repro.errors import ParslError
from parsl_repro.events import (
    AppSeen,
    BlockState,
    EventSink,
    FileObserved,
    MemoTableLoaded,
    NodeSeen,
    ResourceSample,
    RunEnded,
    RunStarted,
    TaskCreated,
    TaskInputs,
    TaskKeyed,
    TaskResult,
    TaskState,
    TryPlaced,
)
from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.engine import StoreDirectoryMissing, make_engine
from parsl_repro.monitoring.schema import ensure_schema
from parsl_repro.task_states import CANCELLED, FAILED_STATES, FINISHED_STATES, SUBMITTED, SUCCEEDED_STATES, States

logger = logging.getLogger(__name__)

MAX_BATCH = 20_000
SPOOL_LIMIT_BYTES = 512 * 1024 * 1024
TRYING = frozenset({States.launched.name, States.running.name, States.running_ended.name})
"""States in which a try is open: the move out of one closes it."""
SUCCESS = frozenset({States.exec_done.name, States.joining.name, States.running_ended.name})
"""States whose move out of a try closes it without an error."""
PENDING = States.pending.name


class _ArgumentRepr(reprlib.Repr):
    """Bounded reprs for the task table: files by path and futures by task, never by address."""

    def repr_File(self, x: Any, level: int) -> str:  # noqa: N802 (reprlib dispatches on the type name)
        return f"File({public_url(x.url)!r})"

    def repr_DataFuture(self, x: Any, level: int) -> str:  # noqa: N802
        return f"<output {public_url(x.file_obj.url)!r} of task {x.tid}>"

    def repr_AppFuture(self, x: Any, level: int) -> str:  # noqa: N802
        return f"<result of task {x.tid}>"


_repr = _ArgumentRepr()
_repr.maxstring = 200
_repr.maxother = 200
_repr.maxlist = _repr.maxtuple = _repr.maxdict = 20


class StoreUnavailable(ParslError):
    """The provenance database cannot be reached or opened."""

    def __init__(self, url: str, cause: BaseException) -> None:
        super().__init__(url, cause)
        self.url = url
        self.cause = cause

    def __str__(self) -> str:
        advice = ("Create that directory, or choose another store with Config(provenance=URL)"
                  if isinstance(self.cause, StoreDirectoryMissing) else
                  "Check that the database is running and reachable, or choose another store with "
                  "Config(provenance=URL)")
        return (f"Cannot open the provenance store at {redact(self.url)}: {type(self.cause).__name__}: {self.cause}. "
                f"{advice}, or switch recording off with Config(provenance=False).")


def redact(url: str) -> str:
    """``url`` with any password replaced by ***, for messages and logs."""
    from sqlalchemy.engine import make_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


_EPOCH = datetime.datetime(1970, 1, 1)
_SECOND = datetime.timedelta(seconds=1)


def utc(t: float | None) -> datetime.datetime | None:
    """A ``time.time()`` value as a naive UTC datetime (what the DateTime columns hold).
    Anything else (None, or a value already converted by an earlier attempt) passes through."""
    if type(t) is not float and type(t) is not int:
        return t  # type: ignore[return-value]
    return _EPOCH + t * _SECOND


_stamp_cache: tuple[int, str] = (-1, "")  # (second, its text): replaced whole, so threads never mix halves


def _sqlite_stamp(t: float | None) -> str | None:
    """A ``time.time()`` value as the text SQLAlchemy stores for DateTime on SQLite
    (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC), for rows written straight to the driver."""
    global _stamp_cache
    if type(t) is not float and type(t) is not int:
        return t  # type: ignore[return-value]  # None, or converted by an earlier attempt
    second, fraction = divmod(round(t * 1_000_000), 1_000_000)
    cached = _stamp_cache
    if cached[0] != second:
        cached = _stamp_cache = (second, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{fraction:06d}"


@dataclass(frozen=True)
class StoredResult:
    """Where a memo key's result is: the run and task that produced it, and its outputs."""
    memo_key: str
    run_id: str
    task_id: int
    result_digest: str
    serializer: str
    value: bytes | None  # None when too large to load eagerly: read with ProvenanceStore.read_result
    outputs: tuple[tuple[str, str], ...]


class ProvenanceStore:
    """One database of runs. ``open()`` it, hand ``sink()`` to the kernel (whose first event, ``RunStarted``,
    writes the run's row), ``close()``."""

    def __init__(self, url: str, *, spool_dir: str | None = None, initialize_logging: bool | Any = True) -> None:
        self.url = url
        self.spool_dir = spool_dir
        self.initialize_logging = initialize_logging  # the writer process's log, as Config's field
        self.engine: Engine | None = None
        self._sink: EventSink | None = None

    # --- opening ----------------------------------------------------------------------------------
    def open(self) -> ProvenanceStore:
        """Connect and make sure the schema is current; raise ``StoreUnavailable`` or ``SchemaTooNew``."""
        from parsl_repro.monitoring.schema import SchemaTooNew

        try:
            engine = make_engine(self.url, writer=True)
        except ModuleNotFoundError as e:
            missing = RuntimeError(f"the database driver {e.name!r} is not installed "
                                   f"(for PostgreSQL: pip install -e '.[monitoring]')")
            raise StoreUnavailable(self.url, missing) from e
        except Exception as e:
            raise StoreUnavailable(self.url, e) from e
        try:
            ensure_schema(engine, redact(self.url))
        except SchemaTooNew:
            engine.dispose()
            raise
        except Exception as e:
            engine.dispose()
            raise StoreUnavailable(self.url, e) from e
        self.engine = engine
        return self

    def newest_run(self, run_ids: Iterable[str]) -> str | None:
        """The most recently begun of ``run_ids`` that the store knows, or None."""
        assert self.engine is not None
        wanted = list(run_ids)
        if not wanted:
            return None
        w = m.Workflow
        with self.engine.connect() as conn:
            return conn.execute(select(w.run_id).where(w.run_id.in_(wanted)).order_by(w.time_began.desc())
                                .limit(1)).scalar()

    def sink(self, run_id: str, *, in_process: bool = False) -> EventSink:
        """The event sink for this run: a writer process (default), or a writer thread here."""
        assert self.engine is not None
        if in_process:
            self._sink = StoreSink(self, run_id)
        else:
            from parsl_repro.monitoring.shipping import ProcessSink
            self._sink = ProcessSink(self.url, run_id, self.spool_dir, initialize_logging=self.initialize_logging)
        return self._sink

    # --- memo table -------------------------------------------------------------------------------------
    def run_ids_for_rundirs(self, rundirs: Iterable[str]) -> list[str]:
        """The runs whose per-run directory is one of ``rundirs`` (a checkpoint path's parent)."""
        wanted = [os.path.abspath(d) for d in rundirs]
        if not wanted:
            return []
        assert self.engine is not None
        with self.engine.connect() as conn:
            rows = conn.execute(select(m.Workflow.run_id, m.Workflow.rundir).where(m.Workflow.rundir.in_(wanted)))
            return [r.run_id for r in rows]

    def rundirs_of(self, run_ids: list[str]) -> list[str]:
        assert self.engine is not None
        with self.engine.connect() as conn:
            return list(conn.execute(select(m.Workflow.rundir).where(m.Workflow.run_id.in_(run_ids))).scalars())

    def load_results(self, run_ids: list[str] | None, *, eager_limit: int = 64 * 1024) -> dict[str, StoredResult]:
        """The memo table: memo key -> stored result, for results produced or reused by ``run_ids``
        (every run when None). Where several runs stored a key, a run in ``run_ids`` wins over
        others, then the newest. Values up to ``eager_limit`` bytes are loaded now; larger ones later."""
        assert self.engine is not None
        r, t = m.Result, m.Task
        columns = [r.memo_key, r.run_id, r.task_id, r.result_digest, r.serializer, r.size, r.outputs, r.value]
        query = select(*columns)
        if run_ids is not None:
            if not run_ids:
                return {}
            succeeded = t.task_status_name.in_(SUCCEEDED_STATES)
            used = select(t.task_hashsum).where(t.run_id.in_(run_ids), succeeded)
            query = query.where(r.memo_key.in_(used)).order_by(r.run_id.in_(run_ids), r.created)
        else:
            query = query.order_by(r.created)
        table: dict[str, StoredResult] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                outputs = tuple(tuple(pair) for pair in json.loads(row.outputs)) if row.outputs else ()
                value = bytes(row.value) if row.size <= eager_limit else None
                table[row.memo_key] = StoredResult(row.memo_key, row.run_id, row.task_id, row.result_digest,
                                                   row.serializer, value, outputs)  # type: ignore[arg-type]
        return table

    def read_result(self, memo_key: str, run_id: str) -> bytes:
        assert self.engine is not None
        with self.engine.connect() as conn:
            value = conn.execute(select(m.Result.value).where(m.Result.memo_key == memo_key,
                                                              m.Result.run_id == run_id)).scalar_one()
        return bytes(value)

    def close(self) -> None:
        """Write everything queued, stop the writer and release the database. Safe to call twice."""
        if self._sink is not None:
            self._sink.close()
        if self.engine is not None:
            self.engine.dispose()


def _begin_run(conn: Any, started: RunStarted) -> None:
    """Write a run's row (and its package list, once per distinct set) from its ``RunStarted``,
    after marking the runs of its host that were left running by a process now gone as killed."""
    from parsl_repro.version import VERSION

    env = started.environment or {}
    if env.get("host"):
        _mark_killed_runs(conn, env["host"])
    if env.get("packages_digest"):
        _insert_ignore(conn, m.Environment.__table__, [{"packages_digest": env["packages_digest"],
                                                        "packages": json.dumps(env.get("packages") or [])}])
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
        "git_diff_sha256": env.get("git_diff_sha256"), "parsl_repro_version": VERSION}])


def _mark_killed_runs(conn: Any, host: str) -> None:
    """Runs on ``host`` still marked running whose process is gone ended abruptly: mark them
    ``killed``, with the task counts a clean end would have written (their tasks stay as they are)."""
    w = m.Workflow
    stale = [row.run_id for row in conn.execute(select(w.run_id, w.pid).where(
        w.host == host, w.outcome == "running", w.pid.is_not(None))) if not _alive(row.pid)]
    for run_id in stale:
        counts = dict(conn.execute(select(m.Task.task_status_name, func.count()).where(
            m.Task.run_id == run_id).group_by(m.Task.task_status_name)).all())
        conn.execute(update(w).where(w.run_id == run_id).values(outcome="killed", **run_counts(counts)))


def run_counts(state_counts: dict[str, int]) -> dict[str, int]:
    """The run row's task counts from counts of tasks by state: cancelled tasks are neither."""
    return {"tasks_completed_count": sum(state_counts.get(state, 0) for state in SUCCEEDED_STATES),
            "tasks_failed_count": sum(state_counts.get(state, 0) for state in FAILED_STATES)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unreachable(error: DBAPIError) -> bool:
    """Whether a database error means "cannot reach the database" (worth spooling and retrying)."""
    return bool(error.connection_invalidated) or isinstance(error, OperationalError)


def _insert_ignore(conn: Any, table: Any, rows: list[dict]) -> None:
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


PACE = 0.05
"""Seconds a writer waits after a small batch before taking the next: events then arrive in
batches of hundreds, not ones and twos, and the per-batch cost (a transaction, a pipe write)
stays off each event. A full batch is followed at once; closing never waits."""


def batches(events: queue.SimpleQueue, stop: threading.Event, limit: int, idle: Any = None,
            pace: float = PACE) -> Iterator[list]:
    """Yield lists of queued events, up to ``limit`` each, until ``stop`` is set and the queue is
    empty. ``idle()`` runs whenever a wait finds nothing."""
    while True:
        try:
            first = events.get(timeout=0.05)
        except queue.Empty:
            if stop.is_set():
                return
            if idle is not None:
                idle()
            continue
        started = time.monotonic()
        batch = [first]
        while len(batch) < limit:
            try:
                batch.append(events.get_nowait())
            except queue.Empty:
                break
        yield batch
        if len(batch) < limit:
            stop.wait(pace - (time.monotonic() - started))


class StoreSink(EventSink):
    """The kernel's sink for one run: ``emit`` queues, a writer thread writes batches."""

    def __init__(self, store: ProvenanceStore, run_id: str, kernel_pid: int | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self.host = socket.gethostname()  # the kernel's host: this sink runs beside it
        self.kernel_pid = kernel_pid or os.getpid()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.emit = self._queue.put  # type: ignore[method-assign]  # the whole hot-path cost
        self._stop = threading.Event()
        self._closed = False
        self.error: BaseException | None = None
        self.written = 0
        self.dropped = 0
        self._spool = _Spool(store.spool_dir, run_id) if store.spool_dir else None
        self._warned = False
        self._file_digests: Any = None
        self._held = _HeldRows()
        self._thread = threading.Thread(target=self._run, name=f"provenance-writer-{run_id[:8]}", daemon=True)
        self._thread.start()

    def emit(self, event: Any) -> None:  # replaced per instance by queue.put in __init__
        self._queue.put(event)

    # --- writer thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        for batch in batches(self._queue, self._stop, MAX_BATCH, idle=self._idle):
            self._write_or_spool(batch)
        self._write_or_spool([], hold=False)
        self._retry_spool(final=True)

    def _idle(self) -> None:
        if self._held.due():
            self._write_or_spool([])
        self._retry_spool()

    def _write_or_spool(self, batch: list, hold: bool = True) -> None:
        try:
            rows = self._rows(batch)
            self._held.take_unfinished(rows, hold)
        except Exception as e:  # a bug: keep going, but surface it to the owner at close
            logger.exception("Provenance writer could not read a batch of %d events", len(batch))
            self.error = self.error or e
            self._lost(len(batch), e)
            return
        if rows.empty():
            return
        if self._spool is not None and self._spool.pending:
            self._spool.append(rows, self)
            self._retry_spool()
            return
        try:
            self._write(rows)
        except DBAPIError as e:
            if not _unreachable(e) or self._spool is None:
                logger.exception("Provenance writer failed on a batch of %d events", len(batch))
                self.error = self.error or e
                self._lost(rows.size, e)
                return
            self._tell_user(f"the provenance database stopped answering ({type(e).__name__}); events are kept in "
                            f"{self._spool.path} and will be written when it returns")
            self._spool.append(rows, self)

    def _retry_spool(self, final: bool = False) -> None:
        spool = self._spool
        if spool is None or not spool.pending:
            return
        deadline = time.monotonic() + (10.0 if final else 0.0)
        while True:
            if spool.due() or final:
                try:
                    for index, rows in enumerate(spool.batches()):
                        if index < spool.replayed:
                            continue
                        self._write(rows)
                        spool.replayed += 1
                    spool.clear()
                    self._tell_user(f"the provenance database is back; spooled events written from {spool.path}")
                    return
                except (OperationalError, DBAPIError):
                    spool.backoff()
            if time.monotonic() >= deadline:
                if final:
                    self._tell_user(f"the provenance database is still unreachable; {spool.count} events remain in "
                                    f"{spool.path}")
                return
            time.sleep(0.5)

    def _lost(self, count: int, error: BaseException) -> None:
        self.dropped += count
        self._tell_user(f"{count} provenance records could not be written: {type(error).__name__}: {error}")

    def _tell_user(self, message: str) -> None:
        logger.warning("%s", message)
        warnings.warn(f"parsl_repro: {message}", RuntimeWarning, stacklevel=1)

    # --- events -> rows -------------------------------------------------------------------------------
    def _rows(self, batch: list) -> _BatchRows:
        rows = _BatchRows()
        self._held.give_back(rows)
        for event in batch:
            handler = _HANDLERS.get(type(event))
            if handler is not None:
                handler(self, rows, event)
        rows.size = len(batch)
        return rows

    def _write(self, rows: _BatchRows) -> None:
        engine = self.store.engine
        assert engine is not None
        with engine.begin() as conn:
            rows.write(conn)
        self.written += rows.size

    def file_digest(self, path: str) -> tuple[str | None, int | None, float | None]:
        try:
            st = os.stat(path)
        except OSError:
            return None, None, None
        if self._file_digests is None:
            from parsl_repro.monitoring.canonical import FileDigestCache
            self._file_digests = FileDigestCache()
        try:
            sha = self._file_digests.sha256(path)
        except OSError:
            return None, None, None
        return sha, st.st_size, st.st_mtime

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join()
        if self.dropped:
            logger.error("%d provenance events of run %s were not recorded", self.dropped, self.run_id)


TASK_COLUMNS = (
    "run_id", "task_id", "task_func_name", "task_memoize", "task_depends", "task_time_invoked", "task_inputs",
    "task_outputs", "task_stdin", "task_stdout", "task_stderr", "task_fail_count", "task_fail_cost", "app_kind",
    "executor", "args_repr", "task_hashsum", "task_time_returned", "task_status_name", "app_digest",
    "memo_components", "cache_note", "result_digest", "memo_source_run", "memo_source_task", "error")
TRY_COLUMNS = (
    "run_id", "task_id", "try_id", "task_executor", "task_try_time_launched", "task_try_time_returned", "error",
    "task_fail_history", "task_try_time_running", "hostname", "block_id", "manager", "pid")
STATUS_COLUMNS = (
    "run_id", "task_id", "try_id", "task_status_name", "timestamp", "previous_status_name", "cause", "detail")
_TASK_INDEX = {name: i for i, name in enumerate(TASK_COLUMNS)}
_TIME_COLUMNS = {"task_time_returned", "task_try_time_returned", "task_try_time_running"}  # floats until written
_TRY_INDEX = {name: i for i, name in enumerate(TRY_COLUMNS)}


def _insert_sql(conn: Any, table: str, columns: tuple[str, ...]) -> str:
    style = conn.dialect.paramstyle
    marks = ", ".join("?" if style == "qmark" else "%s" for _ in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    return f'INSERT INTO "{table}" ({names}) VALUES ({marks})'


class _HeldRows:
    """Rows of tasks and tries still in progress, kept back from the batch that made them for up
    to ``HOLD_SECONDS`` so that a short task is one INSERT with its final values instead of an
    INSERT and an UPDATE. Finished tasks are never held: what is done is written at once."""

    HOLD_SECONDS = 1.0

    def __init__(self) -> None:
        self.tasks: dict[tuple[str, int], list] = {}
        self.tries: dict[tuple[str, int, int], list] = {}
        self.oldest = float("inf")

    def give_back(self, rows: _BatchRows) -> None:
        rows.tasks, self.tasks = self.tasks, {}
        rows.tries, self.tries = self.tries, {}
        self.oldest = float("inf")

    def take_unfinished(self, rows: _BatchRows, hold: bool) -> None:
        if not hold:
            return
        horizon = time.time() - self.HOLD_SECONDS
        state, invoked_at = _TASK_INDEX["task_status_name"], _TASK_INDEX["task_time_invoked"]
        launched_at, returned_at = _TRY_INDEX["task_try_time_launched"], _TRY_INDEX["task_try_time_returned"]
        for key, row in list(rows.tasks.items()):
            invoked = row[invoked_at]
            if row[state] not in FINISHED_STATES and type(invoked) is float and invoked > horizon:
                self.tasks[key] = rows.tasks.pop(key)
                self.oldest = min(self.oldest, invoked)
        for key, row in list(rows.tries.items()):
            launched = row[launched_at]
            if row[returned_at] is None and type(launched) is float and launched > horizon:
                self.tries[key] = rows.tries.pop(key)
                self.oldest = min(self.oldest, launched)

    def due(self) -> bool:
        return time.time() - self.oldest >= self.HOLD_SECONDS


class _BatchRows:
    """The rows one batch will write. Rows of tasks and tries created in this batch are plain
    lists that later events of the batch fill in, so a task that starts and ends within one batch
    costs one insert; the hot tables go to the driver's executemany as tuples."""

    def __init__(self) -> None:
        self.size = 0  # events that made these rows
        self.tasks: dict[tuple[str, int], list] = {}
        self.task_updates: dict[tuple[str, int], dict] = {}
        self.tries: dict[tuple[str, int, int], list] = {}
        self.try_updates: dict[tuple[str, int, int], dict] = {}
        self.status: list[tuple] = []
        self.dependencies: list[dict] = []
        self.apps: list[dict] = []
        self.results: list[dict] = []
        self.files: list[tuple[dict, dict]] = []
        self.workflow_updates: list[dict] = []
        self.run_starts: list[RunStarted] = []  # written first: every other row of a run refers to its row
        self.inserts: dict[Any, list[dict]] = {}  # table -> plain rows (blocks, nodes, resource samples)

    def empty(self) -> bool:
        return not (self.tasks or self.task_updates or self.tries or self.try_updates or self.status
                    or self.dependencies or self.apps or self.results or self.files or self.workflow_updates
                    or self.inserts or self.run_starts)

    def update_task(self, run_id: str, task_id: int, **values: Any) -> None:
        key = (run_id, task_id)
        row = self.tasks.get(key)
        if row is None:
            self.task_updates.setdefault(key, {}).update(values)
            return
        for name, value in values.items():
            row[_TASK_INDEX[name]] = value

    def update_try(self, run_id: str, task_id: int, try_id: int, **values: Any) -> None:
        key = (run_id, task_id, try_id)
        row = self.tries.get(key)
        if row is None:
            self.try_updates.setdefault(key, {}).update(values)
            return
        for name, value in values.items():
            row[_TRY_INDEX[name]] = value

    def write(self, conn: Any) -> None:
        stamp = _sqlite_stamp if conn.dialect.name == "sqlite" else utc
        for started in self.run_starts:
            _begin_run(conn, started)
        _insert_ignore(conn, m.App.__table__, self.apps)
        if self.tasks:
            rows = []
            for r in self.tasks.values():
                r[5], r[17] = stamp(r[5]), stamp(r[17])
                rows.append(tuple(r))
            conn.exec_driver_sql(_insert_sql(conn, "task", TASK_COLUMNS), rows)
        _update_many(conn, "task", ("run_id", "task_id"), self.task_updates, stamp)
        if self.tries:
            rows = []
            for r in self.tries.values():
                r[4], r[5], r[8] = stamp(r[4]), stamp(r[5]), stamp(r[8])
                rows.append(tuple(r))
            conn.exec_driver_sql(_insert_sql(conn, "try", TRY_COLUMNS), rows)
        _update_many(conn, "try", ("run_id", "task_id", "try_id"), self.try_updates, stamp)
        if self.status:
            conn.exec_driver_sql(_insert_sql(conn, "status", STATUS_COLUMNS),
                                 [(r[0], r[1], r[2], r[3], stamp(r[4]), r[5], r[6], r[7]) for r in self.status])
        _insert_ignore(conn, m.Dependency.__table__, self.dependencies)
        _insert_ignore(conn, m.Result.__table__, self.results)
        if self.files:
            _write_files(conn, self.files)
        for table, table_rows in self.inserts.items():
            conn.execute(table.insert(), table_rows)
        for values in self.workflow_updates:
            run_id = values.pop("run_id")
            conn.execute(update(m.Workflow).where(m.Workflow.run_id == run_id).values(**values))


def _update_many(conn: Any, table: str, key_names: tuple[str, ...], updates: dict[tuple, dict],
                 stamp: Callable[[Any], Any]) -> None:
    """UPDATE rows written by earlier batches, one executemany per set of changed columns."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    groups: dict[tuple[str, ...], list[tuple]] = {}
    for key, values in updates.items():
        for name in _TIME_COLUMNS.intersection(values):
            values[name] = stamp(values[name])
        columns = tuple(sorted(values))
        groups.setdefault(columns, []).append((*(values[c] for c in columns), *key))
    for columns, rows in groups.items():
        assignments = ", ".join(f'"{c}" = {mark}' for c in columns)
        where = " AND ".join(f'"{k}" = {mark}' for k in key_names)
        conn.exec_driver_sql(f'UPDATE "{table}" SET {assignments} WHERE {where}', rows)


def _write_files(conn: Any, files: list[tuple[dict, dict]]) -> None:
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


# --- one handler per event type ----------------------------------------------------------------------
class RenderedTask(NamedTuple):
    """A ``TaskCreated`` with its call turned into text: what the task row needs, and nothing that
    refers to live objects, so it can cross a process boundary."""
    run_id: str
    task_id: int
    time: float
    func_name: str
    app_kind: str
    executor: str
    depends_on: tuple[int, ...]
    memoize: bool
    args_repr: str
    inputs: str | None
    outputs: str | None
    stdin: str | None
    stdout: str | None
    stderr: str | None


def render(e: TaskCreated) -> RenderedTask:
    return RenderedTask(*render_fields(e))


def render_fields(e: TaskCreated) -> tuple:
    """``render(e)`` as a plain tuple: what the writer process is sent (no named tuple built)."""
    kwargs = e.kwargs
    if not kwargs:
        args = e.args
        return (e.run_id, e.task_id, e.time, e.func_name, e.app_kind, e.executor, e.depends_on, e.memoize,
                _call_repr(args, {}) if args else "()", None, None, None, None, None)
    return (e.run_id, e.task_id, e.time, e.func_name, e.app_kind, e.executor, e.depends_on, e.memoize,
            _call_repr(e.args, kwargs), _bounded(kwargs.get("inputs")), _bounded(kwargs.get("outputs")),
            _bounded(kwargs.get("stdin")), _stream(kwargs, "stdout"), _stream(kwargs, "stderr"))


def render_inputs(inputs: Any) -> str | None:
    """``inputs=`` as the task table's ``task_inputs`` shows it."""
    return inputs if isinstance(inputs, str) else _bounded(inputs)


def _on_task_inputs(sink: StoreSink, rows: _BatchRows, e: TaskInputs) -> None:
    rows.update_task(e.run_id, e.task_id, task_inputs=render_inputs(e.inputs))


def _on_task_created(sink: StoreSink, rows: _BatchRows, e: TaskCreated) -> None:
    _on_rendered_task(sink, rows, render(e))


def _on_rendered_task(sink: StoreSink, rows: _BatchRows, e: RenderedTask) -> None:
    row = [None] * len(TASK_COLUMNS)
    row[0], row[1], row[2], row[3] = e.run_id, e.task_id, e.func_name, "True" if e.memoize else "False"
    row[4] = ",".join(map(str, e.depends_on)) if e.depends_on else None
    row[5] = e.time
    row[6], row[7], row[8], row[9], row[10] = e.inputs, e.outputs, e.stdin, e.stdout, e.stderr
    row[11], row[12], row[13], row[14] = 0, 0.0, e.app_kind, e.executor
    row[15] = e.args_repr
    row[18] = PENDING
    rows.tasks[(e.run_id, e.task_id)] = row
    rows.status.append((e.run_id, e.task_id, 0, PENDING, e.time, None, SUBMITTED, None))
    if e.depends_on:
        for dep in dict.fromkeys(e.depends_on):
            rows.dependencies.append({"run_id": e.run_id, "task_id": e.task_id, "depends_on": dep, "kind": "data"})


def _file_of(value: Any) -> Any:
    """The File a value stands for (a File or a DataFuture), else None. Never getattr on other
    objects: an AppFuture turns attribute access into a new task."""
    from parsl_repro.app.futures import DataFuture
    from parsl_repro.data_provider.files import File

    if isinstance(value, File):
        return value
    if isinstance(value, DataFuture):
        return value.file_obj
    return None


def _stream(kwargs: dict, name: str) -> str:
    """A task's stdout or stderr as Parsl's monitoring records it: the URL of a File, the path
    of a path (with or without a mode), or "" when there is none."""
    spec = kwargs.get(name)
    if spec is None:
        return ""
    if isinstance(spec, tuple):
        spec = spec[0]
    file = _file_of(spec)
    if file is not None:
        return public_url(file.url)
    return os.fsdecode(spec) if isinstance(spec, (str, bytes, os.PathLike)) else str(spec)


def _on_task_state(sink: StoreSink, rows: _BatchRows, e: TaskState) -> None:
    when = e.time  # converted for the database in _BatchRows.write
    rows.status.append((e.run_id, e.task_id, e.try_id, e.new, when, e.old, e.cause, e.detail))
    if e.new in FINISHED_STATES:
        values: dict[str, Any] = {"task_status_name": e.new, "task_time_returned": when,  # counts as charged
                                  "task_fail_count": e.fail_count or 0, "task_fail_cost": e.fail_cost or 0.0}
        if e.new in FAILED_STATES:
            values["error"] = e.detail
        rows.update_task(e.run_id, e.task_id, **values)
    else:
        rows.update_task(e.run_id, e.task_id, task_status_name=e.new)
    if e.new == "launched":
        row = [None] * len(TRY_COLUMNS)
        row[0], row[1], row[2], row[3], row[4] = e.run_id, e.task_id, e.try_id, e.detail, when
        rows.tries[(e.run_id, e.task_id, e.try_id)] = row
    elif e.old in TRYING and e.new not in TRYING:
        error = None if e.new in SUCCESS else f"cancelled: {e.detail}" if e.new == CANCELLED else e.detail
        if e.running:  # ran in the kernel's process (threads): its host and pid
            rows.update_try(e.run_id, e.task_id, e.try_id, task_try_time_returned=when, error=error,
                            task_fail_history=error, task_try_time_running=e.running, hostname=sink.host,
                            pid=sink.kernel_pid)
        else:
            rows.update_try(e.run_id, e.task_id, e.try_id, task_try_time_returned=when, error=error,
                            task_fail_history=error)


def _on_task_keyed(sink: StoreSink, rows: _BatchRows, e: TaskKeyed) -> None:
    rows.update_task(e.run_id, e.task_id, task_hashsum=e.memo_key, app_digest=e.app_digest,
                     memo_components=json.dumps(e.components, sort_keys=True), cache_note=e.note)
    if e.source_run is not None:
        rows.update_task(e.run_id, e.task_id, memo_source_run=e.source_run, memo_source_task=e.source_task)


def _on_app_seen(sink: StoreSink, rows: _BatchRows, e: AppSeen) -> None:
    rows.apps.append({"app_digest": e.app_digest, "qualname": e.qualname, "module": e.module, "kind": e.kind,
                      "source": e.source, "components": json.dumps(e.components, sort_keys=True)})


def _on_task_result(sink: StoreSink, rows: _BatchRows, e: TaskResult) -> None:
    rows.results.append({"memo_key": e.memo_key, "run_id": e.run_id, "task_id": e.task_id,
                         "result_digest": e.result_digest, "serializer": e.serializer, "size": len(e.value),
                         "value": e.value, "outputs": json.dumps([list(o) for o in e.outputs]) if e.outputs else None,
                         "created": utc(e.time)})
    rows.update_task(e.run_id, e.task_id, result_digest=e.result_digest)
    for path, digest in e.outputs:
        _observe(sink, rows, e.run_id, e.task_id, 0, e.time, path, "output", "file", sha256=digest)


def _on_file_observed(sink: StoreSink, rows: _BatchRows, e: FileObserved) -> None:
    scheme = urlsplit(e.url).scheme or "file"
    url = e.url if scheme == "file" else public_url(e.url)
    _observe(sink, rows, e.run_id, e.task_id, e.try_id, e.time, url, e.role, scheme, e.sha256, e.size, e.mtime)


def _observe(sink: StoreSink, rows: _BatchRows, run_id: str, task_id: int, try_id: int, t: float, url: str, role: str,
             scheme: str, sha256: str | None = None, size: int | None = None, mtime: float | None = None) -> None:
    if scheme == "file":
        path = url[len("file://"):] if url.startswith("file://") else url
        url = os.path.abspath(path)
        if sha256 is None or size is None:
            digest, size, mtime = sink.file_digest(url)
            sha256 = sha256 or digest
    entity = {"url": url, "sha256": sha256, "size": size, "mtime": mtime}
    use = {"run_id": run_id, "task_id": task_id, "try_id": try_id, "role": role, "timestamp": utc(t)}
    rows.files.append((entity, use))


def _on_try_placed(sink: StoreSink, rows: _BatchRows, e: TryPlaced) -> None:
    rows.update_try(e.run_id, e.task_id, e.try_id, hostname=e.hostname, block_id=e.block_id, manager=e.manager,
                    pid=e.pid, task_try_time_running=e.time)


def _on_block_state(sink: StoreSink, rows: _BatchRows, e: BlockState) -> None:
    rows.inserts.setdefault(m.Block.__table__, []).append({
        "run_id": e.run_id, "executor_label": e.executor, "block_id": e.block_id, "timestamp": utc(e.time),
        "job_id": e.job_id, "status": e.state})


def _on_node_seen(sink: StoreSink, rows: _BatchRows, e: NodeSeen) -> None:
    rows.inserts.setdefault(m.Node.__table__, []).append({
        "run_id": e.run_id, "hostname": e.hostname, "uid": e.manager, "block_id": e.block_id or "",
        "cpu_count": e.cpu_count, "total_memory": e.total_memory, "active": e.active,
        "worker_count": e.worker_count, "python_v": e.python_version, "timestamp": utc(e.time),
        "last_heartbeat": utc(e.time)})


def _on_resource_sample(sink: StoreSink, rows: _BatchRows, e: ResourceSample) -> None:
    rows.inserts.setdefault(m.Resource.__table__, []).append({
        "run_id": e.run_id, "task_id": e.task_id, "try_id": e.try_id, "timestamp": utc(e.time),
        "resource_monitoring_interval": e.interval, "psutil_process_pid": e.pid,
        "psutil_process_memory_percent": e.memory_percent, "psutil_process_children_count": e.children,
        "psutil_process_time_user": e.cpu_user, "psutil_process_time_system": e.cpu_system,
        "psutil_process_memory_virtual": e.memory_virtual, "psutil_process_memory_resident": e.memory_resident,
        "psutil_process_disk_read": e.disk_read, "psutil_process_disk_write": e.disk_write,
        "psutil_process_status": e.status})


def _on_run_ended(sink: StoreSink, rows: _BatchRows, e: RunEnded) -> None:
    rows.workflow_updates.append({"run_id": e.run_id, "time_completed": utc(e.time), "outcome": e.outcome,
                                  **run_counts(e.state_counts)})


def _on_memo_table_loaded(sink: StoreSink, rows: _BatchRows, e: MemoTableLoaded) -> None:
    values = {"run_id": e.run_id, "memo_sources": json.dumps({
        "enabled": e.enabled, "from_store": e.from_store, "runs": list(e.runs), "files": list(e.files),
        "results": e.results})}
    if e.parent_run_id is not None:
        values["parent_run_id"] = e.parent_run_id
    rows.workflow_updates.append(values)


def _on_run_started(sink: StoreSink, rows: _BatchRows, e: RunStarted) -> None:
    rows.run_starts.append(e)


_HANDLERS: dict[type, Any] = {
    TaskCreated: _on_task_created, RenderedTask: _on_rendered_task, TaskState: _on_task_state,
    TaskKeyed: _on_task_keyed, AppSeen: _on_app_seen, TaskResult: _on_task_result, TaskInputs: _on_task_inputs,
    FileObserved: _on_file_observed, RunEnded: _on_run_ended, TryPlaced: _on_try_placed,
    BlockState: _on_block_state, NodeSeen: _on_node_seen, ResourceSample: _on_resource_sample,
    MemoTableLoaded: _on_memo_table_loaded, RunStarted: _on_run_started,
}


_SIMPLE = (int, float, bool, type(None))


def _bounded(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) in _SIMPLE or (type(value) is str and len(value) <= 200):
        return repr(value)
    try:
        return _repr.repr(value)
    except Exception:
        return f"<{type(value).__name__}>"


def _call_repr(args: tuple, kwargs: dict) -> str:
    parts = [_bounded(a) or "None" for a in args]
    parts += [f"{k}={_bounded(v)}" for k, v in kwargs.items()]
    text = "(" + ", ".join(parts) + ")"
    return text if len(text) <= 2000 else text[:1997] + "..."


def replay_spool(url: str, path: str) -> int:
    """Write a spool file left behind by a run whose database was unreachable to the end, then
    delete it. Returns the number of events written. The file is this project's own (made
    owner-only by the run that wrote it)."""
    store = ProvenanceStore(url).open()
    try:
        spool = _Spool(os.path.dirname(path) or ".", "")
        spool.path = path
        written = 0
        engine = store.engine
        assert engine is not None
        for rows in spool.batches():
            with engine.begin() as conn:
                rows.write(conn)
            written += rows.size
        os.unlink(path)
        return written
    finally:
        store.close()


class _Spool:
    """Batches kept on disk while the database is unreachable, in order, owner-only."""

    def __init__(self, directory: str, run_id: str) -> None:
        self.path = os.path.join(directory, f"provenance-spool-{run_id}.pickle")
        self.count = 0
        self.size = 0
        self.replayed = 0  # batches already written back, so a replay interrupted midway is not repeated
        self._next_try = 0.0
        self._delay = 0.5

    @property
    def pending(self) -> bool:
        return self.count > 0

    def append(self, rows: _BatchRows, sink: StoreSink) -> None:
        data = pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)  # plain values only: strings, numbers, times
        if self.size + len(data) > SPOOL_LIMIT_BYTES:
            sink._lost(rows.size, RuntimeError(f"spool {self.path} is full ({SPOOL_LIMIT_BYTES} bytes)"))
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as f:
            f.write(len(data).to_bytes(8, "big"))
            f.write(data)
        self.count += rows.size
        self.size += len(data)

    def batches(self) -> Iterable[_BatchRows]:
        # our own file, written by this process: not data from a peer
        with open(self.path, "rb") as f:
            while header := f.read(8):
                yield pickle.loads(f.read(int.from_bytes(header, "big")))

    def clear(self) -> None:
        os.unlink(self.path)
        self.count = self.size = self.replayed = 0
        self._delay = 0.5

    def due(self) -> bool:
        return time.monotonic() >= self._next_try

    def backoff(self) -> None:
        self._next_try = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, 10.0)
