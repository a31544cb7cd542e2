"""Whether a failed try is retried: each failure costs 1 (or what ``retry_handler`` says) from a
budget of ``retries``."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from parsl_repro.dataflow.errors import DependencyError
from parsl_repro.dataflow.taskrecord import TaskRecord

logger = logging.getLogger(__name__)


class RetryPolicy:
    def __init__(self, retries: int, retry_handler: Callable[[Exception, Any], float] | None) -> None:
        self.retries = retries
        self.retry_handler = retry_handler

    def charge(self, task: TaskRecord, error: BaseException) -> tuple[bool, BaseException]:
        """Record a failed try of ``task``; return (retry it?, the error to report if not).

        A handler that raises stops retries, and its exception becomes the task's error.
        Dependency errors are never retried: the parent already failed for good.
        """
        task.fail_history.append(repr(error))
        task.fail_count += 1
        if self.retry_handler is None:
            task.fail_cost += 1
        else:
            try:
                task.fail_cost += self.retry_handler(error, task)  # type: ignore[arg-type]
            except Exception as handler_error:
                logger.exception("retry_handler raised for task %s; not retrying", task.id)
                task.fail_cost = self.retries + 1
                return False, handler_error
        if isinstance(error, DependencyError):
            return False, error
        return task.fail_cost <= self.retries, error
