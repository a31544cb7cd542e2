"""Logging set-up helpers with Parsl's names. Library code only logs; these attach handlers.

The run's ``parsl.log`` is written by a background listener thread: the kernel's threads only
put records on a queue, so logging a task's progress never waits on the disk.
"""
from __future__ import annotations

import io
import logging
import logging.handlers
import queue
from collections.abc import Callable

DEFAULT_FORMAT = ("%(created)f %(asctime)s %(processName)s-%(process)d %(threadName)s-%(thread)d "
                  "%(name)s:%(lineno)d %(funcName)s %(levelname)s: %(message)s")


def _attach(name: str, level: int, handler: logging.Handler, format_string: str | None,
            stop: Callable[[], None] | None = None) -> Callable[[], None]:
    logger = logging.getLogger(name)
    previous_level = logger.level
    if previous_level == logging.NOTSET or previous_level > level:
        logger.setLevel(level)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(format_string or DEFAULT_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    logger.addHandler(handler)

    def unregister() -> None:
        logger.removeHandler(handler)
        if stop is not None:
            stop()
        handler.close()
        if not logger.handlers or all(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.setLevel(previous_level)

    return unregister


def set_stream_logger(name: str = "parsl_repro", level: int = logging.DEBUG, format_string: str | None = None,
                      stream: io.TextIOBase | None = None) -> Callable[[], None]:
    """Send ``name``'s records at ``level`` and above to ``stream`` (stderr by default).

    Returns a function that detaches the handler again.
    """
    return _attach(name, level, logging.StreamHandler(stream), format_string)  # type: ignore[arg-type]


def set_file_logger(filename: str, name: str = "parsl_repro", level: int = logging.DEBUG,
                    format_string: str | None = None) -> Callable[[], None]:
    """Append ``name``'s records at ``level`` and above to ``filename``.

    Returns a function that detaches and closes the handler again.
    """
    return _attach(name, level, logging.FileHandler(filename), format_string)


class _EnqueueHandler(logging.handlers.QueueHandler):
    """Puts the record itself on the queue; formatting happens on the listener thread."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


def set_background_file_logger(filename: str, name: str = "parsl_repro", level: int = logging.DEBUG,
                               format_string: str | None = None) -> Callable[[], None]:
    """Like ``set_file_logger``, but the file is written by a listener thread.

    The returned function detaches the handler, writes every queued record and stops the thread.
    """
    records: queue.SimpleQueue = queue.SimpleQueue()
    file_handler = logging.FileHandler(filename)
    file_handler.setFormatter(logging.Formatter(format_string or DEFAULT_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    listener = logging.handlers.QueueListener(records, file_handler, respect_handler_level=False)
    listener.start()

    def stop() -> None:
        listener.stop()
        file_handler.close()

    return _attach(name, level, _EnqueueHandler(records), format_string, stop=stop)
