"""``FileLogging``: text log files, one per component, ``<log_dir>/<log_name>.log``."""
from __future__ import annotations

import logging
import pathlib
from collections.abc import Callable

from parsl_repro.log_utils import DEFAULT_FORMAT
from parsl_repro.logconfigs.base import LogConfig

logger = logging.getLogger(__name__)


class FileLogging(LogConfig):
    """Write the ``parsl_repro`` loggers' records at ``level`` and above to ``<log_name>.log``.

    ``format_string`` is a ``logging.Formatter`` format. ``concurrent.futures`` is logged too: an
    exception escaping a future's callback is only ever reported there.
    """

    def __init__(self, *, format_string: str = DEFAULT_FORMAT, level: int = logging.DEBUG) -> None:
        super().__init__()
        self.format_string = format_string
        self.level = level

    def __repr__(self) -> str:
        return f"FileLogging(format_string={self.format_string!r}, level={self.level!r})"

    def initialize_logging(self, *, log_dir: pathlib.Path, log_name: str) -> Callable[[], None]:
        log_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_dir / f"{log_name}.log")
        handler.setLevel(self.level)
        handler.setFormatter(logging.Formatter(self.format_string, datefmt="%Y-%m-%d %H:%M:%S"))
        restore = [_attach(logging.getLogger(name), handler, self.level)
                   for name in ("parsl_repro", "concurrent.futures")]

        def uninitialize() -> None:
            for undo in restore:
                undo()
            handler.close()

        return uninitialize


def _attach(target: logging.Logger, handler: logging.Handler, level: int) -> Callable[[], None]:
    """Add ``handler`` to ``target``, lowering its level to ``level`` if needed; return the undo."""
    previous = target.level
    if previous == logging.NOTSET or previous > level:
        target.setLevel(level)
    target.addHandler(handler)

    def detach() -> None:
        target.removeHandler(handler)
        if not any(not isinstance(h, logging.NullHandler) for h in target.handlers):
            target.setLevel(previous)  # only when no other configuration still relies on the level

    return detach
