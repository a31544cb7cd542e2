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
