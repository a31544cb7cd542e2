"""Taking a queue of events in batches: what the writer and the kernel's shipper thread both do.
(No SQLAlchemy here, so the kernel's process never loads it to ship events.)"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

PACE = 0.05
"""Seconds a writer waits after a small batch before taking the next: events then arrive in
batches of hundreds, not ones and twos, and the per-batch cost (a transaction, a pipe write)
stays off each event. A full batch is followed at once; closing never waits."""


def batches(events: queue.SimpleQueue, stop: threading.Event, limit: int, idle: Callable[[], None] | None = None,
            pace: float = PACE) -> Iterator[list]:
    """Yield lists of queued events, up to ``limit`` each, until ``stop`` is set and the queue is
    empty. ``idle()`` runs whenever a wait finds nothing."""
    while True:
        try:
            first = events.get(timeout=0.05)
        except queue.Empty:
            # ``stop`` is set after the last put, so once it reads set, an empty queue stays empty.
            # Check both, in that order: the producer may put its last events and set ``stop``
            # between the ``Empty`` above and this line.
            if stop.is_set() and events.empty():
                return
            if idle is not None:
                idle()
            continue
        started = time.monotonic()
        batch = [first]
        while len(batch) < limit:
            try:
                batch.append(events.get_nowait())
            except queue.Empty:
                break
        yield batch
        if len(batch) < limit:
            stop.wait(pace - (time.monotonic() - started))
