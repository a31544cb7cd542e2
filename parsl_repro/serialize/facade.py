"""Turning tasks, results and exceptions into bytes and back: the one place parsl_repro pickles.

Security: deserializing runs code chosen by whoever produced the bytes (that is what pickle and
dill do). Call ``deserialize`` and the ``unpack_*`` functions only on data from an authenticated
peer: the executor's CurveZMQ channels (``parsl_repro.curvezmq``), a pipe to a process we forked,
or a file only this user can write. Never on bytes read from an open network port.

Payload layout: ``identifier b"\\n" body``. The built-in identifiers are ``p`` (pickle) and ``d``
(dill) for data, and ``C2`` for callables. Each object goes to the first registered method that can
carry it; by default pickle, then dill for lambdas, closures and what is defined in ``__main__``
(see ``concretes``). Callables have the one method ``C2``, which makes that same choice itself and
records it in its body (``p`` or ``d``, a newline, then that method's body).

An apply message (one task: function, arguments, and optionally a resource specification) is::

    kind (b"A" or b"R")  code length (8 bytes, big-endian)  code payload  call payload

where the call payload is one payload holding ``(args, kwargs)`` or ``(args, kwargs, resource_spec)``.

Costs, kept low because every task pays them: the payload of a plain function is cached by the
function's identity (weakly, so the cache never keeps a function alive: ``CallableSerializer.serialize``
is that cache, with ``cache_info()`` and ``cache_clear()``), and the receiving side
caches rebuilt functions by their bytes. A function that travels by value (lambda, closure,
``__main__`` function) is captured the first time it is sent: later changes to the variables it
closes over, or to the script-level globals it uses, are not seen by workers.
"""
from __future__ import annotations

import functools
import importlib
import logging
import struct
import types
from collections.abc import Callable, Iterator
from typing import Any

from parsl_repro.serialize.base import SerializerBase
from parsl_repro.serialize.concretes import CallableSerializer, DillSerializer, PickleSerializer
from parsl_repro.serialize.errors import DeserializationError, DeserializerPluginError, SerializationError

logger = logging.getLogger(__name__)

methods_for_code: dict[bytes, SerializerBase] = {}
"""Methods tried in order for callables (functions, classes, callable objects)."""

methods_for_data: dict[bytes, SerializerBase] = {}
"""Methods tried in order for everything else."""

additional_methods_for_deserialization: dict[bytes, SerializerBase] = {}
"""Methods only used to read payloads (plugins loaded on first sight, or retired methods)."""


def _check_identifier(method: SerializerBase) -> None:
    identifier = method.identifier
    if not identifier or b"\n" in identifier or len(identifier) > _MAX_IDENTIFIER:
        raise ValueError(f"serializer identifier {identifier!r} must be 1 to {_MAX_IDENTIFIER} bytes without a newline")


def register_method_for_code(method: SerializerBase) -> None:
    """Add ``method`` after the methods already tried for callables."""
    _check_identifier(method)
    methods_for_code[method.identifier] = method


def register_method_for_data(method: SerializerBase) -> None:
    """Add ``method`` after the methods already tried for non-callables."""
    _check_identifier(method)
    methods_for_data[method.identifier] = method


_MAX_IDENTIFIER = 256
_PICKLE = PickleSerializer()
_DILL = DillSerializer()
_BUILT_IN: dict[bytes, SerializerBase] = {_PICKLE.identifier: _PICKLE, _DILL.identifier: _DILL}
register_method_for_code(CallableSerializer())
for _method in (_PICKLE, _DILL):
    register_method_for_data(_method)

_APPLY = b"A"
_APPLY_WITH_RESOURCES = b"R"
_LENGTH = struct.Struct(">Q")


class _NotSerializable(Exception):
    """Every method failed on an object; carries (method, exception) pairs."""

    def __init__(self, failures: list[tuple[SerializerBase, Exception]]) -> None:
        super().__init__(failures)
        self.failures = failures
        self.cause = failures[-1][1] if failures else None


def _serialize_with(methods: dict[bytes, SerializerBase], obj: Any) -> bytes:
    failures: list[tuple[SerializerBase, Exception]] = []
    for method in methods.values():
        try:
            body = method.serialize(obj)
        except Exception as e:
            failures.append((method, e))
        else:
            return method.identifier + b"\n" + body
    raise _NotSerializable(failures)


def _serialize_code(func: Any) -> bytes:
    """The payload of a callable (the built-in code method caches plain functions' bodies)."""
    return _serialize_with(methods_for_code, func)


def serialize(obj: Any, buffer_threshold: int = int(1e6)) -> bytes:
    """Return ``obj`` as a payload that ``deserialize`` turns back into an equal object.

    Raises ``SerializationError`` naming the type of the (innermost) object no method could carry.
    A payload longer than ``buffer_threshold`` bytes is logged as a warning.
    """
    try:
        payload = _payload(obj)
    except _NotSerializable as e:
        is_code = callable(obj)
        fname = _name_of(obj) if is_code else ""
        raise SerializationError(fname, _explain(obj, _code_label(obj) if is_code else "")) from e.cause
    _warn_if_large(payload, buffer_threshold, "an object")
    return payload


def _payload(obj: Any) -> bytes:
    """``obj`` by the first method that can carry it (code methods for callables); raises ``_NotSerializable``."""
    return _serialize_code(obj) if callable(obj) else _serialize_with(methods_for_data, obj)


def serialize_result(fname: str, obj: Any, buffer_threshold: int = int(1e6)) -> bytes:
    """``serialize`` for ``obj``, what the function named ``fname`` returned, on its way back from a worker
    (the argument order of ``execute_task_named``'s answer).

    When no method can carry it, the ``SerializationError`` (role ``"result"``) says that it is the
    return value of ``fname`` and gives advice about return values rather than about arguments.
    """
    try:
        payload = _payload(obj)
    except _NotSerializable as e:
        raise SerializationError(fname, _explain(obj, f"the return value of {fname}"),
                                 SerializationError.RESULT) from e.cause
    _warn_if_large(payload, buffer_threshold, f"return value of {fname}")
    return payload


def serialize_value(obj: Any, what: str = "") -> tuple[str, bytes]:
    """``obj`` for keeping (a stored result, a task's recorded arguments): the name of the method
    that carried it (``"pickle"``, ``"dill"``, ...) and its body, kept apart so that the sha256 of the
    body is the same digest whichever part of parsl_repro computes it. Raises ``SerializationError``
    (``what`` says where the object sat, for its message)."""
    cause: Exception | None = None
    for method in methods_for_data.values():  # as _serialize_with, without building a payload
        try:
            return method.name, method.serialize(obj)
        except Exception as e:
            cause = e
    raise SerializationError("", _explain(obj, what)) from cause


def deserialize_value(method_name: str, body: bytes) -> Any:
    """The object ``serialize_value`` gave ``(method_name, body)`` for. Only for data this user stored."""
    for table in (methods_for_data, additional_methods_for_deserialization, methods_for_code):
        for method in table.values():
            if method.name == method_name:
                try:
                    return method.deserialize(body)
                except Exception as e:
                    raise DeserializationError(f"{_method_name(method)} failed: {type(e).__name__}: {e}") from e
    raise DeserializationError(f"no serialization method is named {method_name!r}")


def _warn_if_large(payload: bytes, buffer_threshold: int, what: str) -> None:
    if len(payload) > buffer_threshold:
        logger.warning("Serialized %s is %d bytes, above the buffer threshold of %d bytes: large payloads slow "
                       "every hop; consider passing a file instead", what, len(payload), buffer_threshold)


def deserialize(payload: bytes) -> Any:
    """Rebuild the object a ``serialize`` payload holds. Only for data from an authenticated peer."""
    if not isinstance(payload, bytes):
        payload = bytes(payload)
    return _deserialize_at(payload, 0)


def _deserialize_at(payload: bytes, start: int) -> Any:
    end = payload.find(b"\n", start, start + _MAX_IDENTIFIER + 1)
    if end < 0:
        raise DeserializationError(f"the payload does not start with a serializer header (first bytes: "
                                   f"{payload[start:start + 16]!r})")
    identifier = payload[start:end]
    method = _BUILT_IN.get(identifier)
    body: Any
    if method is not None:
        body = memoryview(payload)[end + 1:]  # pickle and dill read buffers, so skip the copy
    else:
        method = _method_for(identifier)
        body = payload[end + 1:]
    try:
        return method.deserialize(body)
    except Exception as e:
        raise DeserializationError(f"{_method_name(method)} failed: {type(e).__name__}: {e}") from e


def _method_for(identifier: bytes) -> SerializerBase:
    for table in (methods_for_code, methods_for_data, additional_methods_for_deserialization):
        method = table.get(identifier)
        if method is not None:
            return method
    logger.info("Loading the deserializer named by payload header %r", identifier)
    try:
        module_name, class_name = identifier.decode().split(" ", 1)
        method = getattr(importlib.import_module(module_name), class_name)()
    except Exception as e:
        raise DeserializerPluginError(identifier) from e
    additional_methods_for_deserialization[identifier] = method
    return method


# --- apply messages: one task ------------------------------------------------------------------
def pack_apply_message(func: Callable, args: Any, kwargs: Any, buffer_threshold: int = int(128 * 1e6)) -> bytes:
    """Pack one call, ``func(*args, **kwargs)``, into bytes for ``unpack_apply_message``."""
    return _pack(_APPLY, func, (args, kwargs), args, kwargs, None, buffer_threshold)


def pack_res_spec_apply_message(func: Callable, args: Any, kwargs: Any, resource_specification: dict,
                                buffer_threshold: int = int(128 * 1e6)) -> bytes:
    """Like ``pack_apply_message``, also carrying the task's resource specification."""
    return _pack(_APPLY_WITH_RESOURCES, func, (args, kwargs, resource_specification), args, kwargs,
                 resource_specification, buffer_threshold)


def _pack(kind: bytes, func: Callable, call: tuple, args: Any, kwargs: Any, resource_specification: Any,
          buffer_threshold: int) -> bytes:
    try:
        code = _serialize_code(func)
    except _NotSerializable as e:
        raise SerializationError(_name_of(func), _explain(func, _code_label(func))) from e.cause
    try:
        arguments = _serialize_with(methods_for_data, call)
    except _NotSerializable as e:
        reason = _explain_call(_name_of(func), args, kwargs, resource_specification)
        raise SerializationError(_name_of(func), reason) from e.cause
    message = b"".join((kind, _LENGTH.pack(len(code)), code, arguments))
    _warn_if_large(message, buffer_threshold, f"call of {_name_of(func)}")
    return message


def unpack_apply_message(packed_buffer: bytes) -> list[Any]:
    """Return ``[func, args, kwargs]`` from a packed call (a resource specification, if any, is left out)."""
    _, func, call = _unpack(packed_buffer)
    return [func, call[0], call[1]]


def unpack_res_spec_apply_message(packed_buffer: bytes) -> list[Any]:
    """Return ``[func, args, kwargs, resource_specification]``; the specification is ``{}`` if none was packed."""
    kind, func, call = _unpack(packed_buffer)
    return [func, call[0], call[1], call[2] if kind == _APPLY_WITH_RESOURCES else {}]


def _unpack(message: bytes) -> tuple[bytes, Any, tuple]:
    if not isinstance(message, bytes):
        message = bytes(message)
    kind = message[:1]
    if kind not in (_APPLY, _APPLY_WITH_RESOURCES) or len(message) < 1 + _LENGTH.size:
        raise DeserializationError(f"not an apply message (first bytes: {message[:16]!r})")
    (code_length,) = _LENGTH.unpack_from(message, 1)
    code_end = 1 + _LENGTH.size + code_length
    code = message[1 + _LENGTH.size:code_end]
    func = _load_code_cached(code) if len(code) <= _MAX_CACHED_CODE else _deserialize_at(code, 0)
    return kind, func, _deserialize_at(message, code_end)


# The receiving side's cache: a worker sees the same function's bytes for every task of an app.
# Bytes keys hash by content; large payloads (functions closing over big data) are not kept.
_MAX_CACHED_CODE = 256 * 1024


@functools.lru_cache(maxsize=256)
def _load_code_cached(code: bytes) -> Any:
    return _deserialize_at(code, 0)


# --- Parsl's generic buffer framing ------------------------------------------------------------
def pack_buffers(buffers: list[bytes]) -> bytes:
    """Concatenate byte strings, each preceded by its length, for ``unpack_buffers``."""
    return b"".join(part for buf in buffers for part in (_LENGTH.pack(len(buf)), buf))


def unpack_buffers(packed_buffer: bytes) -> list[bytes]:
    """The byte strings ``pack_buffers`` joined."""
    buffers = []
    offset = 0
    while offset < len(packed_buffer):
        (length,) = _LENGTH.unpack_from(packed_buffer, offset)
        offset += _LENGTH.size
        buffers.append(packed_buffer[offset:offset + length])
        offset += length
    return buffers


def unpack_and_deserialize(packed_buffer: bytes) -> list[Any]:
    """Deserialize the three payloads (function, args, kwargs) of a ``pack_buffers`` message."""
    unpacked = [deserialize(buf) for buf in unpack_buffers(packed_buffer)]
    if len(unpacked) != 3:
        raise DeserializationError(f"expected 3 buffers (function, args, kwargs), found {len(unpacked)}")
    return unpacked


# --- explaining a failure (only runs after one) ------------------------------------------------
_MAX_DEPTH = 8
_MAX_PARTS = 1000


def _explain_call(fname: str, args: Any, kwargs: Any, resource_specification: Any) -> str:
    if isinstance(args, (tuple, list)):
        for position, arg in enumerate(args, start=1):
            if not _serializable(arg):
                return _explain(arg, f"argument {position} of {fname}")
    elif not _serializable(args):
        return _explain(args, f"the positional arguments of {fname}")
    if isinstance(kwargs, dict):
        for key, value in kwargs.items():
            if not _serializable(value):
                return _explain(value, f"keyword argument {key!r} of {fname}")
    elif not _serializable(kwargs):
        return _explain(kwargs, f"the keyword arguments of {fname}")
    if resource_specification is not None and not _serializable(resource_specification):
        return _explain(resource_specification, f"the resource specification of {fname}")
    return f"the arguments of {fname} cannot be serialized together"


def _explain(obj: Any, where: str) -> str:
    path, culprit = _innermost_failure(obj, 0)
    if path:
        if path[0] in "[.{":
            path = f"at {path}"
        where = f"{where}, {path}" if where else path
    methods = methods_for_code if callable(culprit) else methods_for_data
    errors = "; ".join(f"{_method_name(m)}: {_short(e)}" for m, e in _failures(culprit, methods)) or "no method"
    prefix = f"{where}: " if where else ""
    return f"{prefix}object of type {_type_name(culprit)} cannot be serialized ({errors})"


def _innermost_failure(obj: Any, depth: int) -> tuple[str, Any]:
    if depth < _MAX_DEPTH:
        for label, part in _parts(obj):
            if not _serializable(part):
                path, culprit = _innermost_failure(part, depth + 1)
                return label + path, culprit
    return "", obj


def _parts(obj: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, (list, tuple)):
        items: Iterator[tuple[str, Any]] = ((f"[{i}]", v) for i, v in enumerate(obj))
    elif isinstance(obj, dict):
        items = ((f"[{k!r}]", v) for k, v in obj.items())
    elif isinstance(obj, (set, frozenset)):
        items = (("{element}", v) for v in obj)
    elif isinstance(obj, types.FunctionType):
        cells = obj.__closure__ or ()
        items = ((f"closure variable {name!r}", _cell_value(cell))
                 for name, cell in zip(obj.__code__.co_freevars, cells, strict=False))
    elif isinstance(obj, (type, types.ModuleType)):
        return
    else:
        state = getattr(obj, "__dict__", None)
        if not isinstance(state, dict):
            return
        items = ((f".{k}", v) for k, v in state.items())
    for count, item in enumerate(items):
        if count >= _MAX_PARTS:
            return
        yield item


def _cell_value(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


def _serializable(obj: Any) -> bool:
    methods = methods_for_code if callable(obj) else methods_for_data
    try:
        _serialize_with(methods, obj)
    except _NotSerializable:
        return False
    return True


def _failures(obj: Any, methods: dict[bytes, SerializerBase]) -> list[tuple[SerializerBase, Exception]]:
    try:
        _serialize_with(methods, obj)
    except _NotSerializable as e:
        return e.failures
    return []


def _short(error: Exception, limit: int = 200) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def _method_name(method: SerializerBase) -> str:
    return getattr(method, "name", None) or type(method).__name__


def _type_name(obj: Any) -> str:
    kind = type(obj)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _code_label(func: Any) -> str:
    return f"{'class' if isinstance(func, type) else 'function'} {_name_of(func)}"


def _name_of(func: Any) -> str:
    name = getattr(func, "__name__", None)
    return name if isinstance(name, str) else _type_name(func)
