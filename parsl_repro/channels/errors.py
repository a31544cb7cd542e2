"""Errors raised by channels (Parsl's names, so user code catches them unchanged).

Every one names the host it concerns and the cause, in words a user can act on: which host key
was unknown or changed and where it would be trusted, which credential was refused, which
path could not be made.
"""
from __future__ import annotations

from parsl_repro.errors import ParslError


class ChannelError(ParslError):
    """Base class of channel errors: ``reason`` (what went wrong), ``e`` (the underlying error),
    ``hostname``."""

    def __init__(self, reason: str, e: BaseException | None, hostname: str) -> None:
        super().__init__(reason, e, hostname)
        self.reason = reason
        self.e = e
        self.hostname = hostname

    def __str__(self) -> str:
        cause = f": {self.e}" if self.e is not None and str(self.e) not in self.reason else ""
        return f"{self.hostname}: {self.reason}{cause}"


class BadHostKeyException(ChannelError):
    """The host's key is not one this channel trusts: unknown under the strict policy, or
    different from the key recorded for it (which may mean someone is in the middle)."""

    def __init__(self, e: BaseException | None, hostname: str, reason: str | None = None) -> None:
        super().__init__(reason or "the SSH host key is not trusted", e, hostname)


class BadScriptPath(ChannelError):
    """The channel's ``script_dir`` could not be made on the host."""

    def __init__(self, e: BaseException | None, hostname: str) -> None:
        super().__init__("could not create the script directory", e, hostname)


class BadPermsScriptPath(ChannelError):
    """The channel's ``script_dir`` exists but cannot be written."""

    def __init__(self, e: BaseException | None, hostname: str) -> None:
        super().__init__("the script directory is not writable", e, hostname)


class FileExists(ChannelError):
    """A file to be made is already there."""

    def __init__(self, e: BaseException | None, hostname: str, filename: str | None = None) -> None:
        super().__init__(f"file {filename!r} already exists", e, hostname)
        self.filename = filename


class AuthException(ChannelError):
    """The host refused the credentials (key, password or token)."""

    def __init__(self, e: BaseException | None, hostname: str, reason: str | None = None) -> None:
        super().__init__(reason or "authentication failed", e, hostname)


class SSHException(ChannelError):
    """The SSH connection could not be made or broke: refused, unreachable, timed out."""

    def __init__(self, e: BaseException | None, hostname: str, reason: str | None = None) -> None:
        super().__init__(reason or "SSH connection failed", e, hostname)


class FileCopyException(ChannelError):
    """A file could not be copied to or from the host."""

    def __init__(self, e: BaseException | None, hostname: str, reason: str | None = None) -> None:
        super().__init__(reason or "file copy failed", e, hostname)
