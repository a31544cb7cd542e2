"""Recording in a separate process, so that writing the database never competes with the run's
own threads for the interpreter lock.

Data flow::

    kernel threads --emit()--> queue --shipper thread--> pipe --> writer process
                                      (events as tuples,          (StoreSink: batches,
                                       pickled in batches)         transactions, spool)

``emit`` only appends to a queue. The shipper thread turns each event into a plain tuple (a
``TaskCreated`` call is rendered to text first: it may hold live objects) and sends batches down
the writer process's standard input. The writer process rebuilds the events and hands them to a
``StoreSink``, which writes them as the in-process writer would. If the submitting script is
killed, the writer still writes everything it received, then exits at the end of its input.

If the writer process ends first (killed, or crashed), the run goes on:
the shipper logs an error and warns (naming the pid and the signal or exit status), then hands
this and every later batch to a ``StoreSink`` writer thread in this process, which writes to the
same database and spools to disk while it is unreachable, like any writer. What the dead process
had read but not yet committed, and what was still in the pipe, cannot be recovered: at most the
last second or so of events before it died, which the error message says may be missing. On
SIGTERM or SIGQUIT the writer first commits everything it has read, then exits. It runs in a
session of its own and ignores SIGINT: a ctrl-C at the terminal reaches every process of the
foreground group, and the kernel, which then records the run as interrupted and its unfinished
tasks as cancelled, still needs its writer.
``writer_process`` (``MonitoringHub.dbm_proc``, Parsl's name) is a handle on it.

The database URL travels in the first message on the pipe, never on the command line (where
other users could read it). The pipe connects a parent to the child it started, so what arrives
on it is trusted to unpickle.
"""
from __future__ import annotations

import functools
import logging
import os
import pathlib
import pickle
import queue
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any

from parsl_repro import events as ev
from parsl_repro.events import EventSink
from parsl_repro.monitoring.batching import batches
from parsl_repro.monitoring.recorded_values import RenderedArguments, RenderedReturn, ValueRenderer
from parsl_repro.utils import redact_secrets

if TYPE_CHECKING:
    from parsl_repro.monitoring.store import ProvenanceStore, StoreSink

logger = logging.getLogger("parsl_repro.monitoring.shipping")  # not "__main__" in the writer process

MAX_BATCH = 5000
WRITER_NICENESS = 10
"""How much lower the writer process's CPU priority is than the run's (os.nice): on a busy
machine it yields to the workflow and catches up when CPUs free, at the latest at cleanup."""
_EVENT_TYPES: tuple[type, ...] = (
    ev.TaskCreated, ev.TaskState, ev.TaskKeyed, ev.AppSeen, ev.TaskResult, ev.FileObserved, ev.RunEnded,
    ev.TryPlaced, ev.BlockState, ev.NodeSeen, ev.ResourceSample, ev.TaskInputs, ev.MemoTableLoaded, ev.RunStarted,
    ev.TaskCommand, RenderedArguments, RenderedReturn, ev.TaskJoined)
"""What crosses the pipe, each as (its index here, its fields as a plain tuple). A ``TaskCreated``
crosses rendered to text, as the fields of a ``rendering.RenderedTask``, which the writer rebuilds;
``TaskArguments`` and ``TaskReturned`` cross as the bytes and digests they are rendered to here
(``recorded_values``), on the shipper thread."""
_CODES = {cls: code for code, cls in enumerate(_EVENT_TYPES)}
_HEADER = struct.Struct(">Q")


def _encode(events: list, values: ValueRenderer) -> bytes:
    """A batch as it crosses the pipe. A ``PendingEnvironment`` not read yet crosses as what it read at
    once: the writer process captures the rest. ``values`` renders arguments and results."""
    from parsl_repro.monitoring.rendering import render_fields, render_inputs

    encoded = []
    append = encoded.append
    codes = _CODES
    created, arguments, returned = ev.TaskCreated, ev.TaskArguments, ev.TaskReturned
    arguments_code, returned_code = codes[RenderedArguments], codes[RenderedReturn]
    render_arguments, render_returned = values.arguments_fields, values.returned
    for event in events:  # the commonest kinds first: a memo hit makes several events per task
        kind = type(event)
        if kind is created:
            append((0, render_fields(event)))
        elif kind is arguments:
            append((arguments_code, render_arguments(event)))
        elif kind is returned:
            append((returned_code, tuple(render_returned(event))))
        else:
            code = codes.get(kind)
            if code is None:
                continue
            if kind is ev.TaskInputs:
                event = event._replace(inputs=render_inputs(event.inputs))
            append((code, tuple(event)))
    return pickle.dumps(encoded, protocol=pickle.HIGHEST_PROTOCOL)


def _send(pipe: IO[bytes], payload: bytes) -> None:
    pipe.write(_HEADER.pack(len(payload)))
    pipe.write(payload)
    pipe.flush()


def _receive(pipe: IO[bytes]) -> bytes | None:
    header = pipe.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    return pipe.read(_HEADER.unpack(header)[0])


class RunStore:
    """The store as a run's kernel holds it: checked before the run starts, written through a writer
    process, and opened in the kernel's process only when the kernel reads from it.

    ``check()`` refuses a store the run cannot record in (``StoreUnavailable``, ``SchemaTooNew``).
    An SQLite file is checked with the standard library's driver: its directory and permissions,
    that it is a database, and its schema version; creating or migrating the schema is left to the
    writer process, which does it before its first write. Any other database is opened here, as
    ``ProvenanceStore.open()`` does (SQLAlchemy, the schema made current), since the writer could
    only report a failure after the run had started.

    ``sink(started)`` starts the run's writer process. The reads the memoizer makes (its
    ``ResultStore``: ``load_results``, ``read_result``, ...) open a ``ProvenanceStore`` here on
    first use, the schema made current first.
    """

    def __init__(self, url: str, *, spool_dir: str | None = None, initialize_logging: bool | Any = True) -> None:
        self.url = url
        self.spool_dir = spool_dir
        self.initialize_logging = initialize_logging
        self._store: ProvenanceStore | None = None
        self._sink: ProcessSink | None = None
        self._lock = threading.Lock()

    def check(self) -> RunStore:
        """Raise ``StoreUnavailable`` or ``SchemaTooNew`` if this run cannot record in the store."""
        from parsl_repro.monitoring.engine import check_sqlite_file, sqlite_path
        from parsl_repro.monitoring.schema import SchemaTooNew, current_version, sqlite_stored_version

        path = sqlite_path(self.url)
        if path is None:
            self._open()
            return self
        try:
            check_sqlite_file(path)
            found = sqlite_stored_version(path)
        except (OSError, sqlite3.Error, ValueError) as e:  # ValueError: a version that is not a number
            from parsl_repro.monitoring.store import StoreUnavailable
            raise StoreUnavailable(self.url, e) from e
        if found is not None and found > current_version():
            raise SchemaTooNew(redact_secrets(self.url), found)
        if found != current_version():
            logger.info("The provenance store %s has schema version %s: the writer process brings it to %s",
                        path, found, current_version())
        return self

    def sink(self, started: ev.RunStarted) -> ProcessSink:
        """Start the writer process of the run ``started`` begins, and hand it ``started``; return the
        sink that feeds it the run's further events."""
        self._sink = ProcessSink(self.url, started.run_id, self.spool_dir, initialize_logging=self.initialize_logging,
                                 started=started)
        return self._sink

    def _open(self) -> ProvenanceStore:
        with self._lock:
            if self._store is None:
                from parsl_repro.monitoring.store import ProvenanceStore
                self._store = ProvenanceStore(self.url, spool_dir=self.spool_dir,
                                              initialize_logging=self.initialize_logging).open()
            return self._store

    def load_results(self, run_ids: list[str] | None) -> dict[str, Any]:
        """Memo key -> stored result, for results produced or reused by ``run_ids`` (every run when None)."""
        return self._open().load_results(run_ids)

    def read_result(self, memo_key: str, run_id: str) -> bytes:
        """The value of a result ``load_results`` left out."""
        return self._open().read_result(memo_key, run_id)

    def run_ids_for_rundirs(self, rundirs: Iterable[str]) -> list[str]:
        """The runs whose run directory is one of ``rundirs``."""
        return self._open().run_ids_for_rundirs(rundirs)

    def rundirs_of(self, run_ids: list[str]) -> list[str]:
        """The run directories of ``run_ids``."""
        return self._open().rundirs_of(run_ids)

    def newest_run(self, run_ids: Iterable[str]) -> str | None:
        """The most recently begun of ``run_ids`` that the store knows, or None."""
        return self._open().newest_run(run_ids)

    def close(self) -> None:
        """Let the writer process finish the run's record, and release the store if it was opened
        here. Safe to call twice."""
        if self._sink is not None:
            self._sink.close()
        with self._lock:
            if self._store is not None:
                self._store.close()


class ProcessSink(EventSink):
    """The kernel's sink for one run, writing through a writer process.

    ``started``, the run's ``RunStarted``, is sent before the sink is returned (with its environment
    still to capture, which the writer process does): a run killed at once still has its row.
    """

    def __init__(self, url: str, run_id: str, spool_dir: str | None, *, initialize_logging: bool | Any = True,
                 started: ev.RunStarted | None = None) -> None:
        self.run_id = run_id
        header = pickle.dumps({"url": url, "run_id": run_id, "spool_dir": spool_dir, "kernel_pid": os.getpid(),
                               "log_config": pickle.dumps(initialize_logging)})
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.emit = self._queue.put  # type: ignore[method-assign]  # the whole hot-path cost
        self._stop = threading.Event()
        self._closed = False
        self.error: BaseException | None = None
        # a session of its own: a ctrl-C at the terminal signals the foreground process group, and the
        # writer must outlive it (even while it is still starting) to record how the run ended; it
        # ends when this process closes its input, or dies
        self._process = subprocess.Popen([sys.executable, "-m", "parsl_repro.monitoring.shipping"],
                                         stdin=subprocess.PIPE, close_fds=True, start_new_session=True)
        assert self._process.stdin is not None
        self._pipe = self._process.stdin
        self.writer_process = WriterProcess(self._process)
        self._url, self._spool_dir = url, spool_dir
        self._fallback: StoreSink | None = None  # the in-process writer, once the writer process is gone
        self.dropped = 0
        self._writer_gone = False  # the writer process ended before close(): reported, fallback started
        self._values = ValueRenderer()
        _send(self._pipe, header)
        if started is not None:
            _send(self._pipe, _encode([started], self._values))
        self._thread = threading.Thread(target=self._ship, name=f"provenance-shipper-{run_id[:8]}", daemon=True)
        self._thread.start()

    def emit(self, event: Any) -> None:  # replaced per instance by queue.put in __init__
        self._queue.put(event)

    def _ship(self) -> None:

        for batch in batches(self._queue, self._stop, MAX_BATCH, idle=self._check_writer):
            if not self._writer_gone:
                try:
                    payload = _encode(batch, self._values)
                except Exception as e:  # a bug: surface it at close, keep the run going
                    logger.exception("%d provenance events of run %s could not be encoded and are not recorded",
                                     len(batch), self.run_id)
                    self.error = self.error or e
                    continue
                try:
                    _send(self._pipe, payload)
                    continue
                except OSError as e:
                    self._writer_lost(e)
            fallback = self._fallback
            if fallback is None:  # no writer at all: count what is lost, say so at close
                self.dropped += len(batch)
                continue
            for event in batch:
                fallback.emit(event)

    def _check_writer(self) -> None:
        """While no events come: notice a writer process that ended, so the user hears of it now."""
        if not self._writer_gone and not self.writer_process.is_alive():
            self._writer_lost(None)

    def _writer_lost(self, cause: OSError | None) -> None:
        """The writer process ended before ``close()``: say so, and record the rest of the run with a
        writer thread in this process."""
        from parsl_repro.monitoring.engine import make_engine
        from parsl_repro.monitoring.store import ProvenanceStore, StoreSink

        self._writer_gone = True
        self.writer_process.join(1.0)
        if self.writer_process.is_alive():  # the pipe broke under a live writer: one writer per run
            self.writer_process.terminate()
            self.writer_process.join(5.0)
        status = describe_exit(self.writer_process.exitcode)
        self.error = self.error or cause or RuntimeError(f"provenance writer process {status}")
        message = (f"the provenance writer process (pid {self.writer_process.pid}) of run {self.run_id} ended "
                   f"unexpectedly ({status}); the rest of the run is recorded by a writer thread in this process. "
                   f"Events it had received but not yet written (at most the last second or so) may be missing "
                   f"from the store.")
        logger.error("%s", message)
        warnings.warn(f"parsl_repro: {message}", RuntimeWarning, stacklevel=1)
        store = ProvenanceStore(self._url, spool_dir=self._spool_dir)
        try:
            try:  # the writer process may have ended before it made the schema current
                store.open()
            except Exception as e:
                # connecting then waits for the first batch: an unreachable database now means
                # spooling, not losing events
                logger.warning("The provenance store of run %s cannot be opened now (%s); its events are spooled "
                               "until it can", self.run_id, e)
                store.engine = make_engine(self._url, writer=True)
            self._fallback = StoreSink(store, self.run_id)
        except Exception:
            logger.exception("No writer thread could be started for run %s: its further events are not recorded",
                             self.run_id)

    def close(self) -> None:
        """Send what is queued, let the writer finish, and wait for it. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join()
        fallback = self._fallback
        if fallback is not None:
            fallback.close()
            fallback.store.close()
        try:
            self._pipe.close()
        except OSError:
            pass
        code = self._process.wait()
        if code != 0 and not self._writer_gone:
            logger.error("The provenance writer process of run %s ended (%s); events it had not yet written may be "
                         "missing from the store", self.run_id, describe_exit(code))
        if self.dropped:
            logger.error("%d provenance events of run %s were not recorded", self.dropped, self.run_id)


class WriterProcess:
    """A handle on the writer process with the parts of ``multiprocessing.Process`` that Parsl's
    tools and tests use: ``pid``, ``is_alive()``, ``exitcode`` (negative: the signal that ended it),
    ``join()``, ``terminate()``, ``kill()``. ``MonitoringHub.dbm_proc`` is one."""

    name = "provenance-writer"

    def __init__(self, process: subprocess.Popen) -> None:
        self._process = process

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def exitcode(self) -> int | None:
        return self._process.poll()

    def is_alive(self) -> bool:
        return self._process.poll() is None

    def join(self, timeout: float | None = None) -> None:
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def terminate(self) -> None:
        self._process.terminate()

    def kill(self) -> None:
        self._process.kill()

    def __repr__(self) -> str:
        return f"<WriterProcess pid={self.pid} {'alive' if self.is_alive() else describe_exit(self.exitcode)}>"


def describe_exit(code: int | None) -> str:
    """A process's exit code in words: "killed by SIGKILL", "exit status 1"."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGQUIT)


def _stop_on_signals() -> None:
    """In the writer process: SIGTERM and SIGQUIT end it after it commits what it has read
    (``writer_main``'s ``finally``), with exit status 128 + the signal; a second one ends it at once.
    SIGINT is ignored: the kernel ends the writer by closing its input when the run is recorded."""

    def stop(signum: int, frame: Any) -> None:
        for number in _STOP_SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        logger.warning("%s received: writing the events already read, then exiting", signal.Signals(signum).name)
        raise SystemExit(128 + signum)

    for number in _STOP_SIGNALS:
        signal.signal(number, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def writer_main(stream: IO[bytes]) -> int:
    """The writer process: read the header, then batches, until the end of the input."""
    from parsl_repro.monitoring.rendering import RenderedTask
    from parsl_repro.monitoring.store import ProvenanceStore, StoreSink

    _stop_on_signals()
    header = _receive(stream)
    if header is None:
        return 2
    try:  # recording is background work: when CPUs are scarce, the workflow goes first
        os.nice(WRITER_NICENESS)
    except OSError:
        pass
    settings = pickle.loads(header)
    stop_logging = _start_logging(settings)
    store = ProvenanceStore(settings["url"], spool_dir=settings["spool_dir"])
    store.open()
    sink = StoreSink(store, settings["run_id"], settings.get("kernel_pid"))
    logger.info("Provenance writer of run %s started (pid %d)", settings["run_id"], os.getpid())
    kinds = (RenderedTask, *_EVENT_TYPES[1:])
    run_started = _CODES[ev.RunStarted]
    received = 0
    try:
        while (payload := _receive(stream)) is not None:
            for code, fields in pickle.loads(payload):
                event = kinds[code]._make(fields)
                if code == run_started:
                    event = _with_captured_environment(event)
                sink.emit(event)
                received += 1
    finally:
        sink.close()
        store.close()
        logger.info("Provenance writer of run %s finished: %d events received, %d written, %d not recorded, into %s",
                    settings["run_id"], received, sink.written, sink.dropped, redact_secrets(settings["url"]))
        stop_logging()
    return 1 if sink.dropped or sink.error else 0


def _with_captured_environment(started: ev.RunStarted) -> ev.RunStarted:
    """``started`` with its environment captured, if the kernel sent it still to capture
    (``PendingEnvironment``): here, before the row's transaction, which must not wait for git."""
    from parsl_repro.monitoring.environment import PendingEnvironment

    environment = started.environment
    if isinstance(environment, PendingEnvironment):
        return started._replace(environment=environment.resolve())
    return started


def _start_logging(settings: dict[str, Any]) -> Callable[[], None]:
    """Start the writer's log in the run directory: through the run's ``LogConfig`` under the name
    ``database_manager``, else (``initialize_logging`` True or False, which only concerns the
    kernel's own log, as in Parsl) ``database_manager.log`` at INFO. Returns what stops it.
    Without a run directory there is no log file; warnings always go to stderr too."""
    from parsl_repro.logconfigs.base import oneshot_initialize_logging, oneshot_uninitialize_logging
    from parsl_repro.logconfigs.file import FileLogging

    run_dir = settings.get("spool_dir")
    if not run_dir:
        return _no_log
    try:
        chosen = pickle.loads(settings.get("log_config") or pickle.dumps(True))
    except Exception as e:  # a LogConfig class this process cannot import: keep the default
        logger.warning("cannot load the run's log configuration (%s: %s); writing database_manager.log",
                       type(e).__name__, e)
        chosen = True
    log_config = FileLogging(level=logging.INFO) if isinstance(chosen, bool) else chosen
    oneshot_initialize_logging(log_config=log_config, log_dir=pathlib.Path(run_dir), log_name="database_manager")
    return functools.partial(oneshot_uninitialize_logging, log_config=log_config)


def _no_log() -> None:
    """Stop a log that was never started."""


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="parsl_repro provenance writer: %(message)s")
    logging.getLogger().handlers[0].setLevel(logging.WARNING)  # a run's DEBUG log stays out of stderr
    sys.exit(writer_main(sys.stdin.buffer))
