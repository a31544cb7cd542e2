"""Errors raised by execution providers (Parsl's names, so user code catches them unchanged)."""
from __future__ import annotations

import warnings

from parsl_repro.errors import ParslError


class ExecutionProviderException(ParslError):
    """Base class of provider errors; raised itself only when no more specific one fits."""


class ScaleOutFailed(ExecutionProviderException):
    """A provider could not submit the jobs a scale-out asked for."""

    def __init__(self, provider: object, reason: str) -> None:
        super().__init__(provider, reason)
        self.provider = provider
        self.reason = reason

    def __str__(self) -> str:
        return f"Unable to scale out {self.provider} provider: {self.reason}"


class SchedulerMissingArgs(ExecutionProviderException):
    """The submit-script template names a placeholder that the provider has no value for."""

    def __init__(self, missing_keywords: object, sitename: str) -> None:
        super().__init__(missing_keywords, sitename)
        self.missing_keywords = missing_keywords
        self.sitename = sitename

    def __str__(self) -> str:
        return (f"SchedulerMissingArgs: Pool:{self.sitename} Arg:{self.missing_keywords} "
                f"(the submit script template uses a placeholder the provider does not fill)")


class ScriptPathError(ExecutionProviderException):
    """The submit script could not be written (missing or unwritable ``script_dir``)."""

    def __init__(self, script_path: str, reason: object) -> None:
        super().__init__(script_path, reason)
        self.script_path = script_path
        self.reason = reason

    def __str__(self) -> str:
        return f"Unable to write submit script:{self.script_path} Reason:{self.reason}"


class SubmitException(ExecutionProviderException):
    """A provider's ``submit`` could not start a job: the scheduler's command failed or said
    nothing usable. Carries that command's exit code and output."""

    def __init__(self, job_name: str, message: str, stdout: str | None = None, stderr: str | None = None,
                 retcode: int | None = None) -> None:
        super().__init__(job_name, message)
        self.job_name = job_name
        self.message = message
        self.stdout = stdout
        self.stderr = stderr
        self.retcode = retcode

    @property
    def task_name(self) -> str:
        """Old name of ``job_name``."""
        warnings.warn("SubmitException.task_name is deprecated; use .job_name", DeprecationWarning, stacklevel=2)
        return self.job_name

    def __str__(self) -> str:
        return (f"Cannot launch job {self.job_name}: {self.message}; exit code={self.retcode}, "
                f"stdout={self.stdout}, stderr={self.stderr}")
