"""Errors shared by every layer of parsl_repro (Parsl's names, so user code catches them unchanged)."""
from __future__ import annotations


class ParslError(Exception):
    """Base class of every error parsl_repro raises on purpose."""


class ConfigurationError(ParslError):
    """A configuration object or value is invalid; the message names the field."""


class OptionalModuleMissing(ParslError):
    """A feature needs an optional dependency that is not installed."""

    def __init__(self, module_names: list[str], reason: str) -> None:
        super().__init__(module_names, reason)
        self.module_names = module_names
        self.reason = reason

    def __str__(self) -> str:
        return (f"The functionality requested requires optional modules {self.module_names} "
                f"which could not be imported, because: {self.reason}")


class InternalConsistencyError(ParslError):
    """parsl_repro found itself in a state its own rules forbid: a bug, please report it."""


class NoDataFlowKernelError(ParslError):
    """An operation needs a loaded DataFlowKernel and none is loaded (call parsl_repro.load())."""
