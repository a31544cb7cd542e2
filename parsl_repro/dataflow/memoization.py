"""Memoization: a task whose app and arguments match an earlier task reuses that task's result.

The key (``memo_key``) covers the app's identity (its normalised source and what it references,
so a changed body or helper is a miss and a changed comment is not), the arguments serialized
canonically, ``File`` inputs by content, and ``outputs`` by name; ``ignore_for_cache`` names
arguments it leaves out. ``id_for_memo`` is Parsl's extension point for user types. A value that
cannot be hashed deterministically turns caching off for that task (with the reason recorded),
never a wrong hit; an exception from a user's own ``id_for_memo`` function fails the task.

Results are kept in memory for the run and, when the run has a provenance store, stored there
for later runs (see ``BasicMemoizer``).
"""
from __future__ import annotations

import hashlib
import logging
import os
import pickle
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, Literal

from parsl_repro.data_provider.files import File
from parsl_repro.dataflow.errors import BadCheckpoint
from parsl_repro.dataflow.futures import FINISHED_CONDITION
from parsl_repro.dataflow.taskrecord import TaskRecord
from parsl_repro.errors import ConfigurationError
from parsl_repro.events import AppSeen, MemoTableLoaded, TaskKeyed, TaskResult
from parsl_repro.memo import FileDigestCache, Memoizer, ResultStore, StoredResult, Uncacheable
from parsl_repro.memo.extension import (
    id_for_memo,
    id_for_memo_dict,
    id_for_memo_list,
    id_for_memo_pickle,
    id_for_memo_tuple,
)
from parsl_repro.memo.key import identity_of, make_hash, memo_key
from parsl_repro.memo.recipe import describe
from parsl_repro.monitoring import cache_notes
from parsl_repro.serialize import deserialize_value, serialize_value
from parsl_repro.serialize.errors import SerializationError
from parsl_repro.utils import Timer, get_all_checkpoints, parse_period

logger = logging.getLogger(__name__)

__all__ = [  # Parsl's names at Parsl's path; the key machinery lives in parsl_repro.memo
    "BasicMemoizer", "Memoizer", "id_for_memo", "id_for_memo_dict", "id_for_memo_list", "id_for_memo_pickle",
    "id_for_memo_tuple", "identity_of", "make_hash", "memo_key",
]


class BasicMemoizer(Memoizer):
    """Memoization and checkpointing, backed by the provenance store when the run has one.

    * Within a run, a call whose memo key matches an earlier finished task of the run reuses
      that task's outcome (result or exception), as in Parsl. Duplicates in flight both run (the
      later one records a note naming the earlier).
    * Across runs, successful results are stored (table ``result``) as each cached task ends, and
      loaded into memory when a run starts, by Parsl's rules: from the runs that
      ``checkpoint_files`` names (each entry a ``<run dir>/checkpoint`` path, as
      ``get_last_checkpoint()`` returns); with no ``checkpoint_files`` and a ``checkpoint_mode``,
      from every run that checkpointed under the same ``run_dir``; with neither (or ``[]``), from
      nothing: the memo table starts empty. ``reuse_from_store=True`` adds every run recorded in
      the store. Which runs were loaded is recorded (``MemoTableLoaded``), for ``why``.
    * A cached task's argument that is a plain string (or path object) naming an existing file is
      keyed by the name, not the content: logged once per app, and noted on the task.
    * A stored result is not reused if an output file it recorded has changed or vanished.
    * With a store, a run's ``<run dir>/checkpoint/`` exists from its first cached result on: its
      checkpoint is the set of results it recorded (produced or reused), durable as each task
      ends, so ``checkpoint_files=get_last_checkpoint()`` resumes a run killed at any moment in
      any ``checkpoint_mode``. A run that resumes from ``checkpoint_files`` records the newest
      run they name as its parent.
    * ``checkpoint_mode`` also writes ``<run dir>/checkpoint/tasks.pkl`` in Parsl's format
      ('task_exit': as tasks end; 'periodic': every ``checkpoint_period``; 'dfk_exit': at cleanup;
      'manual': on ``checkpoint()``), which later runs can load even without the store.
    * An argument that cannot be hashed deterministically turns caching off for that task, with
      the reason recorded and logged: never a wrong hit.
    """

    def __init__(self, *, checkpoint_files: Sequence[str] | None = None, checkpoint_period: str | None = None,
                 checkpoint_mode: Literal["task_exit", "periodic", "dfk_exit", "manual"] | None = None,
                 memoize: bool = True, reuse_from_store: bool = False) -> None:
        self.checkpoint_files = checkpoint_files
        self.reuse_from_store = reuse_from_store
        self.checkpoint_period = checkpoint_period
        self.checkpoint_mode = checkpoint_mode
        self.memoize = memoize
        self.memo_lookup_table: dict[str, Future] = {}
        self.stored: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._checkpoint_lock = threading.Lock()
        self._pending_checkpoint: list[tuple[str, Any]] = []
        self._checkpoint_file: Any = None  # checkpoint/tasks.pkl, opened for appending on first use
        self._timer: Any = None
        self._unflushed = False  # entries written to the checkpoint file's buffer but not flushed
        self._flush_timer: threading.Timer | None = None
        self._seen_apps: set[str] = set()
        self.store: ResultStore | None = None
        self.sink: Any = None
        self.run_id = ""
        self.run_dir = ""
        self.config_run_dir = ""
        self.file_digests: Any = None
        self.checkpointed_tasks = 0
        self._has_checkpoint = False
        self._in_flight: dict[str, int] = {}  # memo key -> the task of this run computing it
        self._names_a_file: dict[str, bool] = {}  # path-like argument -> whether it named a file when first seen
        self._warned_apps: set[str] = set()

    def attach(self, *, store: ResultStore | None, sink: Any, run_id: str, apps_seen: set[str] | None = None) -> None:
        """Called by the kernel before ``start``: where results are loaded from (``store``, None
        for a run without a record) and where what happens is recorded (``sink``). ``apps_seen``:
        the digests of the apps the run has already described (``AppSeen``), shared with the kernel,
        which describes every task's app when it is submitted."""
        self.store, self.sink, self.run_id = store, sink, run_id
        if apps_seen is not None:
            self._seen_apps = apps_seen

    # --- start: load the memo table --------------------------------------------------------------
    def start(self, *, run_dir: str, config_run_dir: str) -> None:
        self.run_dir, self.config_run_dir = run_dir, config_run_dir
        self.file_digests = FileDigestCache()
        if self.memoize:
            self.stored = self._load()
            logger.info("App caching enabled; %d recorded results available", len(self.stored))
        else:
            self._emit_sources(False, [], [], 0)
            logger.info("App caching disabled for all apps")
        if self.checkpoint_mode == "periodic":
            if self.checkpoint_period is None:
                raise ConfigurationError("Checkpoint period must be specified with periodic checkpoint mode")
            self._timer = Timer(self.checkpoint, interval=parse_period(self.checkpoint_period), name="Checkpoint")

    def _load(self) -> dict[str, Any]:
        if self.checkpoint_files is not None:
            paths = list(self.checkpoint_files)
        elif self.checkpoint_mode is not None:
            paths = list(get_all_checkpoints(self.config_run_dir))
        else:
            paths = []
        from_store = self.reuse_from_store and self.store is not None
        table: dict[str, Any] = self.store.load_results(None) if from_store else {}
        rundirs = []
        for path in paths:
            path = os.path.abspath(path)
            rundirs.append((path, os.path.dirname(path) if os.path.basename(path) == "checkpoint" else path))
        recorded: set[str] = set()
        runs: list[str] = []
        parent = None
        if self.store is not None and rundirs:
            runs = self.store.run_ids_for_rundirs([rundir for _, rundir in rundirs])
            if runs:
                table.update(self.store.load_results(runs))
                if self.checkpoint_files is not None:  # resuming from named runs: the newest is the parent
                    parent = self.store.newest_run([r for r in runs if r != self.run_id])
                recorded = {os.path.abspath(d) for d in self.store.rundirs_of(runs)}
        files = []
        for path, rundir in rundirs:
            if rundir not in recorded:
                table.update(_read_checkpoint_file(path))
                files.append(path)
        self._emit_sources(from_store, runs, files, len(table), parent)
        return table

    def _emit_sources(self, from_store: bool, runs: list[str], files: list[str], results: int,
                      parent: str | None = None) -> None:
        if self.sink is not None:
            self.sink.emit(MemoTableLoaded(self.run_id, time.time(), self.memoize, from_store, tuple(runs),
                                           tuple(files), results, parent))

    # --- lookups ------------------------------------------------------------------------------------
    def check_memo(self, task: TaskRecord) -> Future[Any] | None:
        if not self.memoize or not task.memoize:
            task.hashsum = None
            return None
        identity = task.identity or identity_of(task.func)  # the one submit just computed, if launched from it
        try:
            key, components = memo_key(task, self.file_digests.sha256, identity)
        except Uncacheable as e:
            task.hashsum = None
            reason = cache_notes.not_cached(e.reason)
            logger.warning("Task %s (%s) %s", task.id, task.func_name, reason)
            self._emit_keyed(task, identity, None, {}, [reason])
            return None
        except FileNotFoundError as e:
            task.hashsum = None
            self._emit_keyed(task, identity, None, {}, [cache_notes.input_missing(e.filename)])
            return None
        task.hashsum = key
        notes = self._path_arguments(task)
        hit: Future | None = self.memo_lookup_table.get(key)
        source = (self.run_id, hit.task_record.id) if hit is not None and hasattr(hit, "task_record") else None
        if hit is None:
            stored = self.stored.get(key)
            if stored is not None:
                changed = self._outputs_changed(stored.outputs)
                if changed is None:
                    hit = _CompletedFuture(self._value(stored))
                    source = (stored.run_id, stored.task_id)
                    task.result_digest = stored.result_digest
                else:
                    notes.append(changed)
        if hit is None:
            with self._lock:
                running = self._in_flight.setdefault(key, task.id)
            if running != task.id:
                notes.append(cache_notes.in_flight(running))
        self._emit_keyed(task, identity, key, components, notes, source if hit is not None else None)
        return hit

    def _path_arguments(self, task: TaskRecord) -> list[str]:
        """Notes for arguments that are plain paths to existing files (keyed by name, not content),
        with a warning once per app. Each distinct value is looked up on disk once per run."""
        labelled = [(f"argument {position}", value) for position, value in enumerate(task.args)]
        ignored = task.ignore_for_cache
        for name, value in task.kwargs.items():
            if name in _NOT_CONTENT or name in ignored:
                continue
            if name == "inputs" and isinstance(value, (list, tuple)):
                labelled.extend((f"inputs[{i}]", item) for i, item in enumerate(value))
            else:
                labelled.append((f"keyword argument {name}", value))
        notes = [cache_notes.path_argument(label, path) for label, value in labelled
                 if (path := self._file_named(value)) is not None]
        if notes and task.func_name not in self._warned_apps:
            self._warned_apps.add(task.func_name)
            logger.warning("App %s (task %s): %s. (Said once per app; `parsl-repro why` shows it per task.)",
                           task.func_name, task.id, notes[0])
        return notes

    def _file_named(self, value: Any) -> str | None:
        """The path, when ``value`` is a ``str`` or path object (not a ``File``) naming an existing file."""
        if type(value) is not str and (not isinstance(value, os.PathLike) or isinstance(value, File)):
            return None
        try:
            path = os.fspath(value)
        except TypeError:
            return None
        if not isinstance(path, str) or not path or len(path) > 4096 or "\n" in path or "\0" in path:
            return None
        known = self._names_a_file.get(path)
        if known is None:
            if len(self._names_a_file) > 100_000:
                self._names_a_file.clear()
            known = self._names_a_file[path] = os.path.isfile(path)
        return path if known else None

    def _emit_keyed(self, task: TaskRecord, identity: Any, key: str | None, components: dict[str, str],
                    notes: list[str], source: tuple[str, int] | None = None) -> None:
        if self.sink is None:
            return
        note = cache_notes.join(notes)

        if identity.digest not in self._seen_apps:
            self._seen_apps.add(identity.digest)
            options = {"kind": task.app_kind, "name": task.func_name, "cache": task.memoize,
                       "ignore_for_cache": list(task.ignore_for_cache)}
            self.sink.emit(AppSeen(identity.digest, identity.qualname, identity.module, task.app_kind,
                                   identity.source, dict(identity.components), options,
                                   describe(task.func, options)))  # with the identity, as the kernel does
        self.sink.emit(TaskKeyed(self.run_id, task.id, time.time(), key, identity.digest, components, note,
                                 *(source or ())))

    def _outputs_changed(self, outputs: Sequence[tuple[str, str]]) -> str | None:
        for path, recorded in outputs:
            try:
                current = self.file_digests.sha256(path)
            except OSError:
                return cache_notes.output_vanished(path)
            if current != recorded:
                return cache_notes.output_changed(path)
        return None

    def _value(self, stored: Any) -> Any:
        data = stored.value if stored.value is not None else self.store.read_result(stored.memo_key, stored.run_id)
        return _loads(stored.serializer, data)

    # --- recording ----------------------------------------------------------------------------------
    def update_memo_result(self, task: TaskRecord, r: Any) -> None:
        if not self.memoize or not task.memoize or not isinstance(task.hashsum, str):
            return
        self._finished(task)
        if not self._has_checkpoint and self.store is not None:
            # A recorded run's checkpoint is every result it stored (durable as each task ends), so
            # it has one from its first result on: get_last_checkpoint() finds it even after a
            # SIGKILL, and passes over runs that recorded nothing, as Parsl passes over runs that
            # wrote no checkpoint file.
            self._has_checkpoint = True
            os.makedirs(os.path.join(self.run_dir, "checkpoint"), exist_ok=True)
        if task.from_memo:
            self._queue_checkpoint(task.hashsum, r, reused=True)  # this run's checkpoint covers what it reused
            return
        serialized = _dumps(r)
        if serialized is None:
            logger.warning("Task %s (%s): its result (%s) cannot be serialized, so later runs cannot reuse it",
                           task.id, task.func_name, type(r).__name__)
            return
        serializer, data = serialized
        task.result_digest = hashlib.sha256(data).hexdigest()
        outputs = self._output_digests(task)
        if self.sink is not None:
            self.sink.emit(TaskResult(self.run_id, task.id, time.time(), task.hashsum, task.result_digest, serializer,
                                      data, outputs))
        self._queue_checkpoint(task.hashsum, r)

    def _queue_checkpoint(self, key: str, result: Any, reused: bool = False) -> None:
        if self.checkpoint_mode is None:
            return
        with self._checkpoint_lock:
            self._pending_checkpoint.append((key, result))
        if self.checkpoint_mode == "task_exit":
            # A reused result is already in the checkpoint (or store) it came from, so its entry here
            # need not reach the file before the task returns: it is flushed with the next computed
            # result, or FLUSH_DELAY later, or at cleanup, which saves a write per memo hit.
            self.checkpoint(flush=not reused)

    def update_memo_exception(self, task: TaskRecord, e: BaseException) -> None:
        if not self.memoize or not task.memoize or not isinstance(task.hashsum, str):
            return
        self._finished(task)  # within the run only, as Parsl: failures are never stored for later runs

    def _finished(self, task: TaskRecord) -> None:
        """A cached task ended: later identical calls of this run reuse its outcome."""
        with self._lock:
            self.memo_lookup_table[task.hashsum] = task.app_fu
            if self._in_flight.get(task.hashsum) == task.id:
                del self._in_flight[task.hashsum]

    def _output_digests(self, task: TaskRecord) -> tuple[tuple[str, str], ...]:
        digests = []
        for f in task.kwargs.get("outputs") or ():
            path = f.filepath if isinstance(f, File) and f.scheme == "file" else f if isinstance(f, str) else None
            if path is None:
                continue
            try:
                digests.append((os.path.abspath(path), self.file_digests.sha256(path)))
            except OSError:
                continue
        return tuple(digests)

    # --- checkpoints --------------------------------------------------------------------------------------
    def checkpoint(self, flush: bool = True) -> None:
        """Append the results finished since the last checkpoint to ``checkpoint/tasks.pkl``.

        The file stays open for the run and is flushed after each pass, so a checkpoint is in the file
        (for a process that reads it, or a run that resumes after this one is killed) as soon as the pass
        returns; ``checkpoint_mode='task_exit'`` makes a pass per finished task, memo hits included, and
        opening the file for each would cost more than the hit itself. With ``flush=False`` (a memo
        hit's pass: its result is durable where it came from) the flush is left to the next pass or to
        a timer ``FLUSH_DELAY`` seconds later."""
        with self._checkpoint_lock:
            entries, self._pending_checkpoint = self._pending_checkpoint, []
            if not entries:
                logger.info("No tasks checkpointed in this pass.")
                return
            f = self._checkpoint_file
            if f is None:
                directory = os.path.join(self.run_dir, "checkpoint")
                os.makedirs(directory, exist_ok=True)
                # a large buffer: a memo hit's entry waits there (no system call, so no GIL hand-off) until a flush
                f = self._checkpoint_file = open(os.path.join(directory, "tasks.pkl"), "ab", buffering=1 << 20)  # noqa: SIM115
            written = 0
            for key, result in entries:
                try:
                    record = pickle.dumps({"hash": key, "exception": None, "result": result})
                except Exception:
                    logger.warning("Result for memo key %s cannot be pickled into the checkpoint file", key)
                    continue
                f.write(record)
                written += 1
            if flush:
                f.flush()
                self._unflushed = False
            elif written and not self._unflushed:
                self._unflushed = True
                if self._flush_timer is None:  # else the pending one flushes this too
                    self._flush_timer = threading.Timer(FLUSH_DELAY, self._flush)
                    self._flush_timer.daemon = True
                    self._flush_timer.name = "Checkpoint flush"
                    self._flush_timer.start()
            self.checkpointed_tasks += written
            # one line per pass; with task_exit that is one per task, which the debug level keeps
            logger.log(logging.DEBUG if self.checkpoint_mode == "task_exit" else logging.INFO,
                       "Done checkpointing %s tasks", written)

    def _flush(self) -> None:
        with self._checkpoint_lock:
            if self._unflushed and self._checkpoint_file is not None:
                self._checkpoint_file.flush()
            self._unflushed = False
            self._flush_timer = None  # under the lock: a later entry starts a timer of its own

    def close(self) -> None:
        if self._timer is not None:
            self._timer.close()
        flusher = self._flush_timer
        if flusher is not None:
            flusher.cancel()
            if flusher is not threading.current_thread():
                flusher.join()
        if self.checkpoint_mode is not None:
            self.checkpoint()
        with self._checkpoint_lock:
            if self._checkpoint_file is not None:
                self._checkpoint_file.close()
                self._checkpoint_file = None


FLUSH_DELAY = 0.2
"""Seconds a reused result's checkpoint entry may wait in the file's buffer (``checkpoint(flush=False)``)."""

_NOT_CONTENT = frozenset({"outputs", "stdout", "stderr", "walltime", "parsl_resource_specification"})
"""Keyword arguments that name files a task writes (or are not data): no note for them."""


class _CompletedFuture(Future):
    """A Future born finished, for memo hits: it skips building a Condition (and its lock) per
    future, the largest cost of a hit. Callbacks run at once, as on any finished Future."""

    def __init__(self, result: Any) -> None:  # deliberately not calling Future.__init__
        self._condition = FINISHED_CONDITION
        self._state = "FINISHED"
        self._result = result
        self._exception = None
        self._waiters: list = []
        self._done_callbacks: list = []


def _dumps(value: Any) -> tuple[str, bytes] | None:
    try:
        return serialize_value(value)
    except SerializationError:
        return None


def _loads(serializer: str, data: bytes) -> Any:
    # results come from this project's own store or checkpoint files, never from a network peer
    return deserialize_value(serializer, data)


def _read_checkpoint_file(path: str) -> dict[str, Any]:
    """Entries of a ``tasks.pkl`` checkpoint (Parsl's format), as stored results."""
    checkpoint_file = os.path.join(path, "tasks.pkl")
    if os.path.isdir(path) and not os.path.exists(checkpoint_file):
        return {}  # a checkpoint with nothing in it yet
    if not os.path.exists(checkpoint_file):
        raise BadCheckpoint(f"Checkpoint {path} was not found: it is neither a run recorded in the provenance store "
                            f"nor a directory holding tasks.pkl")
    table: dict[str, Any] = {}
    with open(checkpoint_file, "rb") as f:
        while True:
            try:
                entry = pickle.load(f)
            except EOFError:
                break
            except Exception as e:
                raise BadCheckpoint(f"Failed to load checkpoint {checkpoint_file}: {e}") from e
            serialized = _dumps(entry["result"]) if entry.get("exception") is None else None
            if serialized is not None:
                serializer, data = serialized
                table[entry["hash"]] = StoredResult(entry["hash"], "", -1, hashlib.sha256(data).hexdigest(),
                                                    serializer, data, ())
    return table
