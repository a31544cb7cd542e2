"""``AppFuture``: the future an app call returns, completed by the kernel once the task is final."""
from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parsl_repro.data_provider.data_future import DataFuture
    from parsl_repro.dataflow.taskrecord import TaskRecord


FINISHED_CONDITION = threading.Condition()
"""The condition of the futures the kernel makes already finished (memo hits): their methods only
take it briefly to read their state, never to wait, so one shared condition serves them all. A
future keeps the condition it was made with: ``concurrent.futures.wait`` acquires every future's
condition and later releases it again by reading the attribute anew, so an ``AppFuture`` that
swapped its own for this one on finishing made ``wait`` fail ("cannot release un-acquired lock")."""


class AppFuture(Future):
    """A ``concurrent.futures.Future`` for one task, with its id, output files and streams.

    It completes once, when the task reaches a final state: a retried try does not complete it.
    Indexing or reading an attribute of an ``AppFuture`` (``fut[0]``, ``fut.x``) returns a new
    future for that part of the result.
    """

    def __init__(self, task_record: TaskRecord) -> None:
        super().__init__()
        self._outputs: list[DataFuture] = []
        self.task_record = task_record
        self._stdout_future: DataFuture | None = None
        self._stderr_future: DataFuture | None = None

    @property
    def stdout(self) -> Any:
        """The task's stdout specification (a path, ``(path, mode)``), or a DataFuture for a File."""
        return self._stdout_future or self.task_record.kwargs.get("stdout")

    @property
    def stderr(self) -> Any:
        """The task's stderr specification (a path, ``(path, mode)``), or a DataFuture for a File."""
        return self._stderr_future or self.task_record.kwargs.get("stderr")

    @property
    def tid(self) -> int:
        return self.task_record.id

    @property
    def outputs(self) -> Sequence[DataFuture]:
        """One DataFuture per file in the call's ``outputs=``."""
        return self._outputs

    def cancel(self) -> bool:
        raise NotImplementedError("Cancel not implemented")

    def cancelled(self) -> bool:
        return False

    def task_status(self) -> str:
        """The name of the task's current state in the kernel (may run ahead of ``done()``)."""
        return self.task_record.status.name

    def __getitem__(self, key: Any) -> AppFuture:
        return self.task_record.dfk.submit(deferred_getitem, app_args=(self, key), executors=["_parsl_internal"],
                                           func_name="deferred_getitem")

    def __getattr__(self, name: str) -> AppFuture:
        # private and dunder names are never lifted, so protocols (iteration, pickling) behave
        if name.startswith("_"):
            raise AttributeError(name)
        return self.task_record.dfk.submit(deferred_getattr, app_args=(self, name), executors=["_parsl_internal"],
                                           func_name="deferred_getattr")

    def __repr__(self) -> str:
        record = self.__dict__.get("task_record")
        base = super().__repr__()
        if record is None:
            return base
        return f"{base[:-1]} task_id={record.id} app={record.func_name}>"


def deferred_getitem(o: Any, k: Any) -> Any:
    return o[k]


def deferred_getattr(o: Any, name: str) -> Any:
    return getattr(o, name)
