"""``LogConfig``: a picklable description of how to set up logging in one process, and the
per-interpreter reference counting that lets several components share one configuration.

A ``LogConfig`` is built once, in the submitting script, and travels (pickled) to every process
that should log through it: the provenance writer, the interchange, worker pools and their
workers. Each copy keeps the original's ``uuid``, so two components in one interpreter that
initialise copies of the same configuration (a pool manager and the kernel on one machine, say)
share a single set of handlers instead of writing every record twice.
"""
from __future__ import annotations

import abc
import logging
import pathlib
import threading
import uuid
from collections.abc import Callable

logger = logging.getLogger(__name__)


class LogConfig(abc.ABC):
    """How to initialise logging in the current process.

    Subclasses implement ``initialize_logging``. Instances must pickle: they are copied to other
    processes, possibly on other hosts, and initialised there with that process's log name.
    """

    def __init__(self) -> None:
        self.uuid = uuid.uuid4()

    @abc.abstractmethod
    def initialize_logging(self, *, log_dir: pathlib.Path, log_name: str) -> Callable[[], None]:
        """Attach handlers so that this process logs under ``log_dir`` as ``log_name``.

        ``log_name`` says which component this process is (``parsl``, ``interchange``,
        ``manager``, ``worker_0``, ``database_manager``); a file-writing configuration names its
        file after it. Returns a function that detaches what this call attached.
        """


class _Initialized:
    """One configuration's handlers in this interpreter, and how many users hold them."""

    def __init__(self, uninitialize: Callable[[], None]) -> None:
        self.uninit_callback = uninitialize
        self.count = 1


_initialized_log_contexts: dict[uuid.UUID, _Initialized] = {}
"""Configurations initialised in this interpreter, by ``uuid``. Per interpreter because that
is the scope of the ``logging`` module's own state."""
_initialized_log_context_lock = threading.Lock()


def oneshot_initialize_logging(*, log_config: LogConfig, log_dir: pathlib.Path, log_name: str) -> None:
    """Initialise ``log_config`` unless a configuration with its ``uuid`` already is; count the use.

    The first call for a ``uuid`` calls ``log_config.initialize_logging``; later calls only add a
    reference (their ``log_dir`` and ``log_name`` are ignored: the first one's files are kept).
    Each call is matched by one ``oneshot_uninitialize_logging``; the last one detaches.
    """
    with _initialized_log_context_lock:
        entry = _initialized_log_contexts.get(log_config.uuid)
        if entry is not None:
            entry.count += 1
            logger.debug("Log configuration %r already initialized; %d references", log_config, entry.count)
            return
        uninitialize = log_config.initialize_logging(log_dir=log_dir, log_name=log_name)
        if not callable(uninitialize):
            raise TypeError(f"{type(log_config).__name__}.initialize_logging returned {uninitialize!r}, "
                            f"not a function that uninitializes it")
        _initialized_log_contexts[log_config.uuid] = _Initialized(uninitialize)
    logger.debug("Initialized log configuration %r as %s in %s", log_config, log_name, log_dir)


def oneshot_uninitialize_logging(*, log_config: LogConfig) -> None:
    """Drop one reference to ``log_config``; the last reference detaches its handlers.

    Raises ``RuntimeError`` when the configuration is not initialised (one call too many).
    """
    with _initialized_log_context_lock:
        entry = _initialized_log_contexts.get(log_config.uuid)
        if entry is None:
            raise RuntimeError(f"log configuration {log_config!r} is not initialized "
                               f"(more uninitializations than initializations)")
        entry.count -= 1
        if entry.count > 0:
            return
        del _initialized_log_contexts[log_config.uuid]
        logger.debug("Last reference to log configuration %r released", log_config)
        entry.uninit_callback()


def release_inherited_logging() -> None:
    """In a process just forked from one that had initialised configurations, detach them all.

    A forked child inherits its parent's handlers and reference counts; a worker forked from a
    pool manager must drop them before initialising its own log (``worker_<rank>``), or it would
    only add a reference to the manager's and write into ``manager.log``.
    """
    with _initialized_log_context_lock:
        inherited = list(_initialized_log_contexts.values())
        _initialized_log_contexts.clear()
    for entry in inherited:
        entry.uninit_callback()
