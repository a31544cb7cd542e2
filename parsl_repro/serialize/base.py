"""The contract of a serialization method, so that plugins (for example a proxy store) can be added."""
from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property
from typing import Any


class SerializerBase(ABC):
    """One way of turning objects into bytes and back.

    Every payload the facade produces starts with the method's ``identifier`` and a newline, so the
    receiving side knows which method rebuilds it. The default identifier is ``b"module ClassName"``:
    a receiver that has never seen the plugin imports that class on first use. The built-in methods
    use short identifiers (``b"p"``, ``b"d"`` and ``b"C2"``), which plugins must not reuse.
    """

    @cached_property
    def identifier(self) -> bytes:
        cls = type(self)
        return f"{cls.__module__} {cls.__qualname__}".encode()

    @abstractmethod
    def serialize(self, data: Any) -> bytes:
        """Return ``data`` as bytes; raise any exception if this method cannot carry it."""

    @abstractmethod
    def deserialize(self, payload: bytes) -> Any:
        """Rebuild the object from the bytes ``serialize`` returned (without the header)."""
