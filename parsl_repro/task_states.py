"""Task states (Parsl's numbering) and the one table of moves allowed between them: the one
statement of them, below every other layer. The kernel moves tasks along ``TRANSITIONS``; the
store, the queries and the command line hold states as their names and use the name sets here.

A successful task goes pending -> launched -> exec_done. Everything else is a named detour:
retries (launched -> fail_retryable -> pending), memo hits (pending -> memo_done), dependency
failures (pending -> dep_fail), join apps (launched -> joining -> exec_done | failed), and
cancellation (any unfinished state -> cancelled) when the run is interrupted or cleaned up before
the task finished: not a failure, and never retried.
``running`` and ``running_ended`` are only ever reported by executors' monitoring, never set by
the kernel. ``parsl_repro.dataflow.states`` (Parsl's module path) re-exports these.
"""
from __future__ import annotations

from enum import IntEnum


class States(IntEnum):
    """The states a task may be in, in the kernel and in the provenance store."""

    pending = 0
    running = 2
    exec_done = 3
    failed = 4
    dep_fail = 5
    launched = 7
    fail_retryable = 8
    memo_done = 9
    joining = 10
    running_ended = 11
    cancelled = 12

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


FINAL_FAILURE_STATES = frozenset({States.failed, States.dep_fail})
"""Final states that mean the task failed."""

FINAL_STATES = frozenset({States.exec_done, States.memo_done, *FINAL_FAILURE_STATES, States.cancelled})
"""States a task never leaves."""

TRANSITIONS: dict[tuple[States | None, States], str] = {
    (None, States.pending): "submitted",
    (States.pending, States.launched): "dependencies met, sent to executor",
    (States.pending, States.memo_done): "memo hit",
    (States.pending, States.dep_fail): "dependency failed",
    (States.pending, States.failed): "launch failed",
    (States.pending, States.fail_retryable): "launch failed, will retry",
    (States.launched, States.exec_done): "executor returned a result",
    (States.launched, States.failed): "executor returned an error, no retries left",
    (States.launched, States.dep_fail): "app raised a dependency error",
    (States.launched, States.fail_retryable): "executor returned an error, will retry",
    (States.launched, States.joining): "join app returned futures to wait on",
    (States.fail_retryable, States.pending): "retry",
    (States.fail_retryable, States.failed): "internal error while retrying",
    (States.joining, States.exec_done): "joined futures completed",
    (States.joining, States.failed): "a joined future failed",
    (States.pending, States.cancelled): "run ended before the task ran",
    (States.launched, States.cancelled): "run ended while the task was running",
    (States.fail_retryable, States.cancelled): "run ended before the task was retried",
    (States.joining, States.cancelled): "run ended while the join app waited",
}
"""Every allowed move ``(old, new)`` and the cause recorded with it; any other move is a bug."""


# --- the same, as names: for layers that hold states as text (the store, the queries, the CLI) ---------------------
TASK_STATES = ("pending", "launched", "running", "running_ended", "joining", "fail_retryable", "exec_done",
               "memo_done", "failed", "dep_fail", "cancelled")
"""Every state's name, in the order a task meets them."""
assert set(TASK_STATES) == {state.name for state in States}

SUCCEEDED_STATES = frozenset({States.exec_done.name, States.memo_done.name})
"""Names of the final states that mean success."""
FAILED_STATES = frozenset(state.name for state in FINAL_FAILURE_STATES)
"""Names of the final states that mean failure."""
CANCELLED = States.cancelled.name
"""The final state of a task that never finished because its run ended first: neither a success
nor a failure."""
FINISHED_STATES = frozenset(state.name for state in FINAL_STATES)
"""Names of every final state."""
SUBMITTED = TRANSITIONS[(None, States.pending)]
"""The cause of a task's first move, into pending (which a ``TaskCreated`` event stands for)."""
