"""Errors raised by apps, under Parsl's names and module path."""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from parsl_repro.errors import ParslError
from parsl_repro.executors.errors import RemoteExceptionWrapper  # Parsl's path; workers make it below the app layer

if TYPE_CHECKING:
    from parsl_repro.data_provider.files import File

logger = logging.getLogger(__name__)


class AppException(ParslError):
    """An error raised while an app ran."""


class AppBadFormatting(ParslError):
    """A bash app's command line could not be formatted."""


class BashExitFailure(AppException):
    """A bash app's command exited with a non-zero code.

    ``stderr_path`` is the app's own ``stderr=`` file, if it had one. Without one, the command
    wrote its error output to the stderr it inherited from the process that ran it (for a
    HighThroughputExecutor worker, its block's ``submit_scripts/*.err`` file):
    ``inherited_stderr`` is that file's absolute path when it is a regular file, else None.
    """

    def __init__(self, app_name: str, exitcode: int, stderr_path: str | None = None,
                 inherited_stderr: str | None = None) -> None:
        super().__init__(app_name, exitcode)  # args unchanged; unpickling restores the rest from __dict__
        self.app_name = app_name
        self.exitcode = exitcode
        self.stderr_path = stderr_path
        self.inherited_stderr = inherited_stderr

    def __str__(self) -> str:
        if self.stderr_path:
            where = f"; its stderr is in {self.stderr_path}"
        elif self.inherited_stderr:
            where = (f"; it had no stderr= file, so its error output went to the worker's stderr, "
                     f"{self.inherited_stderr}; give the app a stderr= file to keep it per task")
        else:
            where = ("; it had no stderr= file, so its error output went to the standard error of the process "
                     "that ran it; give the app a stderr= file to keep it")
        return f"bash_app {self.app_name} failed with unix exit code {self.exitcode}{where}"


class AppTimeout(AppException):
    """An app ran longer than its ``walltime``."""


class BashAppNoReturn(AppException):
    """A bash app's function returned no command line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MissingOutputs(ParslError):
    """An app finished but did not create every file it declared in ``outputs``."""

    def __init__(self, reason: str, outputs: list[File]) -> None:
        super().__init__(reason, outputs)
        self.reason = reason
        self.outputs = outputs

    def __str__(self) -> str:
        paths = ", ".join(getattr(f, "filepath", str(f)) for f in self.outputs)
        return f"Missing Outputs: [{paths}], Reason: {self.reason}"


class BadStdStreamFile(ParslError):
    """A stdout/stderr specification is malformed or its file cannot be opened."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self._reason = reason

    def __str__(self) -> str:
        return f"Bad Stream File: {self._reason}"


def wrap_error(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``func`` so that an exception it raises is returned as a ``RemoteExceptionWrapper``."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception:
            return RemoteExceptionWrapper(*sys.exc_info())  # type: ignore[arg-type]

    return wrapper
