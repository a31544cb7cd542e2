"""The built-in methods: pickle for everything it can carry, dill for what it cannot.

pickle records functions and classes by name. That is fast and small, but a name only helps if
the receiver can import it: a function or class defined in the user's script (``__main__``),
a lambda, or a nested function cannot be found by name in a worker process. ``PickleSerializer``
therefore refuses objects that refer to ``__main__`` and lets ``DillSerializer`` carry them by value.

Data goes to ``PickleSerializer`` or ``DillSerializer`` directly. Callables (the code of every
task) go to ``CallableSerializer``, the one method for code: the same pickle-then-dill choice,
behind a cache of the bytes of each plain function, since every task of an app sends the same one.
"""
from __future__ import annotations

import io
import pickle
import threading
import types
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

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


class CacheInfo(NamedTuple):
    """Statistics of a ``FunctionPayloadCache``, as ``functools.lru_cache`` reports them."""

    hits: int
    misses: int
    maxsize: int | None
    currsize: int


class FunctionPayloadCache:
    """``build(func)``, remembered for plain functions; ``cache_info()`` and ``cache_clear()`` as
    on a ``functools.lru_cache`` function.

    Entries are keyed by identity, so a function's ``__eq__`` and ``__hash__`` never matter, and
    hold the function weakly: an entry is dropped when its function is garbage collected, so the
    cache keeps no function alive and a new function at a freed address never gets stale bytes.
    Hence no size bound (``maxsize`` is ``None``). Other callables (classes, callable objects,
    ``functools.partial``) may change between tasks: they are built every time and not counted.
    """

    def __init__(self, build: Callable[[Any], bytes]) -> None:
        self._build = build
        self._entries: dict[int, tuple[weakref.ref, bytes]] = {}
        self._counts_lock = threading.Lock()  # only for the counters: the weakref callback never takes it
        self._hits = 0
        self._misses = 0

    def __call__(self, func: Any) -> bytes:
        if type(func) is not types.FunctionType:
            return self._build(func)
        key = id(func)
        entry = self._entries.get(key)
        if entry is not None and entry[0]() is func:
            with self._counts_lock:
                self._hits += 1
            return entry[1]
        with self._counts_lock:
            self._misses += 1
        payload = self._build(func)
        entries = self._entries

        def forget(ref: weakref.ref, key: int = key) -> None:
            current = entries.get(key)
            if current is not None and current[0] is ref:
                entries.pop(key, None)

        entries[key] = (weakref.ref(func, forget), payload)
        return payload

    def cache_info(self) -> CacheInfo:
        with self._counts_lock:
            return CacheInfo(self._hits, self._misses, None, len(self._entries))

    def cache_clear(self) -> None:
        """Forget every entry and reset the counters."""
        self._entries.clear()
        with self._counts_lock:
            self._hits = self._misses = 0


class CodeNotSerializableError(pickle.PicklingError):
    """Neither pickle nor dill could carry a callable; the message holds both reasons."""


_PICKLE = PickleSerializer()
_DILL = DillSerializer()
_CODE_METHODS: dict[bytes, SerializerBase] = {_PICKLE.identifier: _PICKLE, _DILL.identifier: _DILL}


def _serialize_callable(func: Any) -> bytes:
    try:
        return _PICKLE.identifier + b"\n" + _PICKLE.serialize(func)
    except Exception as by_name:
        try:
            return _DILL.identifier + b"\n" + _DILL.serialize(func)
        except Exception as by_value:
            raise CodeNotSerializableError(f"pickle: {by_name}; dill: {by_value}") from by_value


class CallableSerializer(SerializerBase):
    """The method for functions, classes and other callables: pickle when the receiver can import
    the callable by name, dill (by value) otherwise.

    The body is ``inner identifier b"\\n" inner body``, the inner identifier being that of
    ``PickleSerializer`` or ``DillSerializer``. ``serialize`` is a ``FunctionPayloadCache`` shared
    by all instances: a function is serialized once, on its first task (see the facade's notes on
    what that means for a function that closes over variables which change later).
    """

    identifier = b"C2"
    name = "callable"

    serialize = FunctionPayloadCache(_serialize_callable)

    def deserialize(self, payload: bytes) -> Any:
        data = payload if isinstance(payload, bytes) else bytes(payload)
        end = data.find(b"\n")
        method = _CODE_METHODS.get(data[:end]) if end > 0 else None
        if method is None:
            raise pickle.UnpicklingError(f"not a callable payload (first bytes: {data[:16]!r})")
        return method.deserialize(memoryview(data)[end + 1:])
