"""Memoization: a task whose app and arguments match an earlier task reuses that task's result.

The key (``make_hash``) is a digest of exactly these parts, each turned into bytes by the
``id_for_memo`` singledispatch function: the app (by module and name, not its source: edits to
the body do not change the key), the positional arguments, the keyword arguments minus those
named in ``ignore_for_cache``, and the ``outputs`` list (as references: output file names, not
content). A type ``id_for_memo`` does not know raises ``ValueError`` and fails that task rather
than risk a wrong hit; register a function for your own types with ``@id_for_memo.register``.

The lookup table lives in memory for the run. Checkpoints across runs come from the provenance
store (``parsl_repro.monitoring``).
"""
from __future__ import annotations

import hashlib
import inspect
import logging
import pickle
import threading
import types
from abc import ABCMeta, abstractmethod
from collections.abc import Sequence
from concurrent.futures import Future
from functools import lru_cache, singledispatch
from typing import Any, Literal

from parsl_repro.data_provider.files import File
from parsl_repro.dataflow.taskrecord import TaskRecord

logger = logging.getLogger(__name__)


@singledispatch
def id_for_memo(obj: object, output_ref: bool = False) -> bytes:
    """Bytes that identify ``obj`` for memoization: equal for equal values, different otherwise.

    ``output_ref`` is True for values in an app's ``outputs=`` list, which name files that do not
    exist yet, so they are identified by name rather than content.
    """
    raise ValueError(f"unknown type for memoization: {type(obj)}; register an id_for_memo function for it "
                     f"or list the argument in ignore_for_cache")


@id_for_memo.register(str)
@id_for_memo.register(int)
@id_for_memo.register(float)
@id_for_memo.register(bool)
@id_for_memo.register(bytes)
@id_for_memo.register(type(None))
def id_for_memo_pickle(obj: object, output_ref: bool = False) -> bytes:
    return pickle.dumps(obj)


def _exact(kind: type, value: object) -> None:
    if type(value) is not kind:
        raise ValueError(f"id_for_memo cannot work on subclasses of {kind.__name__} ({type(value)})")


@id_for_memo.register(list)
def id_for_memo_list(denormalized_list: list, output_ref: bool = False) -> bytes:
    _exact(list, denormalized_list)
    return pickle.dumps([id_for_memo(e, output_ref=output_ref) for e in denormalized_list])


@id_for_memo.register(tuple)
def id_for_memo_tuple(denormalized_tuple: tuple, output_ref: bool = False) -> bytes:
    _exact(tuple, denormalized_tuple)
    return pickle.dumps([id_for_memo(e, output_ref=output_ref) for e in denormalized_tuple])


@id_for_memo.register(dict)
def id_for_memo_dict(denormalized_dict: dict, output_ref: bool = False) -> bytes:
    """Keys are sorted, so insertion order does not matter; values take ``output_ref``, keys do not."""
    _exact(dict, denormalized_dict)
    parts = []
    for key in sorted(denormalized_dict):
        parts.append(id_for_memo(key))
        parts.append(id_for_memo(denormalized_dict[key], output_ref=output_ref))
    return pickle.dumps(parts)


@id_for_memo.register(File)
def id_for_memo_file(f: File, output_ref: bool = False) -> bytes:
    return pickle.dumps(["File", f.url])


# lru_cache sits below register so that the cached version is the one registered
@id_for_memo.register(types.FunctionType)
@lru_cache
def id_for_memo_function(f: types.FunctionType, output_ref: bool = False) -> bytes:
    """A function by module and name only: editing its body does not change the key."""
    return pickle.dumps(["types.FunctionType", f.__name__, f.__module__])


def make_hash(task: TaskRecord) -> str:
    """The memo key of a task whose arguments have been resolved."""
    kwargs = dict(task.kwargs)
    for name in task.ignore_for_cache:
        kwargs.pop(name, None)
    parts: list[bytes] = []
    if "outputs" in kwargs:
        parts.append(id_for_memo(kwargs.pop("outputs"), output_ref=True))
    parts.append(id_for_memo(kwargs))
    parts.append(id_for_memo(inspect.unwrap(task.func)))
    parts.append(id_for_memo(tuple(task.args) if type(task.args) is not tuple else task.args))
    return hashlib.sha256(b"".join(parts)).hexdigest()


class Memoizer(metaclass=ABCMeta):
    """What the kernel asks of a memoization/checkpoint system.

    Who calls what, and when (always the kernel, never user code):
      * ``start`` once, when the kernel starts, with the run directory;
      * ``check_memo`` when a task's dependencies are done, just before launch: return a completed
        Future to use instead of running the task, or None to run it; set ``task['hashsum']``;
      * exactly one of ``update_memo_result`` / ``update_memo_exception`` when a task ends;
      * ``close`` once, at cleanup.
    """

    @abstractmethod
    def start(self, *, run_dir: str, config_run_dir: str) -> None: ...

    @abstractmethod
    def check_memo(self, task: TaskRecord) -> Future[Any] | None: ...

    @abstractmethod
    def update_memo_result(self, task: TaskRecord, r: Any) -> None: ...

    @abstractmethod
    def update_memo_exception(self, task: TaskRecord, e: BaseException) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


class BasicMemoizer(Memoizer):
    """An in-memory memo table for the run: key -> the AppFuture of the task that produced it.

    A repeated call is answered from the table only if the earlier task has finished by the time
    the repeat is ready to launch; concurrent duplicates both run.
    """

    def __init__(self, *, checkpoint_files: Sequence[str] | None = None, checkpoint_period: str | None = None,
                 checkpoint_mode: Literal["task_exit", "periodic", "dfk_exit", "manual"] | None = None,
                 memoize: bool = True) -> None:
        self.checkpoint_files = checkpoint_files
        self.checkpoint_period = checkpoint_period
        self.checkpoint_mode = checkpoint_mode
        self.memoize = memoize
        self.memo_lookup_table: dict[str, Future] = {}
        self._lock = threading.Lock()
        self.run_dir = ""

    def start(self, *, run_dir: str, config_run_dir: str) -> None:
        self.run_dir = run_dir
        self.config_run_dir = config_run_dir
        logger.info("App caching %s", "enabled" if self.memoize else "disabled for all apps")
        if self.checkpoint_mode is not None or self.checkpoint_files:
            # say so rather than pretend: results are kept for this run only until the provenance
            # store records them across runs
            logger.warning("checkpoint_mode=%r / checkpoint_files=%r: this build keeps memoized results in memory "
                           "for the current run only; nothing is written to or read from checkpoints",
                           self.checkpoint_mode, self.checkpoint_files)

    def check_memo(self, task: TaskRecord) -> Future[Any] | None:
        if not self.memoize or not task.memoize:
            task.hashsum = None
            return None
        task.hashsum = make_hash(task)
        return self.memo_lookup_table.get(task.hashsum)

    def update_memo_result(self, task: TaskRecord, r: Any) -> None:
        self._update_memo(task)

    def update_memo_exception(self, task: TaskRecord, e: BaseException) -> None:
        self._update_memo(task)

    def _update_memo(self, task: TaskRecord) -> None:
        if not self.memoize or not task.memoize or not isinstance(task.hashsum, str):
            return
        with self._lock:
            self.memo_lookup_table[task.hashsum] = task.app_fu

    def checkpoint(self) -> None:
        """Checkpoints are the provenance store's records; nothing to write from memory."""

    def close(self) -> None:
        pass
