"""What a HighThroughputExecutor does with what its interchange sends back, on its I/O thread.

* A result (``OK``) completes its task's future and, for a task the kernel submitted, becomes a
  ``TryPlaced`` event (host, block, pool, worker pid, when it started) and one
  ``ResourceSample`` per sample that travelled with it.
* A lost task (``LOST``, a ``messages.TaskLost``) fails its future with ``WorkerLost`` or
  ``ManagerLost``.
* A pool event (``messages.PoolEvent``) becomes one ``NodeSeen``. The interchange decides pool
  activity (busy, idle); this side only records it, and keeps each pool's registration to say
  where later tries ran.
* The interchange dying, or closing the link unasked, fails every outstanding task with a
  ``BadStateException`` that says so and names its log.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from parsl_repro.events import NodeSeen, ResourceSample, TryPlaced
from parsl_repro.executors.errors import BadStateException
from parsl_repro.executors.high_throughput import protocol as p
from parsl_repro.executors.high_throughput.messages import PoolEvent, PoolEventKind, TaskLost, decode
from parsl_repro.serialize import deserialize

if TYPE_CHECKING:
    from parsl_repro.executors.high_throughput.executor import HighThroughputExecutor

logger = logging.getLogger(__name__)

_META_SIZE = p.META.size

INTERCHANGE_EXIT_WAIT = 5.0
"""Seconds to wait, once the interchange has closed its link, for its exit status to say why."""


class ResultHandler:
    """The executor's half of the link: ``InterchangeLink.serve`` hands it what arrives.

    ``pools`` holds each pool's registration by pool id, for the placement of its tries;
    ``connected`` the pools registered and not yet reported gone."""

    def __init__(self, executor: HighThroughputExecutor) -> None:
        self.executor = executor
        self.pools: dict[str, PoolEvent] = {}
        self.connected: set[str] = set()

    def results(self, frames: list[bytes]) -> None:
        """Complete the futures of one RESULTS message (five frames per result after the tag)."""
        executor = self.executor
        tasks = executor.tasks
        emit = executor.event_sink.emit
        run_id = executor.run_id or ""
        for i in range(1, len(frames) - 4, 5):
            manager, task_frame, status, meta, payload = frames[i:i + 5]
            future = tasks.pop(p.unpack_id(task_frame), None)
            if future is None:
                logger.warning("Result for unknown task %s of %s", p.unpack_id(task_frame), executor.label)
                continue
            if status == p.OK:
                started, pid = p.META.unpack_from(meta)
                record = getattr(future, "parsl_task", None)
                if record is not None:
                    self._placed(record, manager.decode(), started, pid, meta, emit, run_id)
                try:
                    future.set_result(deserialize(payload))
                except Exception as e:
                    future.set_exception(e)
            else:
                future.set_exception(_lost(payload))

    def _placed(self, record: tuple[int, int], manager: str, started: float, pid: int, meta: bytes,
                emit: Callable[[Any], None], run_id: str) -> None:
        """Tell the store where and when the try ran, with its resource samples."""
        task_id, try_id = record
        pool = self.pools.get(manager)
        where = (pool.hostname, pool.block_id, pool.manager) if pool is not None else (None, None, None)
        emit(TryPlaced(run_id, task_id, try_id, started, self.executor.label, *where, pid))
        if len(meta) > _META_SIZE:
            for s in p.loads(meta[_META_SIZE:]):
                emit(ResourceSample(run_id, task_id, try_id, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8],
                                    s[9], s[10], s[11]))

    def pool_events(self, events: list[PoolEvent]) -> None:
        """One node record per event, as Parsl's monitoring keeps them."""
        executor = self.executor
        run_id = executor.run_id or ""
        for event in events:
            if event.kind is PoolEventKind.REGISTERED:
                self.pools[event.manager] = event
            if event.active:
                self.connected.add(event.manager)
            else:
                self.connected.discard(event.manager)
            executor.event_sink.emit(NodeSeen(run_id, executor.label, event.manager, event.time, event.hostname,
                                              event.block_id, event.cpu_count, event.total_memory,
                                              event.worker_count, event.python_version, event.active))

    def unreported_stops(self) -> None:
        """Record as stopped the pools the interchange never said were gone (it died first)."""
        now = time.time()
        self.pool_events([dataclasses.replace(self.pools[uid], kind=PoolEventKind.STOPPED, time=now)
                          for uid in sorted(self.connected)])

    def interchange_died(self) -> bool:
        """Whether the interchange has exited; if so, fail every outstanding task saying so."""
        executor = self.executor
        proc = executor.interchange_proc
        if proc is None or proc.poll() is None:
            return False
        error = BadStateException(executor, RuntimeError(
            f"the interchange of executor {executor.label} (pid {proc.pid}) exited with status {proc.returncode}; "
            f"{len(executor.tasks)} outstanding tasks failed. See {_log(executor)}"))
        logger.error("%s", error)
        executor.set_bad_state_and_fail_all(error)
        return True

    def link_closed(self) -> None:
        """The interchange closed its end: its exit status says why, if it comes in time."""
        deadline = time.monotonic() + INTERCHANGE_EXIT_WAIT
        while not self.interchange_died():
            if time.monotonic() > deadline:  # alive but deaf (a wrapper command?)
                self.failed(BadStateException(self.executor, RuntimeError(
                    f"the interchange of executor {self.executor.label} closed its link; see {_log(self.executor)}")))
                return
            time.sleep(0.01)

    def failed(self, error: Exception) -> None:
        """The I/O thread cannot go on: every outstanding and later task fails with ``error``."""
        self.executor.set_bad_state_and_fail_all(error)


def _lost(payload: bytes) -> Exception:
    """The error a task fails with when its worker or pool was lost (``payload``: a ``TaskLost``)."""
    try:
        lost = decode(payload)
    except Exception as e:
        return RuntimeError(f"the task was lost, and the report of how could not be read: {e}")
    if not isinstance(lost, TaskLost):
        return RuntimeError(f"the task was lost, and the report of how is a {type(lost).__name__}")
    return lost.exception()


def _log(executor: HighThroughputExecutor) -> str:
    return os.path.join(executor.logdir, "interchange.log")

