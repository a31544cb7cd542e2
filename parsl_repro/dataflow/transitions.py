"""The task state machine: one table of allowed moves, state counts, and one event per move."""
from __future__ import annotations

import logging
import threading
import time

from parsl_repro.dataflow.states import FINAL_STATES, TRANSITIONS, States
from parsl_repro.dataflow.taskrecord import TaskRecord
from parsl_repro.errors import InternalConsistencyError
from parsl_repro.events import EventSink, TaskState

logger = logging.getLogger(__name__)


class TaskStateMachine:
    """Moves tasks between states, only along ``TRANSITIONS``.

    Each move updates ``counts`` (what ``dfk.task_state_counts`` shows) and emits a ``TaskState``
    event carrying the table's cause, or a more specific one given by the caller; a new task
    ``enter``s without one. An impossible
    move raises ``InternalConsistencyError`` with the task's last state.
    """

    def __init__(self, run_id: str, sink: EventSink) -> None:
        self.run_id = run_id
        self.sink = sink
        self.counts: dict[States, int] = {state: 0 for state in States}
        self._lock = threading.Lock()

    def enter(self, task: TaskRecord) -> None:
        """Count a new task as ``pending``. No event: the task's ``TaskCreated`` stands for this move."""
        with self._lock:
            self.counts[States.pending] += 1
            task.status = States.pending
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("Task %s changing state from nothing to pending", task.id,
                         extra={"parsl.dfk": self.run_id, "parsl.task": task.id, "parsl.task_state": "pending"})

    def move(self, task: TaskRecord, new: States, cause: str | None = None, detail: str | None = None,
             traceback: str | None = None) -> None:
        with self._lock:
            old, table_cause = self._move_locked(task, new)
        self._record(task, old, new, cause or table_cause, detail, traceback)

    def _move_locked(self, task: TaskRecord, new: States) -> tuple[States | None, str]:
        old = getattr(task, "status", None)
        table_cause = TRANSITIONS.get((old, new))
        if table_cause is None:
            raise InternalConsistencyError(
                f"task {task.id} ({task.func_name}) cannot move from {old.name if old is not None else 'nothing'} "
                f"to {new.name}")
        if old is not None:
            self.counts[old] -= 1
        self.counts[new] += 1
        task.status = new
        return old, table_cause

    def _record(self, task: TaskRecord, old: States | None, new: States, cause: str, detail: str | None,
                traceback: str | None = None) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("Task %s changing state from %s to %s", task.id, "nothing" if old is None else old.name,
                         new.name,
                         extra={"parsl.dfk": self.run_id, "parsl.task": task.id, "parsl.task_state": new.name})
        final = new in FINAL_STATES  # a final move carries the fail count and cost as the kernel charged them
        self.sink.emit(TaskState(self.run_id, task.id, task.try_id, time.time(), None if old is None else old.name,
                                 new.name, cause, detail, task.try_time_running,
                                 task.fail_count if final else None, float(task.fail_cost) if final else None,
                                 traceback))

    def move_unless_final(self, task: TaskRecord, new: States, cause: str | None = None,
                          detail: str | None = None) -> bool:
        """``move``, unless the task already reached a final state (another thread settled it
        first): then nothing happens and False is returned."""
        with self._lock:
            if getattr(task, "status", None) in FINAL_STATES:
                return False
            old, table_cause = self._move_locked(task, new)
        self._record(task, old, new, cause or table_cause, detail)
        return True

    def summary(self) -> dict[str, int]:
        with self._lock:
            return {state.name: n for state, n in self.counts.items() if n}
