"""Process helpers with Parsl's names: explicit ``fork`` and ``spawn`` contexts, and
``join_terminate_close_proc`` to end a helper process for certain.

Helper processes (radio receivers, the provenance writer's peers) are started from the ``spawn``
context: a spawned child does not inherit the parent's threads, locks or open sockets, so it
behaves the same whatever the parent was doing when it started it. ``fork`` is offered for the
few callers that need a child sharing the parent's memory.
"""
from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable
from multiprocessing.context import ForkProcess as ForkProcessType
from multiprocessing.context import SpawnProcess as SpawnProcessType

logger = logging.getLogger(__name__)

ForkContext = multiprocessing.get_context("fork")
SpawnContext = multiprocessing.get_context("spawn")

ForkProcess: Callable[..., ForkProcessType] = ForkContext.Process
SpawnProcess: Callable[..., SpawnProcessType] = SpawnContext.Process

SpawnEvent = SpawnContext.Event
SpawnQueue = SpawnContext.Queue

__all__ = ["ForkContext", "ForkProcess", "SpawnContext", "SpawnEvent", "SpawnProcess", "SpawnQueue",
           "join_terminate_close_proc"]


def join_terminate_close_proc(process: multiprocessing.process.BaseProcess, *, timeout: float = 30) -> None:
    """End ``process`` and release its resources, asking less and less politely.

    The caller has usually already told the process to stop (set its exit event, closed its
    input), so first wait up to ``timeout`` seconds for it to exit by itself; then send SIGTERM
    and wait again; then SIGKILL and wait again. A process that has ended is ``close()``d, after
    which its attributes raise ``ValueError``. One that survives even SIGKILL (stuck in the
    kernel) is logged and left open, since ``close()`` refuses a live process. At most about
    three times ``timeout`` passes before this returns.
    """
    process.join(timeout)
    if process.is_alive():
        logger.error("Process %s (pid %s) did not exit within %s s; sending SIGTERM", process.name, process.pid,
                     timeout)
        process.terminate()
        process.join(timeout)
    if process.is_alive():
        logger.error("Process %s (pid %s) survived SIGTERM for %s s; sending SIGKILL", process.name, process.pid,
                     timeout)
        process.kill()
        process.join(timeout)
    if process.is_alive():
        logger.error("Process %s (pid %s) is still running after SIGKILL; leaving it", process.name, process.pid)
        return
    logger.debug("Process %s ended with exit code %s", process.name, process.exitcode)
    process.close()
