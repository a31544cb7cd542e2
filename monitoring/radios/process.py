"""Receivers that run in a helper process of their own (UDP, zmq, filesystem).

The submit process starts the helper from the ``spawn`` context and waits until the helper
reports that it is listening (its port) or why it could not; ``start()`` returns only then, so a
sender made right after never races the bind. The helper logs to a file under the run directory
and stops when its exit event is set::

    submit process                                 helper process
    ReceiverProcess(...) --spawn------------------> main(comm_q=, exit_event=, **settings)
        <------------------- comm_q: port or error   (bind, then report)
    resource_msgs <--------------------------------- each message received
    shutdown(): exit_event.set(), join; then SIGTERM, SIGKILL if it hangs
"""
from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from typing import Any

from parsl_repro.monitoring.errors import MonitoringRouterStartError
from parsl_repro.multiprocessing import SpawnEvent, SpawnProcess, SpawnQueue, join_terminate_close_proc
from parsl_repro.radios import MonitoringRadioReceiver

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 120.0
"""How long a helper may take to report that it listens (a fresh interpreter imports modules)."""


class ReceiverProcess(MonitoringRadioReceiver):
    """A receiver running ``main`` in a spawned helper process; ``port`` is what the helper reported."""

    def __init__(self, main: Callable[..., None], *, name: str, settings: dict[str, Any],
                 startup_timeout: float = STARTUP_TIMEOUT_S) -> None:
        self.exit_event = SpawnEvent()
        comm_q = SpawnQueue(maxsize=1)
        self.process = SpawnProcess(target=main, kwargs={**settings, "comm_q": comm_q, "exit_event": self.exit_event},
                                    name=name, daemon=True)
        self.process.start()
        try:
            report = self._wait_for_report(comm_q, startup_timeout)
        except BaseException:
            self.shutdown(timeout=1)
            raise
        finally:
            comm_q.close()
            comm_q.join_thread()
        if isinstance(report, str):
            self.shutdown(timeout=1)
            raise MonitoringRouterStartError(f"{name}: {report}")
        self.port: int | None = report
        logger.info("Started %s (pid %s)%s", name, self.process.pid, f" on port {report}" if report else "")

    def _wait_for_report(self, comm_q: Any, timeout: float) -> int | str | None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return comm_q.get(timeout=0.2)
            except queue.Empty:
                pass
            if not self.process.is_alive():
                raise MonitoringRouterStartError(f"{self.process.name} exited with code {self.process.exitcode} "
                                                 f"before it was ready")
            if time.monotonic() > deadline:
                raise MonitoringRouterStartError(f"{self.process.name} did not report ready within {timeout:.0f} s")

    def shutdown(self, timeout: float = 30) -> None:
        """Ask the helper to stop, wait for it (escalating to signals), and close the handle."""
        self.exit_event.set()
        try:
            join_terminate_close_proc(self.process, timeout=timeout)
        except ValueError:
            pass  # already closed by an earlier shutdown

    close = shutdown
    """Parsl's zmq receiver calls this ``close``."""


def start_helper_log(run_dir: str, filename: str, debug: bool, title: str) -> None:
    """In a helper process: log to ``run_dir/filename`` (DEBUG with ``debug``, else INFO) and set
    the process title, so that ``ps`` and the run directory say what the process is."""
    import os

    from parsl_repro.log_utils import set_file_logger
    from parsl_repro.utils import setproctitle

    os.makedirs(run_dir, exist_ok=True)
    set_file_logger(os.path.join(run_dir, filename), level=logging.DEBUG if debug else logging.INFO)
    setproctitle(title)
