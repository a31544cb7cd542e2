"""Dependencies: which futures a task waits on, the countdown that releases it, and the swap of
futures for their results at launch."""
from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import Any

from parsl_repro.dataflow.futures import AppFuture
from parsl_repro.dataflow.taskrecord import TaskRecord
from parsl_repro.dependencies import (
    SHALLOW_DEPENDENCY_RESOLVER,
    DependencyResolver,
    deep_traverse_to_gather,
)

logger = logging.getLogger(__name__)


class DependencyTracker:
    """Finds the futures in a task's arguments and calls ``on_ready(task)`` once all are done."""

    def __init__(self, resolver: DependencyResolver | None, kernel: object,
                 on_ready: Callable[[TaskRecord], None]) -> None:
        self.resolver = resolver or SHALLOW_DEPENDENCY_RESOLVER
        self._shallow = self.resolver is SHALLOW_DEPENDENCY_RESOLVER
        self.kernel = kernel
        self.on_ready = on_ready

    def gather(self, args: tuple, kwargs: dict[str, Any]) -> list[Future]:
        """Every future in the positional and keyword arguments, and in ``inputs=``."""
        if self._shallow:
            deps = [a for a in args if isinstance(a, Future)]
            if kwargs:
                deps.extend(v for v in kwargs.values() if isinstance(v, Future))
                inputs = kwargs.get("inputs")
                if inputs:
                    deps.extend(v for v in inputs if isinstance(v, Future))
            return deps
        # a custom resolver need not look inside lists, so inputs= gets its own pass, unless the
        # resolver already walked it as one of the keyword values
        gather = self.resolver.traverse_to_gather
        found: list[Future] = []
        for a in args:
            found.extend(gather(a))
        for v in kwargs.values():
            found.extend(gather(v))
        inputs = kwargs.get("inputs")
        if inputs and self.resolver.traverse_to_gather is not deep_traverse_to_gather:
            for v in inputs:
                found.extend(gather(v))
        return found

    def watch(self, task: TaskRecord) -> None:
        """Arrange for ``on_ready(task)`` to run exactly once, after every dependency is done.

        The count starts at one more than the number of dependencies; that extra hold is released
        after every callback is registered, so a dependency finishing meanwhile cannot release the
        task early, and a task with no dependencies is released at once.
        """
        deps = task.depends
        if not deps:
            self.on_ready(task)
            return
        task._outstanding = len(deps) + 1
        release = _Release(self, task)
        for dep in deps:
            dep.add_done_callback(release)
        self.release_one(task)

    def release_one(self, task: TaskRecord) -> None:
        with task.task_launch_lock:
            task._outstanding -= 1
            ready = task._outstanding == 0
        if ready:
            self.on_ready(task)

    def unwrap(self, task: TaskRecord) -> list[tuple[BaseException, str]]:
        """Replace the futures in the task's arguments by their results.

        If any dependency failed, nothing is replaced and the failures are returned instead. They
        are read with ``exception()``, never re-raised: raising a stored exception again would
        graft this thread's context and frames onto the parent task's error.
        """
        failures = []
        for dep in task.depends:
            error = future_error(dep)
            if error is not None:
                failures.append((error, self.describe(dep)))
        if failures:
            return failures
        unwrap = self.resolver.traverse_to_unwrap
        task.args = tuple(unwrap(a) for a in task.args)
        kwargs = task.kwargs
        for key in kwargs:
            kwargs[key] = unwrap(kwargs[key])
        if isinstance(kwargs.get("inputs"), list):
            kwargs["inputs"] = [unwrap(v) for v in kwargs["inputs"]]
        return failures

    def has_foreign(self, task: TaskRecord) -> bool:
        """Whether the task waits on a future that is not a task's (nor a file's) of this kernel."""
        from parsl_repro.data_provider.data_future import DataFuture
        kernel = self.kernel
        return any(not isinstance(dep, DataFuture)
                   and not (isinstance(dep, AppFuture) and dep.task_record.dfk is kernel) for dep in task.depends)

    def describe(self, dep: Any) -> str:
        """How an error message names a dependency: "task 3" for a task of this kernel."""
        if isinstance(dep, AppFuture) and dep.task_record.dfk is self.kernel:
            return f"task {dep.task_record.id}"
        from parsl_repro.data_provider.data_future import DataFuture
        if isinstance(dep, DataFuture):
            return f"DataFuture from task {dep.tid}"
        return repr(dep)


def future_error(fut: Future) -> BaseException | None:
    """The exception a done future holds (a cancelled one counts as ``CancelledError``), or None."""
    if fut.cancelled():
        return CancelledError(f"{fut!r} was cancelled")
    return fut.exception()


class _Release:
    """A dependency's done-callback: count one dependency of ``task`` as done."""

    __slots__ = ("tracker", "task")

    def __init__(self, tracker: DependencyTracker, task: TaskRecord) -> None:
        self.tracker = tracker
        self.task = task

    def __call__(self, _fut: Future) -> None:
        self.tracker.release_one(self.task)
