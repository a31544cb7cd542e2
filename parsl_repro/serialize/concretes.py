"""The two built-in methods: pickle for everything it can carry, dill for what it cannot.

pickle records functions and classes by name. That is fast and small, but a name only helps if
the receiver can import it: a function or class defined in the user's script (``__main__``),
a lambda, or a nested function cannot be found by name in a worker process. ``PickleSerializer``
therefore refuses objects that refer to ``__main__`` and lets ``DillSerializer`` carry them by value.
"""
from __future__ import annotations

import io
import pickle
import types
from typing import Any

from parsl_repro.serialize.base import SerializerBase

PROTOCOL = pickle.HIGHEST_PROTOCOL


class DefinedInMainError(pickle.PicklingError):
    """pickle would refer to something in ``__main__`` by name, which another process cannot import."""


class _MainRefusingPickler(pickle.Pickler):
    # reducer_override sees every function and class the pickle refers to (containers and
    # scalars skip it), so this is where a by-name reference into __main__ shows up.
    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if (kind is types.FunctionType or issubclass(kind, type)) and obj.__module__ == "__main__":
            raise DefinedInMainError(f"{obj.__qualname__} is defined in __main__ and cannot be imported elsewhere")
        return NotImplemented


class PickleSerializer(SerializerBase):
    """Standard pickle at the highest protocol; refuses references to ``__main__``."""

    identifier = b"p"
    name = "pickle"

    def serialize(self, data: Any) -> bytes:
        body = pickle.dumps(data, PROTOCOL)
        # The module name is stored as text, so a cheap substring test rules out the common case;
        # a hit may be plain data containing "__main__", so look properly before refusing.
        if b"__main__" in body:
            sink = io.BytesIO()
            _MainRefusingPickler(sink, PROTOCOL).dump(data)
        return body

    def deserialize(self, payload: bytes) -> Any:
        return pickle.loads(payload)


class DillSerializer(SerializerBase):
    """dill, which carries lambdas, closures and ``__main__`` functions and classes by value.

    Functions are first pickled with the globals they use (``recurse=True``), so a function from
    the user's script may call helpers and modules imported at the script's top level. If one of
    those globals cannot be carried, the function is sent with a reference to the receiver's own
    ``__main__`` globals instead (dill's default, and Parsl's behaviour).
    """

    identifier = b"d"
    name = "dill"

    def serialize(self, data: Any) -> bytes:
        import dill  # imported on first use: most payloads never need it

        try:
            return dill.dumps(data, protocol=PROTOCOL, recurse=True)
        except Exception:
            return dill.dumps(data, protocol=PROTOCOL)

    def deserialize(self, payload: bytes) -> Any:
        import dill

        return dill.loads(payload)
