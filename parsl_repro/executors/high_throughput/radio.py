"""``HTEXRadio``: monitoring messages from tasks on a HighThroughputExecutor travel back on the
executor's own result channel, so the radio starts nothing and opens no port.

In parsl_repro, HTEX worker pools already send each try's placement and resource samples back
with its result, and the executor turns them into provenance events; the radio adds nothing to
that. It is the executor's default ``remote_monitoring_radio``, as in Parsl. A sender works in a
process where a result channel has been installed with ``set_result_channel`` (a callable taking
the message bytes); anywhere else, ``send`` logs an error and drops the message, as Parsl's does
when its worker's result queue is missing.

It lives here, below the monitoring package, because the executor makes one; Parsl's path
``parsl_repro.monitoring.radios.htex`` re-exports these classes.
"""
from __future__ import annotations

import logging
import pickle
from collections.abc import Callable
from multiprocessing.queues import Queue

from parsl_repro.radios import MonitoringRadioReceiver, MonitoringRadioSender, RadioConfig

logger = logging.getLogger(__name__)

_result_channel: Callable[[bytes], None] | None = None


def set_result_channel(channel: Callable[[bytes], None] | None) -> None:
    """Install (or, with None, remove) where ``HTEXRadioSender``s in this process put messages."""
    global _result_channel
    _result_channel = channel


class HTEXRadio(RadioConfig):
    """The HighThroughputExecutor's own radio."""

    def __init__(self) -> None:
        pass

    def create_receiver(self, *, run_dir: str, resource_msgs: Queue) -> HTEXRadioReceiver:
        """Nothing to start: the executor receives on its own channel."""
        return HTEXRadioReceiver()

    def create_sender(self) -> HTEXRadioSender:
        """A sender onto the result channel of whatever process it is used in."""
        return HTEXRadioSender()


class HTEXRadioSender(MonitoringRadioSender):
    """Puts each message, wrapped as ``{'type': 'monitoring', 'payload': message}``, on the
    result channel installed in this process."""

    def send(self, message: object) -> None:
        """Deliver ``message`` on the installed result channel, or log that there is none."""
        channel = _result_channel
        if channel is None:
            logger.error("No HTEX result channel in this process; monitoring message of type %s dropped",
                         type(message).__name__)
            return
        channel(pickle.dumps({"type": "monitoring", "payload": message}))


class HTEXRadioReceiver(MonitoringRadioReceiver):
    """Nothing to stop: the executor receives on its own channel."""

    def shutdown(self) -> None:
        """Nothing to release."""
