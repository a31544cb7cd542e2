"""Failures particular to the HighThroughputExecutor. A lost worker or pool fails only the tasks
it held; the kernel retries them per ``Config(retries=...)``."""
from __future__ import annotations

import time

from parsl_repro.executors.errors import ExecutionStopped


class ManagerLost(ExecutionStopped):
    """A worker pool (manager) stopped answering, or went away, with tasks in hand."""

    def __init__(self, manager_id: bytes | str, hostname: str, block_id: str | None = None,
                 reason: str | None = None) -> None:
        super().__init__(manager_id, hostname)
        self.manager_id = manager_id.encode() if isinstance(manager_id, str) else manager_id
        self.hostname = hostname
        self.block_id = block_id
        self.reason = reason
        self.tstamp = time.time()

    def __str__(self) -> str:
        where = f" (block {self.block_id})" if self.block_id not in (None, "") else ""
        why = f": {self.reason}" if self.reason else ""
        return f"Task failure due to loss of manager {self.manager_id.decode()} on host {self.hostname}{where}{why}"


class WorkerLost(ExecutionStopped):
    """The worker process running the task died (killed, out of memory, crashed)."""

    def __init__(self, worker_id: object, hostname: str, block_id: str | None = None, pid: int | None = None,
                 exitcode: int | None = None) -> None:
        super().__init__(worker_id, hostname)
        self.worker_id = worker_id
        self.hostname = hostname
        self.block_id = block_id
        self.pid = pid
        self.exitcode = exitcode

    def __str__(self) -> str:
        where = f" (block {self.block_id})" if self.block_id not in (None, "") else ""
        how = ""
        if self.exitcode is not None:
            how = f"; killed by signal {-self.exitcode}" if self.exitcode < 0 else f"; exit code {self.exitcode}"
        pid = f", pid {self.pid}" if self.pid is not None else ""
        return f"Task failure due to loss of worker {self.worker_id}{pid} on host {self.hostname}{where}{how}"


class VersionMismatch(Exception):
    """A worker pool speaks another protocol version than the interchange."""

    def __init__(self, interchange_version: str, manager_version: str) -> None:
        super().__init__(interchange_version, manager_version)
        self.interchange_version = interchange_version
        self.manager_version = manager_version

    def __str__(self) -> str:
        return (f"Manager version info {self.manager_version} does not match interchange version info "
                f"{self.interchange_version}")


class CommandClientTimeoutError(Exception):
    """The interchange did not answer a command in time."""


class CommandClientBadError(Exception):
    """The command channel to the interchange is unusable after an earlier failure."""


class CommandFailed(Exception):
    """The interchange could not carry out a command; its ``interchange.log`` has the traceback."""
