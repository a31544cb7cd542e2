"""Logging set-up helpers with Parsl's names. Library code only logs; these attach handlers."""
from __future__ import annotations

import io
import logging
from typing import Callable

DEFAULT_FORMAT = ("%(created)f %(asctime)s %(processName)s-%(process)d %(threadName)s-%(thread)d "
                  "%(name)s:%(lineno)d %(funcName)s %(levelname)s: %(message)s")


def set_stream_logger(name: str = "parsl_repro", level: int = logging.DEBUG, format_string: str | None = None,
                      stream: io.TextIOBase | None = None) -> logging.Logger:
    """Send ``name``'s log records at ``level`` and above to ``stream`` (stderr by default)."""
    logger = logging.getLogger(name)
    logger.setLevel(level)
    handler = logging.StreamHandler(stream)  # type: ignore[arg-type]
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(format_string or DEFAULT_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    logger.addHandler(handler)
    return logger


def set_file_logger(filename: str, name: str = "parsl_repro", level: int = logging.DEBUG,
                    format_string: str | None = None) -> Callable[[], None]:
    """Append ``name``'s log records at ``level`` and above to ``filename``.

    Returns a function that detaches and closes the handler again.
    """
    logger = logging.getLogger(name)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    handler = logging.FileHandler(filename)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(format_string or DEFAULT_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    logger.addHandler(handler)

    def unregister() -> None:
        logger.removeHandler(handler)
        handler.close()

    return unregister
