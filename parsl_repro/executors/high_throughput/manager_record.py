"""What the interchange knows about each worker pool (manager) registered with it."""
from __future__ import annotations

import time
from typing import Any

from parsl_repro.executors.high_throughput.messages import PoolEvent, PoolEventKind, PoolInfo

SHORT_TASK_SECONDS = 0.05
"""A pool whose tasks come back (sent to result received, on the interchange's clock) within
this long on average is sent one extra task per worker beyond its capacity: see ``limit``."""


class ManagerRecord:
    """One registered worker pool (manager), as the interchange keeps it.

    ``record["block_id"]`` reads the same as ``record.block_id``, so a ``ManagerSelector``
    written against Parsl's dict-shaped records (``block_id``, ``tasks``, ``worker_count``,
    ``max_capacity``, ``active``, ``draining``, ``hostname``, ``idle_since``, ``parsl_version``,
    ``python_version``, ``packages``) works on these."""

    __slots__ = ("uid", "identity", "hostname", "block_id", "worker_count", "capacity", "tasks", "last_heard",
                 "registered", "active", "draining", "idle_since", "python_version", "version", "pid",
                 "packages", "idle_reported", "turnaround", "cpu_count", "total_memory")

    def __init__(self, identity: bytes, info: dict[str, Any]) -> None:
        self.identity = identity
        self.uid = str(info.get("uid") or identity.decode(errors="replace"))
        self.hostname = str(info.get("hostname", "?"))
        self.block_id = str(info.get("block_id", ""))
        self.worker_count = int(info.get("worker_count", 1))
        self.capacity = int(info.get("capacity", self.worker_count))
        self.python_version = str(info.get("python_version", ""))
        self.version = str(info.get("parsl_repro_version", ""))
        pid = info.get("pid")
        self.pid: int | None = pid if isinstance(pid, int) else None
        self.cpu_count = int(info.get("cpu_count") or 0)
        self.total_memory = int(info.get("total_memory") or 0)
        packages = info.get("packages")
        self.packages: dict[str, str] = dict(packages) if isinstance(packages, dict) else {}
        self.tasks: dict[bytes, float] = {}  # task id -> when it was sent (time.monotonic())
        self.turnaround: float | None = None  # moving average, seconds from send to result
        self.last_heard = time.monotonic()
        self.registered = time.time()
        self.active = True
        self.draining = False
        self.idle_since: float | None = time.time()
        self.idle_reported = True  # the registration's node record shows it idle

    def limit(self, short_task_prefetch: bool, now: float) -> int:
        """How many tasks the pool may hold at ``now`` (time.monotonic()): its capacity (workers
        plus ``prefetch_capacity``), or, with ``short_task_prefetch`` while its tasks come back
        within ``SHORT_TASK_SECONDS`` and none it holds has been out longer, at least two per
        worker, so a worker that finishes finds its next task waiting instead of idling for a round
        trip through the interchange. The interchange gives these extras only once every pool is
        at capacity; a task held this way waits at most about one short task's run time."""
        if short_task_prefetch and self.turnaround is not None and self.turnaround < SHORT_TASK_SECONDS:
            oldest = next(iter(self.tasks.values()), now)  # tasks are held in the order they were sent
            if now - oldest < SHORT_TASK_SECONDS:
                return max(self.capacity, 2 * self.worker_count)
        return self.capacity

    def returned(self, task_id: bytes, now: float) -> None:
        """The result of ``task_id`` arrived at ``now`` (time.monotonic())."""
        sent = self.tasks.pop(task_id, None)
        if sent is not None:
            took = now - sent
            average = self.turnaround
            self.turnaround = took if average is None else 0.8 * average + 0.2 * took

    def info(self) -> PoolInfo:
        """The pool as ``connected_managers()`` shows it."""
        return PoolInfo(manager=self.uid, block_id=self.block_id, hostname=self.hostname,
                        worker_count=self.worker_count, tasks=len(self.tasks), active=self.active,
                        draining=self.draining, idle_duration=0.0 if self.idle_since is None
                        else max(0.0, time.time() - self.idle_since), python_version=self.python_version,
                        parsl_version=self.version, pid=self.pid)

    def event(self, kind: PoolEventKind, when: float | None = None, reason: str = "") -> PoolEvent:
        """A ``PoolEvent`` of this pool, dated ``when`` (time.time(); now if None)."""
        return PoolEvent(kind=kind, manager=self.uid, time=time.time() if when is None else when,
                         hostname=self.hostname, block_id=self.block_id, worker_count=self.worker_count,
                         cpu_count=self.cpu_count, total_memory=self.total_memory,
                         python_version=self.python_version, reason=reason)

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, _PARSL_KEYS.get(key, key))
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


_PARSL_KEYS = {"max_capacity": "capacity", "parsl_version": "version", "start_time": "registered"}
