"""``RadioBridge``: turns the monitoring messages a radio receiver delivers into provenance events
of one run, for code that sends Parsl-style monitoring messages itself.

Translated (Parsl's dict keys -> our event):

* ``RESOURCE_INFO`` -> ``ResourceSample`` (``task_id``, ``try_id``, ``timestamp``,
  ``resource_monitoring_interval``, ``psutil_process_*``);
* ``BLOCK_INFO`` -> ``BlockState`` (``executor_label``, ``block_id``, ``job_id``, ``status``,
  ``timestamp``).

The kernel records tasks, tries and the run itself, so ``TASK_INFO``, ``WORKER_TASK_INFO`` and
``WORKFLOW_INFO`` are not translated; neither is ``NODE_INFO`` (executors report their nodes).
Each kind left out is logged once, and a message that cannot be translated (a missing key, a
value of the wrong type) is logged and counted in ``rejected``. Every event names the bridge's
run, whatever ``run_id`` the message claims: a sender reaches this run's receiver only with
this run's radio settings, so it may describe this run and no other.
"""
from __future__ import annotations

import datetime
import logging
import queue
import threading
from collections.abc import Callable
from multiprocessing.queues import Queue
from typing import Any

from parsl_repro.events import BlockState, EventSink, ResourceSample
from parsl_repro.monitoring.message_type import MessageType

logger = logging.getLogger(__name__)

def _time(value: Any) -> float:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"timestamp is a {type(value).__name__}, expected a datetime or seconds")


def resource_sample(run_id: str, d: dict[str, Any]) -> ResourceSample:
    """A ``ResourceSample`` from Parsl's ``RESOURCE_INFO`` dict."""
    status = d.get("psutil_process_status")
    return ResourceSample(
        run_id, int(d["task_id"]), int(d["try_id"]), _time(d["timestamp"]),
        float(d.get("resource_monitoring_interval") or 0), int(d["psutil_process_pid"]),
        float(d.get("psutil_process_time_user") or 0), float(d.get("psutil_process_time_system") or 0),
        int(d.get("psutil_process_memory_resident") or 0), int(d.get("psutil_process_memory_virtual") or 0),
        float(d.get("psutil_process_memory_percent") or 0), int(d.get("psutil_process_disk_read") or 0),
        int(d.get("psutil_process_disk_write") or 0), int(d.get("psutil_process_children_count") or 0),
        None if status is None else str(status))


def block_state(run_id: str, d: dict[str, Any]) -> BlockState:
    """A ``BlockState`` from Parsl's ``BLOCK_INFO`` dict."""
    job_id = d.get("job_id")
    return BlockState(run_id, str(d["executor_label"]), str(d["block_id"]), _time(d["timestamp"]), str(d["status"]),
                      None if job_id is None else str(job_id))


TRANSLATIONS: dict[MessageType, Callable[[str, dict[str, Any]], Any]] = {
    MessageType.RESOURCE_INFO: resource_sample,
    MessageType.BLOCK_INFO: block_state,
}


class RadioBridge:
    """A thread taking ``(MessageType, dict)`` messages from ``messages`` (the queue given to a
    receiver) and emitting their events into ``sink`` for run ``run_id``. ``start()``, then
    ``close()`` after the receiver has shut down: it handles what is queued, then stops."""

    def __init__(self, messages: Queue | queue.Queue, sink: EventSink, run_id: str) -> None:
        self.messages = messages
        self.sink = sink
        self.run_id = run_id
        self.translated = 0
        self.rejected = 0
        self._skipped: set[Any] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"radio-bridge-{run_id[:8]}", daemon=True)

    def start(self) -> RadioBridge:
        self._thread.start()
        return self

    def handle(self, message: Any) -> None:
        """Translate and emit one message (what the thread does with each)."""
        try:
            tag, body = message
            translate = TRANSLATIONS.get(tag)
            if translate is None:
                if tag not in self._skipped:
                    self._skipped.add(tag)
                    logger.info("Radio messages of kind %s are not translated: parsl_repro records them itself", tag)
                return
            if not isinstance(body, dict):
                raise TypeError(f"body is a {type(body).__name__}, expected a dict")
            event = translate(self.run_id, body)
        except Exception as e:
            self.rejected += 1
            logger.error("Radio message not recorded: %s: %s", type(e).__name__, e)
            return
        self.sink.emit(event)
        self.translated += 1

    def _run(self) -> None:
        stopping = False
        while True:
            try:
                message = self.messages.get(timeout=0.1)
            except queue.Empty:
                # Stop only after a wait that began with ``_stop`` already set came up empty: a
                # message put just before ``close()`` may land between an ``Empty`` and the check
                # (and a multiprocessing queue's ``empty()`` cannot be trusted to say so).
                if stopping:
                    return
                stopping = self._stop.is_set()
                continue
            self.handle(message)

    def close(self, timeout: float = 30) -> None:
        """Handle every message already queued, then stop the thread. Safe to call twice."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self.rejected:
            logger.warning("%d radio messages for run %s could not be recorded", self.rejected, self.run_id)
