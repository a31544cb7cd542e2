"""Errors of the monitoring radios (Parsl's names)."""
from __future__ import annotations

from parsl_repro.errors import ParslError


class MonitoringRouterStartError(ParslError):
    """A radio's receiving process did not start: it died or did not report that it was ready."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self.detail = detail

    def __str__(self) -> str:
        message = "Monitoring router failed to start"
        return f"{message}: {self.detail}" if self.detail else message


class RadioRequiredError(ParslError):
    """Remote task monitoring was asked for on an executor that has no radio to carry it."""

    def __str__(self) -> str:
        return "A radio must be configured for remote task monitoring"
