"""What a provider says about one block: a ``JobState`` plus the details a user needs to see why.

The same values (and names) as Parsl, because the state's name is what ``BlockState`` events
and the provenance store's ``block`` table record.
"""
from __future__ import annotations

import logging
import os
from enum import IntEnum

logger = logging.getLogger(__name__)


class JobState(IntEnum):
    """The life-cycle states of a block's job at its provider."""

    UNKNOWN = 0
    """The provider cannot tell what the job is doing."""

    PENDING = 1
    """Queued at the scheduler, not started yet."""

    RUNNING = 2
    """Started and still running."""

    CANCELLED = 3
    """Cancelled: by us, or killed by something outside parsl_repro."""

    COMPLETED = 4
    """Ended on its own with exit code 0."""

    FAILED = 5
    """Ended with an error, or could not be submitted at all."""

    TIMEOUT = 6
    """Ended because its walltime ran out. Pilot jobs usually end this way, so this is not a
    failure: the error handlers do not count it (a provider must not report it as FAILED)."""

    HELD = 7
    """Held or suspended by the scheduler."""

    MISSING = 8
    """Ended without its workers ever connecting back to the executor (set by executors that can
    tell, such as the HighThroughputExecutor). Counted as a failure by the error handlers."""

    SCALED_IN = 9
    """Cancelled on purpose by scaling in; never a failure, even if the job had not started."""

    def __str__(self) -> str:
        # IntEnum's str() became the number in Python 3.11; keep the readable form
        return f"{type(self).__name__}.{self.name}"


TERMINAL_STATES = [JobState.CANCELLED, JobState.COMPLETED, JobState.FAILED,
                   JobState.TIMEOUT, JobState.MISSING, JobState.SCALED_IN]
"""States a job never leaves."""


class JobStatus:
    """A job's ``state`` with what explains it.

    ``message`` is a human-readable reason (a submit error, "Killed"); ``exit_code`` is the job's
    exit status when the provider knows it; ``stdout_path`` and ``stderr_path`` name files holding
    the job's output, which ``stdout``/``stderr`` read whole and ``stdout_summary``/
    ``stderr_summary`` read head and tail of (at most ``SUMMARY_TRUNCATION_THRESHOLD`` characters).
    """

    SUMMARY_TRUNCATION_THRESHOLD = 2048

    def __init__(self, state: JobState, message: str | None = None, exit_code: int | None = None,
                 stdout_path: str | None = None, stderr_path: str | None = None) -> None:
        self.state = state
        self.message = message
        self.exit_code = exit_code
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path

    @property
    def terminal(self) -> bool:
        """Whether the job has ended for good."""
        return self.state in TERMINAL_STATES

    @property
    def status_name(self) -> str:
        """The state's bare name, e.g. ``'RUNNING'``."""
        return self.state.name

    def __repr__(self) -> str:
        extra = f"state={self.state}" if self.message is None else f"state={self.state} message={self.message}"
        return f"<{type(self).__module__}.{type(self).__qualname__} object at {hex(id(self))}, {extra}>"

    def __str__(self) -> str:
        return str(self.state) if self.message is None else f"{self.state} ({self.message})"

    @property
    def stdout(self) -> str | None:
        """The whole stdout file, or None when there is none or it cannot be read."""
        return _read_whole(self.stdout_path)

    @property
    def stderr(self) -> str | None:
        """The whole stderr file, or None when there is none or it cannot be read."""
        return _read_whole(self.stderr_path)

    @property
    def stdout_summary(self) -> str | None:
        """Head and tail of the stdout file (all of it when short), or None."""
        return _read_summary(self.stdout_path, self.SUMMARY_TRUNCATION_THRESHOLD)

    @property
    def stderr_summary(self) -> str | None:
        """Head and tail of the stderr file (all of it when short), or None."""
        return _read_summary(self.stderr_path, self.SUMMARY_TRUNCATION_THRESHOLD)


def _read_whole(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        logger.exception("Could not read job output file %s", path)
        return None


def _read_summary(path: str | None, limit: int) -> str | None:
    # a synthetic status (a submit failure) has no files; a job that wrote nothing may have none
    if not path:
        return None
    try:
        # replace undecodable bytes: the tail may start inside a multi-byte character
        with open(path, errors="replace") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(0)
            if size <= limit:
                return f.read()
            half = limit // 2
            head = f.read(half)
            f.seek(size - half)
            return head + "\n...\n" + f.read()
    except FileNotFoundError:
        return None
