"""The channel contract: where a provider runs its scheduler's commands and puts its files.

A provider never runs ``sbatch`` or writes a submit script on the scheduler's side itself: it
asks its channel. ``LocalChannel`` does both on this machine; ``SSHChannel`` (and its
interactive and OAuth variants) on a remote login node, so that a laptop drives a cluster::

    provider --execute_wait("sbatch s.sh")--> channel --(ssh)--> login node --> scheduler
             --push_file("s.sh", script_dir)->         --(sftp)->

Channels connect lazily: constructing one touches no network and prompts for nothing, so a
configuration naming many sites imports anywhere. The first call that needs the host connects
(the kernel calls ``connect()`` when it starts an executor whose provider has the channel, so
prompts come at ``load()``, in order, and only for the sites a run uses).
"""
from __future__ import annotations

import logging
from abc import ABCMeta, abstractmethod
from typing import IO, Protocol

logger = logging.getLogger(__name__)


class ChannelProcess(Protocol):
    """A command started with ``Channel.execute_no_wait`` that keeps running: its standard input
    and output as binary streams. Closing ``stdin`` is how it is asked to stop."""

    stdin: IO[bytes]
    stdout: IO[bytes]

    def poll(self) -> int | None:
        """Its exit status once it has ended, else None."""

    def wait(self, timeout: float | None = None) -> int:
        """Wait for it to end; its exit status. Raises ``TimeoutError`` after ``timeout`` s."""

    def terminate(self) -> None:
        """Ask it to end (close its input; locally, SIGTERM)."""

    def kill(self) -> None:
        """End it now (locally SIGKILL; remotely, close the session)."""


class Channel(metaclass=ABCMeta):
    """Runs commands and moves files on one host (Parsl's contract, kept).

    ``script_dir`` is the directory on that host where submit scripts go (and, by default, the
    output of the jobs they start). ``hostname`` names the host in logs, errors and provenance.
    """

    hostname: str = "localhost"

    @property
    def is_local(self) -> bool:
        """Whether commands run on this machine, with its file system (no copying needed)."""
        return False

    def connect(self) -> None:
        """Open the connection now (prompting, if the channel prompts). The other methods call it
        when needed, so calling it is only a way to choose when that happens."""

    @abstractmethod
    def execute_wait(self, cmd: str, walltime: float | None = None,
                     envs: dict[str, str] | None = None) -> tuple[int, str, str]:
        """Run ``cmd`` in a shell on the host with ``envs`` set and wait for it:
        ``(exit code, stdout, stderr)``. After ``walltime`` seconds it is abandoned and the exit
        code is -1."""

    @abstractmethod
    def execute_no_wait(self, cmd: str, envs: dict[str, str] | None = None) -> ChannelProcess:
        """Start ``cmd`` on the host and return at once with a handle on it."""

    @property
    @abstractmethod
    def script_dir(self) -> str:
        """The directory on the host for submit scripts (made on first use)."""

    @script_dir.setter
    @abstractmethod
    def script_dir(self, value: str) -> None: ...

    @abstractmethod
    def push_file(self, source: str, dest_dir: str) -> str:
        """Copy the local file ``source`` into ``dest_dir`` on the host (made if missing),
        keeping its name and mode; returns its path there. Raises ``FileCopyException``."""

    @abstractmethod
    def pull_file(self, remote_source: str, local_dir: str) -> str:
        """Copy ``remote_source`` from the host into the local ``local_dir``; returns the local
        path. Raises ``FileCopyException``."""

    @abstractmethod
    def makedirs(self, path: str, mode: int = 0o700, exist_ok: bool = False) -> None:
        """Make ``path`` and its parents on the host (``FileExists`` if it exists and not
        ``exist_ok``)."""

    @abstractmethod
    def isdir(self, path: str) -> bool:
        """Whether ``path`` is a directory on the host."""

    @abstractmethod
    def abspath(self, path: str) -> str:
        """``path`` made absolute on the host (relative paths start at the login directory)."""

    @abstractmethod
    def close(self) -> bool:
        """Close the connection, if any; True when there was one to close."""


def remote_channel(provider: object) -> Channel | None:
    """``provider``'s channel when it reaches another host (an ``SSHChannel``), else None (no
    channel, or a local one)."""
    channel = getattr(provider, "channel", None)
    return channel if channel is not None and not getattr(channel, "is_local", True) else None
