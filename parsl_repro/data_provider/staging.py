"""``Staging``: the contract of a file staging provider (Parsl's, method for method).

An executor's ``storage_access`` lists its providers (default: ``data_manager.default_staging``).
For every ``File`` a task takes (in ``inputs=``, a positional or a keyword argument) or makes
(``outputs=``, a ``File`` for ``stdout``/``stderr``), the kernel's ``DataManager`` asks each
provider in turn ``can_stage_in(file)`` / ``can_stage_out(file)``; the first that says yes stages
that file, and no other is asked. Who calls what, and when (all at submit, on the submitting
thread, with a fresh copy of the ``File`` that the provider may change, e.g. set ``local_path``):

  stage in:   ``stage_in(dm, executor, file, parent_fut)`` may start tasks (e.g. a download app)
              and return a ``DataFuture`` for the file: the task waits for it. ``None``: nothing
              to wait for; the task gets the copy. Then ``replace_task(dm, executor, file, func)``
              may return a function that wraps ``func`` (e.g. fetch the file, then call it);
              ``None`` keeps ``func``.
  stage out:  ``stage_out(dm, executor, file, app_fu)`` may start tasks that wait on ``app_fu``
              (e.g. an upload) and return a future: the output's ``DataFuture`` completes with
              it. ``None``: the output is ready when the task is. Then
              ``replace_task_stage_out(dm, executor, file, func)`` may wrap ``func`` as above.

An exception from any of these fails the task that named the file (it never reaches the
executor), and its message reaches ``.result()``. This base class stages nothing.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parsl_repro.data_provider.data_future import DataFuture
    from parsl_repro.data_provider.data_manager import DataManager
    from parsl_repro.data_provider.files import File

logger = logging.getLogger(__name__)


class Staging:
    """Base class of staging providers: claims no file and does nothing (see the module docstring)."""

    def can_stage_in(self, file: File) -> bool:
        """Whether this provider stages ``file`` in (usually decided by ``file.scheme``)."""
        return False

    def can_stage_out(self, file: File) -> bool:
        """Whether this provider stages ``file`` out."""
        return False

    def stage_in(self, dm: DataManager, executor: str, file: File, parent_fut: Future | None) -> DataFuture | None:
        """Start staging ``file`` in for a task on ``executor``, after ``parent_fut`` (the task
        that makes the file, if any). Return a DataFuture that completes with ``file`` when it is
        in place, or None when the task need not wait."""
        return None

    def stage_out(self, dm: DataManager, executor: str, file: File, app_fu: Future) -> Future | None:
        """Arrange for ``file`` to be staged out once ``app_fu`` (the task making it) is done.
        Return a future that completes when it has been, or None when nothing needs waiting for."""
        return None

    def replace_task(self, dm: DataManager, executor: str, file: File, func: Callable) -> Callable | None:
        """A function to run instead of ``func`` that stages ``file`` in where the task runs, or None."""
        return None

    def replace_task_stage_out(self, dm: DataManager, executor: str, file: File, func: Callable) -> Callable | None:
        """A function to run instead of ``func`` that stages ``file`` out where the task runs, or None."""
        return None
