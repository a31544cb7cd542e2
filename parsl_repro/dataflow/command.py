"""How a bash app's command line reaches the kernel, which records it (``TaskCommand``): it rides
with the try's outcome, from whichever process ran the command."""
from __future__ import annotations

from typing import Any

COMMAND_ATTRIBUTE = "parsl_command"
"""The attribute a bash app's exception carries its rendered command line on (when it got that far)."""


class CommandRan(int):
    """What a bash app's remote side returns: the command's exit status (an ``int``), carrying the
    command line that ran. The kernel records the command and completes the app's future with the
    plain ``int``, so users never see this type."""

    command: str

    def __new__(cls, returncode: int, command: str) -> CommandRan:
        ran = super().__new__(cls, returncode)
        ran.command = command
        return ran

    def __reduce__(self) -> tuple[Any, ...]:
        return (CommandRan, (int(self), self.command))


def command_of(outcome: object) -> str | None:
    """The command line a bash try's result or exception carries, if any."""
    if type(outcome) is CommandRan:
        return outcome.command
    command = getattr(outcome, COMMAND_ATTRIBUTE, None) if isinstance(outcome, BaseException) else None
    return command if isinstance(command, str) else None
