"""The executor contract: where the kernel sends tasks once their dependencies are met.

Who calls what, and when:
  * the kernel sets ``run_id``, ``run_dir`` and ``event_sink`` on each executor, then calls
    ``start()`` once (it returns when the executor can accept work, or raises);
  * the kernel calls ``submit(func, resource_specification, *args, **kwargs)`` from any thread and
    gets a ``concurrent.futures.Future`` that completes with the call's result or exception;
  * the kernel calls ``shutdown()`` once at cleanup; calling it again does nothing.

Required attribute: ``label``, unique among the executors of one configuration.
"""
from __future__ import annotations

import contextvars
import logging
import os
from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from parsl_repro.events import EventSink, NullSink

logger = logging.getLogger(__name__)

SUBMITTING: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar("parsl_repro_submitting",
                                                                                    default=None)
"""``(task id, try id)`` of the try being handed to ``submit`` right now, set by the kernel around
the call: executors that report where a try ran (``TryPlaced``) read it in ``submit``."""


class ParslExecutor(metaclass=ABCMeta):
    """Base class of every executor (Parsl's name, so Parsl executor plug-ins subclass it)."""

    label: str = "undefined"

    def __init__(self, *, run_dir: str = ".", run_id: str | None = None) -> None:
        self.run_dir = os.path.abspath(run_dir)
        self.run_id = run_id
        self.event_sink: EventSink = NullSink()
        self.remote_monitoring_radio: Any = None
        self.monitoring_messages: Any = None

    def __enter__(self) -> ParslExecutor:
        return self

    def __exit__(self, *exc: Any) -> bool:
        self.shutdown()
        return False

    def start(self) -> None:
        """Get ready to accept tasks."""

    @abstractmethod
    def submit(self, func: Callable, resource_specification: dict[str, Any], *args: Any, **kwargs: Any) -> Future:
        """Run ``func(*args, **kwargs)`` somewhere; return a Future for its outcome."""

    @abstractmethod
    def shutdown(self) -> None:
        """Release everything the executor holds. Safe to call more than once."""

    def cancel_queued(self) -> None:
        """The run was interrupted: drop the tasks that have not started, if the executor can, so
        that ``shutdown`` does not wait for them; their futures end cancelled. Optional (the
        default does nothing); the kernel calls it just before ``shutdown``."""

    def monitor_resources(self) -> bool:
        """Whether per-task resource sampling makes sense here (not for threads)."""
        return True

    @property
    def run_dir(self) -> str:
        return self._run_dir

    @run_dir.setter
    def run_dir(self, value: str) -> None:
        self._run_dir = value

    @property
    def run_id(self) -> str | None:
        return self._run_id

    @run_id.setter
    def run_id(self, value: str | None) -> None:
        self._run_id = value
