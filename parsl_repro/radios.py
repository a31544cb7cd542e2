"""What every monitoring radio provides: a pickleable configuration, a sender, and a receiver.

(Below every layer, because executors make radios and the monitoring package implements most of
them; Parsl's path ``parsl_repro.monitoring.radios.base`` re-exports these names.)

A radio carries ``(MessageType, dict)`` monitoring messages from wherever they are made (a
worker on another node, a helper process) to the submit side, where its receiver puts them on a
queue. The life of a radio, as Parsl defines it:

1. The user builds a ``RadioConfig`` subclass and gives it to an executor's configuration.
2. On the submit side, ``create_receiver(run_dir=..., resource_msgs=queue)`` is called once. It
   starts whatever listens (a process bound to a port, a directory poller) and records in the
   configuration what senders need to reach it (the port, a key).
3. The configuration is pickled to wherever messages come from, possibly many times.
4. There, ``create_sender()`` builds a ``MonitoringRadioSender``; each ``send(message)`` delivers
   one message, which the receiver puts on ``resource_msgs``.
5. When the run ends, the receiver's ``shutdown()`` stops it and waits for it to end.

A configuration serves one run: ``create_receiver`` makes new keys and ports each time.
Senders and receivers are not pickleable and stay in the process that made them.
"""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from multiprocessing.queues import Queue

from parsl_repro.utils import RepresentationMixin


class MonitoringRadioReceiver(metaclass=ABCMeta):
    """The submit-side end of a radio: puts what arrives on the queue it was given."""

    @abstractmethod
    def shutdown(self) -> None:
        """Stop receiving and release what the receiver holds (processes, sockets)."""


class MonitoringRadioSender(metaclass=ABCMeta):
    """The sending end of a radio, made from a ``RadioConfig`` wherever messages come from."""

    @abstractmethod
    def send(self, message: object) -> None:
        """Deliver one message (usually ``(MessageType, dict)``) towards the receiver."""


class RadioConfig(RepresentationMixin, metaclass=ABCMeta):
    """Configuration of one way of carrying monitoring messages; see the module docstring."""

    @abstractmethod
    def create_receiver(self, *, run_dir: str, resource_msgs: Queue) -> MonitoringRadioReceiver:
        """Start the receiving end on the submit side (logging under ``run_dir``), delivering
        to ``resource_msgs``, and record here how senders reach it."""

    @abstractmethod
    def create_sender(self) -> MonitoringRadioSender:
        """A sender that reaches the receiver made by an earlier ``create_receiver``."""
