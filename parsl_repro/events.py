"""The one event stream: what happens in a run, as small frozen records, and the sink contract.

The kernel, executors, providers and staging describe everything they do as events and hand them
to one ``EventSink``. They never write anywhere themselves; the provenance store is simply a sink
that queues events for its writer thread. ``emit`` runs on the task hot path, so a sink must
return in microseconds: append to a queue, never touch a disk or a socket.

Times are ``time.time()`` floats (seconds since the epoch) taken when the event was made.
"""
from __future__ import annotations

import threading
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RunStarted:
    run_id: str
    run_dir: str
    time: float
    workflow_name: str
    config_summary: str


@dataclass(frozen=True, slots=True)
class RunEnded:
    run_id: str
    time: float
    outcome: str
    state_counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class TaskCreated:
    """A task entered the graph: its app, where it may run, and which tasks it waits on."""
    run_id: str
    task_id: int
    time: float
    func_name: str
    app_kind: str
    executor: str
    depends_on: tuple[int, ...]
    memoize: bool


@dataclass(frozen=True, slots=True)
class TaskState:
    """One move of the task state machine; ``cause`` says why (a transition table entry)."""
    run_id: str
    task_id: int
    try_id: int
    time: float
    old: str | None
    new: str
    cause: str
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class TryStarted:
    run_id: str
    task_id: int
    try_id: int
    time: float
    executor: str


@dataclass(frozen=True, slots=True)
class TryEnded:
    run_id: str
    task_id: int
    try_id: int
    time: float
    error: str | None


@dataclass(frozen=True, slots=True)
class FileObserved:
    run_id: str
    task_id: int
    time: float
    url: str
    role: str
    size: int | None = None
    sha256: str | None = None


Event = Any
"""Any of the event records above (and those later layers add)."""


class EventSink(metaclass=ABCMeta):
    """Receives every event of a run.

    Who calls what, and when:
      * the DataFlowKernel calls ``emit`` from whichever thread caused the event (the submitting
        thread, an executor's completion thread, a timer); ``emit`` must be thread-safe and cheap;
      * the DataFlowKernel calls ``close`` once, at cleanup, after the last event.
    """

    @abstractmethod
    def emit(self, event: Event) -> None:
        """Take one event. No I/O here: queue it for later."""

    def close(self) -> None:
        """No more events will come; flush what is queued."""


class NullSink(EventSink):
    """Drops every event (a run with recording switched off)."""

    def emit(self, event: Event) -> None:
        pass


class FanOutSink(EventSink):
    """Passes each event to several sinks, in order."""

    def __init__(self, sinks: list[EventSink]) -> None:
        self.sinks = list(sinks)

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            sink.emit(event)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


@dataclass
class RecordingSink(EventSink):
    """Keeps every event in a list: for tests and for tools that inspect one run in memory."""
    events: list[Event] = field(default_factory=list)
    closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def emit(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def close(self) -> None:
        self.closed = True

    def of_type(self, kind: type) -> list[Event]:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]
