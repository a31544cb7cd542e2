"""``ThreadPoolExecutor``: runs tasks on threads of the submitting process."""
from __future__ import annotations

import concurrent.futures as cf
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from parsl_repro.events import NullSink
from parsl_repro.executors.base import SUBMITTING, ParslExecutor
from parsl_repro.executors.errors import InvalidResourceSpecification
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin

logger = logging.getLogger(__name__)


class ThreadPoolExecutor(ParslExecutor, RepresentationMixin):
    """Runs tasks on a pool of ``max_threads`` threads in this process.

    ``max_workers`` is the name Parsl's first tutorial used for ``max_threads``; either works.
    Threads share the submitting process, so a task that never returns keeps its thread, and
    resource specifications are refused.
    """

    @typechecked_config
    def __init__(self, label: str = "threads", max_threads: int | None = 2, thread_name_prefix: str | None = None,
                 storage_access: list[Any] | None = None, working_dir: str | None = None,
                 remote_monitoring_radio: Any = None, *, max_workers: int | None = None) -> None:
        super().__init__()
        if max_workers is not None:
            max_threads = max_workers
        if max_threads is not None and max_threads < 1:
            raise ValueError(f"ThreadPoolExecutor {label!r}: max_threads must be at least 1, not {max_threads}")
        self.label = label
        self.max_threads = max_threads
        self.max_workers = max_workers
        self.thread_name_prefix = thread_name_prefix or f"ThreadPoolExecutor-{label}"
        self.storage_access = storage_access
        self.working_dir = working_dir
        self.remote_monitoring_radio = remote_monitoring_radio
        self.executor: cf.ThreadPoolExecutor | None = None

    def start(self) -> None:
        self.executor = cf.ThreadPoolExecutor(max_workers=self.max_threads, thread_name_prefix=self.thread_name_prefix)

    def submit(self, func: Callable, resource_specification: dict[str, Any], *args: Any, **kwargs: Any) -> Future:
        if resource_specification:
            raise InvalidResourceSpecification(set(resource_specification),
                                               "Parsl resource specification is not supported in ThreadPool Executor.")
        if self.executor is None:
            raise RuntimeError(f"ThreadPoolExecutor {self.label!r} was not started")
        if SUBMITTING.get() is None or type(self.event_sink) is NullSink:
            return self.executor.submit(func, *args, **kwargs)
        # the kernel reads when the try started running from the future and records it with the
        # try's end (host and pid are the kernel's own): cheaper than an event of its own
        started: list[float] = [0.0]
        future = self.executor.submit(_timed, started, func, args, kwargs)
        future.parsl_started = started  # type: ignore[attr-defined]
        return future

    def shutdown(self, block: bool = True) -> None:
        """Wait (with ``block``) for running tasks to finish and stop the threads."""
        if self.executor is not None:
            self.executor.shutdown(wait=block)

    def cancel_queued(self) -> None:
        """Cancel the calls still queued for a thread (running ones cannot be stopped)."""
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)

    def monitor_resources(self) -> bool:
        return False


def _timed(started: list[float], func: Callable, args: tuple, kwargs: dict) -> Any:
    started[0] = time.time()
    return func(*args, **kwargs)
