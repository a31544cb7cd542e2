"""``MultiprocessingQueueRadio``: messages go straight onto the receiver's multiprocessing queue.

For senders in the submit process itself or in processes it starts with ``multiprocessing``
(which inherit the queue): there is nothing to start, nothing listens on the network, and
nothing to authenticate beyond being the parent's child.
"""
from __future__ import annotations

import logging
from multiprocessing.queues import Queue

from parsl_repro.radios import MonitoringRadioReceiver, MonitoringRadioSender, RadioConfig
from parsl_repro.utils import RepresentationMixin

logger = logging.getLogger(__name__)


class MultiprocessingQueueRadioSender(MonitoringRadioSender, RepresentationMixin):
    """Puts each message on ``queue``."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def send(self, message: object) -> None:
        self.queue.put(message)


class MultiprocessingQueueRadioReceiver(MonitoringRadioReceiver):
    """Nothing runs on the receiving side: the queue is the receiver."""

    def shutdown(self) -> None:
        pass


class MultiprocessingQueueRadio(RadioConfig):
    """A radio over the receiver's own queue; its senders work only where that queue is shared."""

    def __init__(self) -> None:
        self._queue: Queue | None = None

    def create_receiver(self, *, run_dir: str, resource_msgs: Queue) -> MonitoringRadioReceiver:
        self._queue = resource_msgs
        return MultiprocessingQueueRadioReceiver()

    def create_sender(self) -> MonitoringRadioSender:
        if self._queue is None:
            raise RuntimeError("MultiprocessingQueueRadio.create_sender() needs create_receiver() to be called first")
        return MultiprocessingQueueRadioSender(self._queue)
