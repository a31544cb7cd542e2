"""Errors of the dataflow layer: a task that could not run because other tasks failed."""
from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import CancelledError

from parsl_repro.errors import ParslError


class DataFlowException(ParslError):
    """Base class of dataflow errors."""


class BadCheckpoint(DataFlowException):
    """A checkpoint named in the configuration cannot be read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class PropagatedException(DataFlowException):
    """A task failed because related tasks failed.

    ``dependent_exceptions_tids`` pairs each underlying exception with a description of where it
    came from ("task 3", or the repr of a plain future). ``__cause__`` is set to the first root
    cause found by following the first entry through nested propagated errors.
    """

    def __init__(self, dependent_exceptions_tids: Sequence[tuple[BaseException, str]], task_id: int, *,
                 failure_description: str) -> None:
        super().__init__(dependent_exceptions_tids, task_id)
        self.dependent_exceptions_tids = dependent_exceptions_tids
        self.task_id = task_id
        self._failure_description = failure_description
        self.__cause__, self._cause_sequence = self._find_any_root_cause()

    def __str__(self) -> str:
        chain = " <- ".join(self._cause_sequence)
        root = self.__cause__
        root_text = f": {type(root).__name__}: {root}" if root is not None and root is not self else ""
        return (f"{self._failure_description} for task {self.task_id}. "
                f"The representative cause is via {chain}{root_text}")

    def _find_any_root_cause(self) -> tuple[BaseException, list[str]]:
        error: BaseException = self
        path: list[str] = []
        while isinstance(error, PropagatedException) and error.dependent_exceptions_tids:
            description = error.dependent_exceptions_tids[0][1]
            if len(error.dependent_exceptions_tids) > 1:
                description += " (+ others)"
            path.append(description)
            error = error.dependent_exceptions_tids[0][0]
        return error, path


class DependencyError(PropagatedException):
    """A task did not run because one or more of the tasks it depends on failed."""

    def __init__(self, dependent_exceptions_tids: Sequence[tuple[BaseException, str]], task_id: int) -> None:
        super().__init__(dependent_exceptions_tids, task_id, failure_description="Dependency failure")


class JoinError(PropagatedException):
    """A join app failed because one or more of the futures it joined on failed."""

    def __init__(self, dependent_exceptions_tids: Sequence[tuple[BaseException, str]], task_id: int) -> None:
        super().__init__(dependent_exceptions_tids, task_id, failure_description="Join failure")


class WorkflowHalted(DataFlowException):
    """With ``Config(lazy_errors=False)``, the first failed task halts the run: tasks not yet
    launched fail with this error and new submissions raise it."""

    def __init__(self, task_id: int, func_name: str, cause: BaseException) -> None:
        super().__init__(task_id, func_name, cause)
        self.task_id = task_id
        self.func_name = func_name
        self.__cause__ = cause

    def __str__(self) -> str:
        cause = self.__cause__
        return (f"workflow halted (lazy_errors=False) after task {self.task_id} ({self.func_name}) failed: "
                f"{type(cause).__name__}: {cause}")


class TaskCancelled(DataFlowException, CancelledError):
    """A task never finished because its run ended first: interrupted (SIGINT, SIGTERM, ctrl-C)
    or cleaned up before the task ran. Not a failure: the task is recorded as ``cancelled``, and
    a run resumed from this one's checkpoint runs it. Also a ``concurrent.futures.CancelledError``.
    """

    def __init__(self, task_id: int, func_name: str, cause: str) -> None:
        super().__init__(task_id, func_name, cause)
        self.task_id = task_id
        self.func_name = func_name
        self.cause = cause

    def __str__(self) -> str:
        return f"task {self.task_id} ({self.func_name}) was cancelled: {self.cause}"
