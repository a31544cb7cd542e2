"""``MessageType``: the tag on each monitoring message a radio carries, with Parsl's names and
values, so that a message sent by Parsl-era code is read the same way here."""
from __future__ import annotations

from enum import Enum


class MessageType(Enum):
    """What a ``(MessageType, dict)`` monitoring message reports."""

    TASK_INFO = 0
    """A task's progress seen by the submit side: launch, completion, failure."""

    RESOURCE_INFO = 1
    """One resource sample of a running task (CPU time, memory, disk I/O), from a worker."""

    WORKFLOW_INFO = 2
    """The run itself: start and end."""

    NODE_INFO = 3
    """A node's capacity (CPUs, memory, workers), reported when a manager registers."""

    BLOCK_INFO = 4
    """A block's state at its provider: pending, running, completed, failed."""

    WORKER_TASK_INFO = 5
    """A task starting or ending on a worker."""
