"""``NoOpLogging``: a configuration that attaches nothing, for benchmarks and silent runs."""
from __future__ import annotations

import logging
import pathlib
from collections.abc import Callable

from parsl_repro.logconfigs.base import LogConfig

logger = logging.getLogger(__name__)


class NoOpLogging(LogConfig):
    """Writes no log at all: every component that honours the run's configuration stays silent."""

    def __repr__(self) -> str:
        return "NoOpLogging()"

    def initialize_logging(self, *, log_dir: pathlib.Path, log_name: str) -> Callable[[], None]:
        return _nothing


def _nothing() -> None:
    """Uninitialize a ``NoOpLogging``: there is nothing to undo."""


NoopLogging = NoOpLogging
"""Parsl's spelling."""
