"""Errors raised when a task's function, arguments or result cannot cross a process boundary."""
from __future__ import annotations

from parsl_repro.errors import ParslError


class SerializationError(ParslError):
    """An object could not be turned into bytes for sending to another process.

    ``fname`` names the function whose call was being packed, or whose return value was being sent
    back (empty when a lone object was being serialized); ``reason`` says which object failed, where
    it sat, its type, and what each serialization method reported. ``role`` says what was being sent:
    ``"call"`` (a function and its arguments on their way to a worker, or a lone object) or
    ``"result"`` (a task's return value on its way back), and so which advice the message gives.
    """

    CALL = "call"
    RESULT = "result"

    def __init__(self, fname: str, reason: str = "", role: str = CALL) -> None:
        super().__init__(fname, reason)  # args unchanged; unpickling restores role from __dict__
        self.fname = fname
        self.reason = reason
        self.role = role

    def __str__(self) -> str:
        if self.role == self.RESULT:
            what = self.reason or f"the return value of {self.fname} could not be serialized"
            return (f"{what}. A task's return value travels back to the submitting process: return plain data "
                    "(a list instead of a generator, a path instead of an open file) and keep locks, "
                    "connections and open files inside the app.")
        what = self.reason or f"the call to {self.fname} could not be serialized"
        return (f"{what}. Only values that pickle or dill can carry reach a worker: pass plain data "
                f"(or a path to it) and create locks, connections, open files and generators inside the app.")


class DeserializationError(ParslError):
    """Bytes received from another process could not be turned back into an object."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return (f"Could not rebuild an object received from another process: {self.reason}. The receiving side "
                f"needs the same packages (at compatible versions) as the side that sent it.")


class DeserializerPluginError(ParslError):
    """A payload names a serializer plugin that could not be imported on the receiving side."""

    def __init__(self, header: bytes) -> None:
        super().__init__(header)
        self.header = header

    def __str__(self) -> str:
        return (f"No deserializer for payload header {self.header!r}: the serializer plugin it names could not be "
                f"imported here. Install the plugin's package where the payload is read.")
