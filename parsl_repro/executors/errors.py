"""Errors raised by executors, and how a task's exception travels back from where it ran."""
from __future__ import annotations

import logging
from types import TracebackType

from parsl_repro.errors import ParslError

logger = logging.getLogger(__name__)


class ExecutionStopped(Exception):
    """The try ended because what was running it stopped (the executor, its worker pool or the
    worker process), not because the app failed: the base of ``BadStateException``,
    ``ManagerLost`` and ``WorkerLost``. While a run is ending, the kernel cancels a try that
    ended this way instead of failing it; ``except ExecutionStopped`` catches all three."""


class ExecutorError(ParslError):
    """An executor failed; the message names it."""

    def __init__(self, executor: object, reason: str) -> None:
        super().__init__(executor, reason)
        self.executor = executor
        self.reason = reason

    def __str__(self) -> str:
        label = getattr(self.executor, "label", self.executor)
        return f"Executor {label} failed due to: {self.reason}"


class InvalidResourceSpecification(ExecutorError):
    """A task's ``parsl_resource_specification`` asks for something the executor cannot give."""

    def __init__(self, invalid_keys: set[str], message: str = "") -> None:
        super().__init__(None, message)
        self.invalid_keys = invalid_keys
        self.message = message

    def __str__(self) -> str:
        return f"Invalid resource specification keys {sorted(self.invalid_keys)}: {self.message}"


class MissingResourceSpecification(InvalidResourceSpecification):
    """A task gave no ``parsl_resource_specification`` where the executor needs one (an MPI task
    must say how many nodes and ranks it wants). An ``InvalidResourceSpecification``, so either
    name catches it."""

    def __init__(self, message: str = "") -> None:
        super().__init__(set(), message)

    def __str__(self) -> str:
        return f"Missing resource specification: {self.message}"


class BadStateException(ExecutorError, ExecutionStopped):
    """The executor cannot run tasks any more (its interchange died, its blocks keep failing):
    every outstanding and later task fails with this error, which says why."""

    def __init__(self, executor: object, exception: BaseException | str) -> None:
        super().__init__(executor, str(exception))
        self.exception = exception


class UnsupportedFeatureError(ExecutorError):
    """A feature was asked of an executor that does not have it."""

    def __init__(self, feature: str, current_executor: str, target_executor: str | None) -> None:
        super().__init__(current_executor, f"{feature} is unsupported")
        self.feature = feature
        self.current_executor = current_executor
        self.target_executor = target_executor

    def __str__(self) -> str:
        hint = f"; {self.target_executor} has it" if self.target_executor else ""
        return f"The {self.feature} feature is unsupported in {self.current_executor}{hint}."


class ScalingFailed(ExecutorError):
    """The provider could not start or stop a block."""

    def __str__(self) -> str:
        label = getattr(self.executor, "label", self.executor)
        return f"Executor {label} failed to scale due to: {self.reason}"


class BadMessage(ParslError):
    """A message that does not follow the protocol arrived."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"Received an unsupported message. Reason: {self.reason}"


class RemoteExceptionWrapper:
    """Carries an exception raised where an app ran back to the submitting side.

    The traceback travels with it (through ``tblib`` when it must cross a process boundary), and
    ``__cause__`` chains are kept. Also importable as ``parsl_repro.app.errors.RemoteExceptionWrapper``
    (Parsl's path); it lives here because workers make it and must not import the app layer.
    """

    def __init__(self, e_type: type, e_value: BaseException, traceback: TracebackType | None) -> None:
        from tblib import Traceback  # needed only once a task has failed

        self.e_type = e_type
        self.e_value = e_value
        self.e_traceback = None if traceback is None else Traceback(traceback)
        cause = e_value.__cause__
        self.cause = None if cause is None else type(self)(type(cause), cause, cause.__traceback__)

    def reraise(self) -> None:
        logger.debug("Reraising exception of type %s", self.e_type)
        raise self.get_exception()

    def get_exception(self) -> BaseException:
        value = self.e_value
        if self.cause is not None:
            value.__cause__ = self.cause.get_exception()
        if self.e_traceback is not None:
            return value.with_traceback(self.e_traceback.as_traceback())
        return value
