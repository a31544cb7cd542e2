"""The one event stream: what happens in a run, as small immutable records, and the sink contract.

The kernel, executors, providers and staging describe everything they do as events and hand them
to one ``EventSink``. They never write anywhere themselves; the provenance store is simply a sink
that queues events for its writer thread. ``emit`` runs on the task hot path, so a sink must
return in microseconds: append to a queue, never touch a disk or a socket.

Times are ``time.time()`` floats (seconds since the epoch) taken when the event was made.

The records are named tuples: building one costs a third of a frozen dataclass, and a tuple
crosses to the writer process without any per-field work. A successful task is three events:
``TaskCreated`` (which stands for its move into ``pending``), ``TaskState`` to ``launched`` (which
opens a try, on the executor named in ``detail``) and ``TaskState`` to its final state (which
closes the try).
"""
from __future__ import annotations

import threading
from abc import ABCMeta, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class RunStarted(NamedTuple):
    """A run began: the first event of every run, from which the store writes the run's row.

    ``environment`` is where, how and with what code it was started: a read-only mapping with the
    keys of ``RunEnvironment.as_dict()`` (``parsl_repro.monitoring.environment``: script, argv,
    host, user, packages, git state), or None when nothing was captured. The kernel's is a
    ``PendingEnvironment``: the run's writer process captures it, so that a run starts without
    waiting for git and the package list; read in the run's own process, it is captured there when
    first read. ``dict(environment)`` is a plain copy. The store also marks, when it writes this
    row, the runs of the same host whose process is gone as ``killed``.
    """
    run_id: str
    run_dir: str
    time: float
    workflow_name: str
    config_summary: str
    runinfo_dir: str = ""
    workflow_version: str | None = None
    pid: int | None = None
    environment: Mapping[str, Any] | None = None
    replay_of: str | None = None
    """The run this one replays (``parsl-repro replay``): recorded as its parent run too."""


class RunEnded(NamedTuple):
    run_id: str
    time: float
    outcome: str
    state_counts: dict[str, int]


class TaskCreated(NamedTuple):
    """A task entered the graph, in state ``pending``: its app, where it may run, and which tasks
    it waits on.

    ``args`` and ``kwargs`` are the call's own objects (futures unresolved), for a bounded
    readable record; sinks must not keep or mutate them.
    """
    run_id: str
    task_id: int
    time: float
    func_name: str
    app_kind: str
    executor: str
    depends_on: tuple[int, ...]
    memoize: bool
    args: tuple = ()
    kwargs: dict | None = None
    app_digest: str | None = None
    """The identity of the app's code when the task was submitted (``AppSeen`` describes it)."""
    launched_by: int | None = None
    """The join app task whose function submitted this one, if any."""


class AppSeen(NamedTuple):
    """The identity of an app's function, the first time a run computes it.

    ``options`` is what its decorator said (``memo.recipe.app_options``) and ``recipe`` how to rebuild
    the function for a replay (``memo.recipe.describe``), written when the identity was computed, so
    the two describe the same code.
    """
    app_digest: str
    qualname: str
    module: str
    kind: str
    source: str | None
    components: dict[str, str]
    options: dict[str, Any] | None = None
    recipe: str | None = None


class MemoTableLoaded(NamedTuple):
    """Which earlier results a run's memo table started with, once, when the run starts.

    ``from_store``: every run recorded in the store before this one (``reuse_from_store``);
    ``runs``: the recorded runs that ``checkpoint_files`` (or ``checkpoint_mode``'s rule) named;
    ``files``: checkpoint files read because the store does not know their run; ``results``:
    how many results were loaded. ``enabled`` is False when ``app_cache=False``. All empty: the
    table started empty (Parsl's rule with neither ``checkpoint_files`` nor ``checkpoint_mode``).
    ``parent_run_id``: the run this one resumes, the newest of those its ``checkpoint_files`` name.
    """
    run_id: str
    time: float
    enabled: bool
    from_store: bool
    runs: tuple[str, ...]
    files: tuple[str, ...]
    results: int
    parent_run_id: str | None = None


class TaskInputs(NamedTuple):
    """The ``inputs=`` of a task as it launched, when they held futures from outside the
    workflow (a plain ``concurrent.futures.Future``): their values, which no task record holds.
    Futures of tasks are recorded as links to those tasks instead (``TaskCreated``)."""
    run_id: str
    task_id: int
    time: float
    inputs: Any


class TaskKeyed(NamedTuple):
    """A cached task's memo key and its parts, computed when its arguments were resolved.

    ``note`` says why the task will not be cached (an argument that cannot be hashed
    deterministically) or why a recorded result was not reused (its outputs changed). On a memo
    hit, ``source_run`` and ``source_task`` name the task whose result is reused.
    """
    run_id: str
    task_id: int
    time: float
    memo_key: str | None
    app_digest: str | None
    components: dict[str, str]
    note: str | None = None
    source_run: str | None = None
    source_task: int | None = None


class TaskResult(NamedTuple):
    """A cached task's successful result, serialized for reuse by later tasks and runs."""
    run_id: str
    task_id: int
    time: float
    memo_key: str
    result_digest: str
    serializer: str
    value: bytes
    outputs: tuple[tuple[str, str], ...] = ()


class TaskArguments(NamedTuple):
    """A task's arguments as it first launched (or was found in the memo table): futures replaced by
    their values, for replay. The sink serializes them (``parsl_repro.serialize``), stores the
    bytes once per digest, and keeps only the digest and a "not replayable" note when they cannot
    be serialized or their serialized size exceeds ``limit`` bytes (``Config.provenance_argument_limit``).

    ``args`` and ``kwargs`` are the task's own objects; sinks must not keep or mutate them past
    rendering, and render them soon (a task that mutates its own arguments in place may otherwise
    be recorded after the change).
    """
    run_id: str
    task_id: int
    time: float
    args: tuple
    kwargs: dict
    limit: int


class TaskReturned(NamedTuple):
    """A task completed with a value (``exec_done`` or ``memo_done``). ``digest`` is the sha256 of the
    value serialized through ``parsl_repro.serialize`` when the kernel already knows it (a cached
    task's stored result); otherwise the sink computes it from ``value`` and then drops the value."""
    run_id: str
    task_id: int
    time: float
    value: Any
    digest: str | None = None


class TaskCommand(NamedTuple):
    """The command line a bash app's try rendered and ran (or tried to run)."""
    run_id: str
    task_id: int
    try_id: int
    command: str


class TaskJoined(NamedTuple):
    """A join app's try returned futures to wait on: ``joins`` are the tasks behind them (futures
    that are not tasks of this run are not named)."""
    run_id: str
    task_id: int
    try_id: int
    time: float
    joins: tuple[int, ...]


class TaskState(NamedTuple):
    """One move of the task state machine; ``cause`` says why (a transition table entry).

    ``detail`` adds what the move needs: the error's text for a failure, the executor's label
    for a launch (which opens try ``try_id``; the next move of the task closes it). ``running``
    is when the try started running, for executors that run tries in the kernel's own process
    (threads), which report it here instead of with a ``TryPlaced`` of their own. A move into a
    final state carries the task's ``fail_count`` (failed tries) and ``fail_cost`` (what they
    cost against ``retries``, as ``retry_handler`` charged them), as the kernel counted them. A try
    that failed (into ``fail_retryable`` or ``failed``) carries its error's ``traceback``
    (``utils.failure_traceback``).
    """
    run_id: str
    task_id: int
    try_id: int
    time: float
    old: str | None
    new: str
    cause: str
    detail: str | None = None
    running: float | None = None
    fail_count: int | None = None
    fail_cost: float | None = None
    traceback: str | None = None


class FileObserved(NamedTuple):
    """A file used by a task try: ``role`` is input, output, stdout or stderr. Without a digest,
    the store hashes a local file itself (off the task's path)."""
    run_id: str
    task_id: int
    try_id: int
    time: float
    url: str
    role: str
    size: int | None = None
    sha256: str | None = None
    mtime: float | None = None


class TryPlaced(NamedTuple):
    """Where an executor ran a try: reported by executors with remote workers when the try
    starts on (or returns from) a worker. ``block_id``, ``manager`` and ``pid`` are ``None``
    where the executor has no such notion."""
    run_id: str
    task_id: int
    try_id: int
    time: float
    executor: str
    hostname: str | None
    block_id: str | None
    manager: str | None
    pid: int | None


class BlockState(NamedTuple):
    """A block of resources changed state at its provider: ``state`` is a ``JobState`` name
    (PENDING, RUNNING, CANCELLED, COMPLETED, FAILED, ...); ``job_id`` is the provider's id;
    ``detail`` the provider's message; ``provider`` its class and label, ``host`` where its
    scheduler commands ran (the channel's host), ``script_sha256`` the digest of the submit
    script the job ran."""
    run_id: str
    executor: str
    block_id: str
    time: float
    state: str
    job_id: str | None = None
    detail: str | None = None
    provider: str | None = None
    host: str | None = None
    script_sha256: str | None = None


class NodeSeen(NamedTuple):
    """A worker pool (manager) registered with, or was lost by, an executor."""
    run_id: str
    executor: str
    manager: str
    time: float
    hostname: str
    block_id: str | None
    cpu_count: int
    total_memory: int
    worker_count: int
    python_version: str
    active: bool


class ResourceSample(NamedTuple):
    """One psutil sample of the process tree running a try."""
    run_id: str
    task_id: int
    try_id: int
    time: float
    interval: float
    pid: int
    cpu_user: float
    cpu_system: float
    memory_resident: int
    memory_virtual: int
    memory_percent: float
    disk_read: int
    disk_write: int
    children: int
    status: str | None = None


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
