"""Launching ready tasks and settling their outcomes: memo lookup, executor submit, retries,
join apps, and completing the task's AppFuture.

Data flow (all on whichever thread completed the last dependency or the executor future)::

    DependencyTracker --ready--> TaskRunner.ready --memo hit?--> Memoizer
                                        |  no                         |
                                        v                             v
                                   executor.submit --future done--> settle --> retry -> ready
                                                                      |
                                                                      v
                                                       complete AppFuture (callbacks release
                                                       dependents through their trackers)

``ready`` is a trampoline: when settling one task makes others ready on the same thread (a
memo hit, a dependency failure, a finished chain link), they are queued and run by the
outermost call, so long chains never deepen the stack.
"""
from __future__ import annotations

import contextvars
import functools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import Any

from parsl_repro.data_provider.files import File
from parsl_repro.dataflow.command import command_of
from parsl_repro.dataflow.errors import DependencyError, JoinError, TaskCancelled, WorkflowHalted
from parsl_repro.dataflow.graph import DependencyTracker, future_error
from parsl_repro.dataflow.memoization import Memoizer
from parsl_repro.dataflow.retries import RetryPolicy
from parsl_repro.dataflow.states import FINAL_STATES, States
from parsl_repro.dataflow.taskrecord import TaskRecord
from parsl_repro.dataflow.transitions import TaskStateMachine
from parsl_repro.errors import ConfigurationError
from parsl_repro.events import EventSink, FileObserved, TaskArguments, TaskCommand, TaskInputs, TaskJoined, TaskReturned
from parsl_repro.executors.base import SUBMITTING, ParslExecutor
from parsl_repro.executors.errors import ExecutionStopped, RemoteExceptionWrapper
from parsl_repro.utils import failure_traceback

logger = logging.getLogger(__name__)

JOIN_TASK: contextvars.ContextVar[int | None] = contextvars.ContextVar("parsl_repro_join_task", default=None)
"""The id of the join app task whose function is running in this thread, if any: the tasks it submits
are recorded as launched by it (``TaskCreated.launched_by``), so a replay knows the join app makes them."""


def _run_join_app(task_id: int, func: Callable, *args: Any, **kwargs: Any) -> Any:
    token = JOIN_TASK.set(task_id)
    try:
        return func(*args, **kwargs)
    finally:
        JOIN_TASK.reset(token)


_trampoline = threading.local()
_NONE: dict = {}


class TaskRunner:
    def __init__(self, *, run_id: str, executors: dict[str, ParslExecutor], memoizer: Memoizer,
                 states: TaskStateMachine, retries: RetryPolicy, tracker: DependencyTracker,
                 sink: EventSink, forget: Callable[[TaskRecord], None], fail_fast: bool = False,
                 argument_limit: int | None = None) -> None:
        self.run_id = run_id
        self.executors = executors
        self.memoizer = memoizer
        self.states = states
        self.retries = retries
        self.tracker = tracker
        self.sink = sink
        self.forget = forget
        self.fail_fast = fail_fast
        self.argument_limit = argument_limit
        """Record each task's arguments (up to this many serialized bytes) and result digest; None: no record."""
        self.halted: WorkflowHalted | None = None
        self.cancelling: str | None = None
        """Set by the kernel when the run ends (cleanup, or an interrupt): why unfinished tasks are
        cancelled. From then on no task is launched or retried, and a try that the executors'
        shutdown ended is a cancellation, not a failure."""

    # --- launching ----------------------------------------------------------------------------
    def ready(self, task: TaskRecord) -> None:
        """Launch ``task``, whose dependencies are all done (see the module docstring)."""
        queue = getattr(_trampoline, "queue", None)
        if queue is not None:
            queue.append((self, task))
            return
        queue = _trampoline.queue = deque([(self, task)])
        try:
            while queue:
                runner, next_task = queue.popleft()
                runner._launch_ready(next_task)
        finally:
            _trampoline.queue = None

    def _launch_ready(self, task: TaskRecord) -> None:
        try:
            if task.status is not States.pending:
                return
            if self.cancelling is not None:
                self.cancel(task)
                return
            if self.halted is not None:
                self._fail(task, States.failed, self.halted)
                return
            if task.depends:
                foreign = task.kwargs.get("inputs") and self.tracker.has_foreign(task)
                failures = self.tracker.unwrap(task)
                if foreign and not failures:
                    self.sink.emit(TaskInputs(self.run_id, task.id, time.time(), task.kwargs["inputs"]))
            else:
                failures = None
            if failures:
                logger.info("Task %s (%s) will not run: a dependency failed", task.id, task.func_name)
                self._fail(task, States.dep_fail, DependencyError(failures, task.id))
                return
            try:
                exec_fu = self._submit(task)
            except Exception as e:
                exec_fu = Future()
                exec_fu.set_exception(e)
            task.exec_fu = exec_fu
            exec_fu.add_done_callback(_Settle(self, task))
        except Exception as e:  # a bug here must fail the task, never hang it
            self.fail_internally(task, e)

    def _submit(self, task: TaskRecord) -> Future:
        task.try_time_launched = time.time()
        if task.kwargs and task.kwargs.get("inputs"):
            self._observe_inputs(task)
        if task.try_id == 0 and self.argument_limit is not None:
            self.sink.emit(TaskArguments(self.run_id, task.id, task.try_time_launched, task.args, task.kwargs,
                                         self.argument_limit))
        memo_fu = self.memoizer.check_memo(task)
        if memo_fu is not None:
            task.from_memo = True
            return memo_fu
        task.from_memo = False
        executor = self.executors.get(task.executor)
        if executor is None:
            labels = ", ".join(repr(label) for label in self.executors if label != "_parsl_internal")
            raise ConfigurationError(f"Task {task.id} (app {task.func_name}) is pinned to executor {task.executor!r}, "
                                     f"but the loaded config has only {labels}")
        # launched before submit: the try is open before the executor can report it running
        self.states.move(task, States.launched, detail=executor.label)
        token = SUBMITTING.set((task.id, task.try_id))
        func = functools.partial(_run_join_app, task.id, task.func) if task.join else task.func
        try:
            exec_fu = executor.submit(func, task.resource_specification, *task.args, **task.kwargs)
        finally:
            SUBMITTING.reset(token)
        if logger.isEnabledFor(logging.DEBUG):
            self._log_launch(task, executor, exec_fu)
        return exec_fu

    def _log_launch(self, task: TaskRecord, executor: ParslExecutor, exec_fu: Future) -> None:
        extra = {"parsl.dfk": self.run_id, "parsl.task": task.id, "parsl.try": task.try_id,
                 "parsl.executor": executor.label}
        executor_task_id = getattr(exec_fu, "parsl_executor_task_id", None)
        if executor_task_id is not None:
            extra["parsl.executor_task"] = executor_task_id
        logger.debug("Task %s try %s launched on executor %s", task.id, task.try_id, executor.label, extra=extra)

    # --- settling a try -------------------------------------------------------------------------
    def settle(self, task: TaskRecord, fut: Future) -> None:
        """An executor (or memo) future of ``task`` is done: complete, retry or fail the task."""
        task.try_time_returned = time.time()
        if not task.from_memo:  # threads: [when the try started running]; never getattr, which on a
            started = getattr(fut, "__dict__", _NONE).get("parsl_started")  # future makes a task
            if started is not None:
                task.try_time_running = started[0]
        error = future_error(fut)
        result = None if error is not None else fut.result()
        if isinstance(result, RemoteExceptionWrapper):
            error = result.get_exception()
        if task.app_kind == "bash" and not task.from_memo:
            command = command_of(result if error is None else error)
            if command is not None:
                self.sink.emit(TaskCommand(self.run_id, task.id, task.try_id, command))
                if error is None:
                    result = int(result)
        if error is not None and self.cancelling is not None and ended_by_shutdown(error):
            self.cancel(task)
        elif error is not None:
            self._try_failed(task, error)
        elif task.from_memo:
            self._succeed(task, States.memo_done, result)
        elif task.join:
            self._start_join(task, result)
        else:
            self._succeed(task, States.exec_done, result)

    def _try_failed(self, task: TaskRecord, error: BaseException) -> None:
        retry, error = self.retries.charge(task, error)
        if isinstance(error, DependencyError):
            self._fail(task, States.dep_fail, error)
        elif retry:
            logger.info("Task %s (%s) try %s failed with %s; retrying", task.id, task.func_name, task.try_id,
                        type(error).__name__)
            self.states.move(task, States.fail_retryable, detail=f"{type(error).__name__}: {error}",
                             traceback=failure_traceback(error))
            task.try_id += 1
            task.try_time_launched = None
            task.try_time_returned = None
            task.try_time_running = None
            self.states.move(task, States.pending)
            self.ready(task)
        else:
            logger.info("Task %s (%s) failed after %s tries: %s: %s", task.id, task.func_name, task.fail_count,
                        type(error).__name__, error)
            self._fail(task, States.failed, error)

    # --- join apps --------------------------------------------------------------------------------
    def _start_join(self, task: TaskRecord, joinable: Any) -> None:
        if isinstance(joinable, Future):
            inner = [joinable]
        elif isinstance(joinable, list) and all(isinstance(j, Future) for j in joinable):
            inner = joinable
        else:
            self._fail(task, States.failed, TypeError(
                f"join_app {task.func_name} (task {task.id}) must return a Future or a list of Futures, "
                f"got {type(joinable).__name__}: {joinable!r}"))
            return
        task.joins = joinable
        task.join_lock = threading.Lock()
        self.states.move(task, States.joining)
        joined = tuple(dict.fromkeys(record.id for fut in inner
                                     if (record := getattr(fut, "task_record", None)) is not None))
        self.sink.emit(TaskJoined(self.run_id, task.id, task.try_id, time.time(), joined))
        task._outstanding = len(inner) + 1
        for fut in inner:
            fut.add_done_callback(lambda _f, task=task: self._join_one_done(task))
        self._join_one_done(task)

    def _join_one_done(self, task: TaskRecord) -> None:
        try:
            self._join_if_complete(task)
        except Exception as e:  # runs as a future's done-callback, where an exception would be lost
            self.fail_internally(task, e)

    def _join_if_complete(self, task: TaskRecord) -> None:
        with task.join_lock:
            task._outstanding -= 1
            if task._outstanding:
                return
        joinable = task.joins
        inner = joinable if isinstance(joinable, list) else [joinable]
        failures = [(error, self.tracker.describe(f)) for f in inner if (error := future_error(f)) is not None]
        if failures and self.cancelling is not None and any(ended_by_shutdown(e) for e, _ in failures):
            self.cancel(task)
        elif failures:
            error = JoinError(failures, task.id)
            task.fail_history.append(repr(error))
            task.fail_count += 1
            self._fail(task, States.failed, error)
        elif isinstance(joinable, list):
            self._succeed(task, States.exec_done, [f.result() for f in inner])
        else:
            self._succeed(task, States.exec_done, inner[0].result())

    # --- final states -------------------------------------------------------------------------------
    def _succeed(self, task: TaskRecord, state: States, result: Any) -> None:
        task.time_returned = time.time()
        try:
            self.memoizer.update_memo_result(task, result)
        except Exception:
            logger.exception("Memoizer failed to record the result of task %s", task.id)
        self.states.move(task, state)
        if task.kwargs:
            self._observe_files(task, outputs=True)
        if self.argument_limit is not None:  # recording: the result's digest (the sink computes it if not known)
            known = task.result_digest
            self.sink.emit(TaskReturned(self.run_id, task.id, task.time_returned, None if known else result, known))
        app_fu = task.app_fu
        self.forget(task)  # may drop task.app_fu
        app_fu.set_result(result)

    def _fail(self, task: TaskRecord, state: States, error: BaseException) -> None:
        if self.fail_fast and state is States.failed and self.halted is None:
            self.halted = WorkflowHalted(task.id, task.func_name, error)
            logger.error("%s", self.halted)
        task.time_returned = time.time()
        try:
            self.memoizer.update_memo_exception(task, error)
        except Exception:
            logger.exception("Memoizer failed to record the failure of task %s", task.id)
        self.states.move(task, state, detail=f"{type(error).__name__}: {error}",
                         traceback=None if state is States.dep_fail else failure_traceback(error))
        if task.kwargs and state is not States.dep_fail:
            self._observe_files(task, outputs=False)
        app_fu = task.app_fu
        self.forget(task)  # may drop task.app_fu
        app_fu.set_exception(error)

    def cancel(self, task: TaskRecord) -> None:
        """End an unfinished task as ``cancelled`` (the run is ending, see ``cancelling``): its
        future raises ``TaskCancelled``, and its dependents are cancelled in turn. A task that
        reached a final state meanwhile is left as it is."""
        cause = self.cancelling or "the run ended before the task finished"
        task.time_returned = time.time()
        if not self.states.move_unless_final(task, States.cancelled, detail=cause):
            return
        logger.info("Task %s (%s) cancelled: %s", task.id, task.func_name, cause)
        app_fu = task.app_fu
        self.forget(task)  # may drop task.app_fu
        if app_fu is not None and not app_fu.done():
            app_fu.set_exception(TaskCancelled(task.id, task.func_name, cause))

    def _observe_inputs(self, task: TaskRecord) -> None:
        """Record the input files a try reads, now that any producing task has finished."""
        for f in task.kwargs["inputs"]:
            if isinstance(f, File):
                url = f.filepath if f.scheme == "file" else f.url
                self.sink.emit(FileObserved(self.run_id, task.id, task.try_id, task.try_time_launched, url, "input"))

    def _observe_files(self, task: TaskRecord, outputs: bool) -> None:
        """Record the task's stream files, and its output files when it succeeded. The store
        hashes them off this thread; a cached task's outputs were already hashed by the memoizer."""
        kwargs = task.kwargs
        now = time.time()
        if outputs and kwargs.get("outputs") and (task.hashsum is None or task.from_memo):
            for f in kwargs["outputs"]:
                url = f.url if isinstance(f, File) else f if isinstance(f, str) else None
                if url is not None:
                    self.sink.emit(FileObserved(self.run_id, task.id, task.try_id, now, url, "output"))
        for role in ("stdout", "stderr"):
            spec = kwargs.get(role)
            if isinstance(spec, tuple):
                spec = spec[0]
            if isinstance(spec, File) and spec.scheme != "file":
                url = spec.url
            elif isinstance(spec, (str, os.PathLike)):
                url = os.path.abspath(os.fsdecode(spec))
            else:
                url = None
            if url:
                self.sink.emit(FileObserved(self.run_id, task.id, task.try_id, now, url, role))

    def fail_internally(self, task: TaskRecord, error: BaseException) -> None:
        """A bug or a broken plug-in hit this task: fail it for good rather than leave it hanging."""
        logger.error("Internal error handling task %s (%s)", task.id, task.func_name, exc_info=error)
        try:
            if getattr(task, "status", None) not in FINAL_STATES:
                self._fail(task, States.failed, error)
        except Exception:
            logger.exception("Could not record the internal failure of task %s", task.id)
        finally:
            app_fu = getattr(task, "app_fu", None)
            if app_fu is not None and not app_fu.done():
                app_fu.set_exception(error)


def ended_by_shutdown(error: BaseException) -> bool:
    """Whether a try's error came from the run ending (an executor shut down or its workers
    stopped, a queued call cancelled, a dependency cancelled) rather than from the app itself."""
    return isinstance(error, (CancelledError, ExecutionStopped)) or (
        isinstance(error, DependencyError) and any(isinstance(e, CancelledError)
                                                   for e, _ in error.dependent_exceptions_tids))


class _Settle:
    """An executor future's done-callback for one try of one task."""

    __slots__ = ("runner", "task")

    def __init__(self, runner: TaskRunner, task: TaskRecord) -> None:
        self.runner = runner
        self.task = task

    def __call__(self, fut: Future) -> None:
        try:
            self.runner.settle(self.task, fut)
        except Exception as e:
            self.runner.fail_internally(self.task, e)
