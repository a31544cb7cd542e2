"""Errors raised by executors."""
from __future__ import annotations

from parsl_repro.errors import ParslError


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


class BadStateException(ExecutorError):
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
