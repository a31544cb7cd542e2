"""Canonical, deterministic bytes for argument values, for memo keys (never raw pickles).

``canonical_bytes(value)`` is the same in every process, on every run and every machine with the
same Python version, for values that are equal in the sense below, and different for values that
differ in type or content. ``digest(value)`` is the sha256 hex of those bytes.

Encoding: every value is ``tag byte + 8-byte big-endian payload length + payload``; containers
concatenate the encodings of their elements, so the encoding is prefix-free and unambiguous.

What a key covers (and, for each kind, what it leaves out):

* ``None``, ``Ellipsis``, ``bool``, ``int`` (any size), ``float`` (``float.hex``; every NaN is one
  encoding; ``-0.0`` and ``0.0`` differ), ``complex``, ``str`` (UTF-8), ``bytes`` and ``bytearray``
  (distinct from each other). The tag is the exact type, so ``1``, ``1.0``, ``True``, ``"1"`` and
  ``b"1"`` all differ, and ``[1, 2]`` differs from ``(1, 2)``.
* ``list``, ``tuple`` (in order); ``dict`` (entries sorted by the canonical bytes of their keys, so
  insertion order is left out); ``set`` / ``frozenset`` (elements sorted by their encodings, so
  iteration order is left out); ``range`` (start, stop, step).
* ``datetime`` (fields, ``fold`` and the time zone: offset and name for ``datetime.timezone``, the
  key for ``zoneinfo.ZoneInfo``, else the tzinfo's type, ``key``/``zone`` attribute, offset, DST
  and name at that moment); ``date``; ``time``; ``timedelta``; ``Decimal`` (its exact string, so
  ``Decimal("1.0")`` and ``Decimal("1.00")`` differ); ``Fraction``; ``UUID``; ``pathlib`` paths
  (their string and path class).
* Enum members (class module + qualname, and the member's value); dataclass instances (class
  module + qualname, then every field of ``dataclasses.fields`` in order, by name and value,
  recursively); namedtuples (class module + qualname, field names and values). Class *bodies* are
  left out: editing a method of the class does not change the key.
* ``File`` (``parsl_repro.data_provider.files.File``): with ``output_ref=True`` (a file named in
  ``outputs=``, not written yet) its URL only; otherwise, for scheme ``file``, the sha256 of its
  content (from ``file_digest``, by default a process-wide :class:`FileDigestCache`) and nothing
  of its path or name, so a moved or renamed file with the same content gives the same key; for
  other schemes, its URL. A ``file`` File that cannot be read raises :class:`Uncacheable`.
  ``output_ref`` applies to every value nested in the argument, except dictionary keys.
* numpy arrays (exact ``numpy.ndarray`` and its subclasses defined in the ``numpy`` module, such
  as ``memmap``): class name, dtype (``dtype.str``, or ``dtype.descr`` for structured dtypes),
  shape and the C-order bytes; object arrays are encoded element by element. numpy scalars:
  dtype and bytes; numpy dtypes. numpy is never imported by this module: an object is only
  treated as numpy's if its class comes from a module named ``numpy``.
* Functions (plain functions, ``functools.partial``, bound methods, and objects carrying a
  ``__wrapped__`` function such as app objects): the digest of
  ``parsl_repro.memo.identity.app_identity`` (normalised source, defaults, closure and the
  globals it uses; see that module). Built-in functions and methods, and classes used as values:
  their module and qualified name only.
* Anything else: if Parsl's extension point ``id_for_memo`` (``extension.py``) has a registration
  for the type (``id_for_memo.dispatch(type(x))`` is not the base function), the bytes it returns,
  tagged with the type's module + qualname. Otherwise :class:`Uncacheable` is raised, naming the
  type and where it sits in the argument. A subclass of a built-in type (``str``, ``int``,
  ``list``, ``dict``, ...) counts as "anything else": only a registration for the subclass itself
  keys it, never the registrations ``extension.py`` makes for the built-in types. Reference cycles and nesting too
  deep to walk also raise :class:`Uncacheable`.

Left out everywhere: object identity (``id``), memory addresses, ``repr`` and ``pickle`` output,
hash randomisation (``PYTHONHASHSEED``) and the Python process; only values count.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import fractions
import functools
import hashlib
import logging
import pathlib
import sys
import types
import uuid
from collections.abc import Callable
from typing import Any

from parsl_repro.data_provider.files import File
from parsl_repro.memo.extension import id_for_memo
from parsl_repro.memo.files import default_file_cache

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Bumped whenever the encoding changes, so that stored keys from another encoding never match."""


class Uncacheable(Exception):
    """A value that cannot be turned into canonical bytes deterministically.

    ``reason`` names the type and, for a nested value, where it sits (``[0]['x'].field``).
    """

    def __init__(self, type_name: str, detail: str = "", path: list[str] | None = None) -> None:
        self.type_name = type_name
        self.detail = detail
        self.path: list[str] = list(path) if path else []
        super().__init__(type_name, detail)

    @property
    def reason(self) -> str:
        where = f" at {''.join(self.path)}" if self.path else ""
        text = f"argument of type {self.type_name}{where} cannot be hashed deterministically"
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return self.reason

    def __reduce__(self) -> tuple:
        return (type(self), (self.type_name, self.detail, list(self.path)))


def type_name(t: type) -> str:
    """``qualname`` for builtins, ``module.qualname`` otherwise."""
    module = getattr(t, "__module__", None)
    qualname = getattr(t, "__qualname__", None) or getattr(t, "__name__", repr(t))
    return qualname if module in (None, "builtins") else f"{module}.{qualname}"


def frame(tag: bytes, payload: bytes) -> bytes:
    """One encoded item: tag byte, 8-byte big-endian length, payload."""
    return tag + len(payload).to_bytes(8, "big") + payload


def _text(s: str) -> bytes:
    return frame(b"s", s.encode("utf-8", "surrogatepass"))


def _int_payload(x: int) -> bytes:
    return x.to_bytes((x.bit_length() + 8) // 8, "big", signed=True)


def _float_payload(x: float) -> bytes:
    return b"nan" if x != x else x.hex().encode("ascii")


def _path_segment(key: object) -> str:
    text = repr(key)
    return f"[{text if len(text) <= 40 else text[:37] + '...'}]"


_NONE = frame(b"N", b"")
_ELLIPSIS = frame(b".", b"")
_NOT_IMPLEMENTED = frame(b",", b"")
_TRUE = frame(b"?", b"\x01")
_UNSET = object()


def _no_function_digest(f: Any) -> str:
    raise TypeError("function identities are not available: import parsl_repro.memo, not its modules alone")


_function_digest: Callable[[Any], str] = _no_function_digest
"""How a function value is keyed: ``identity.py`` (which builds on this module) installs its digest."""


def install_function_digest(digest_of: Callable[[Any], str]) -> None:
    """Key function values by ``digest_of(f)``; called once, by ``parsl_repro.memo.identity``."""
    global _function_digest
    _function_digest = digest_of
_UNSET_FIELD = frame(b"-", b"")  # a dataclass field with no value yet (init=False, not assigned)
_FALSE = frame(b"?", b"\x00")


class Encoder:
    """Turns one value into canonical bytes. ``function`` is the hook for function values.

    Not thread-safe: make one per ``canonical_bytes`` call.
    """

    __slots__ = ("file_digest", "output_ref", "_active")

    def __init__(self, *, file_digest: Callable[[str], str] | None = None, output_ref: bool = False) -> None:
        self.file_digest = file_digest
        self.output_ref = output_ref
        self._active: set[int] = set()

    # --- entry point ---------------------------------------------------------------------------
    def encode(self, x: object) -> bytes:
        enc = _EXACT.get(type(x))
        if enc is not None:
            return enc(self, x)
        return self._other(x)

    # --- scalars -------------------------------------------------------------------------------
    def _none(self, x: None) -> bytes:
        return _NONE

    def _ellipsis(self, x: object) -> bytes:
        return _ELLIPSIS if x is Ellipsis else _NOT_IMPLEMENTED

    def _bool(self, x: bool) -> bytes:
        return _TRUE if x else _FALSE

    def _int(self, x: int) -> bytes:
        return frame(b"i", _int_payload(x))

    def _float(self, x: float) -> bytes:
        return frame(b"f", _float_payload(x))

    def _complex(self, x: complex) -> bytes:
        return frame(b"j", frame(b"f", _float_payload(x.real)) + frame(b"f", _float_payload(x.imag)))

    def _str(self, x: str) -> bytes:
        return frame(b"s", x.encode("utf-8", "surrogatepass"))

    def _bytes(self, x: bytes) -> bytes:
        return frame(b"b", x)

    def _bytearray(self, x: bytearray) -> bytes:
        return frame(b"a", bytes(x))

    def _range(self, x: range) -> bytes:
        return frame(b"r", self._int(x.start) + self._int(x.stop) + self._int(x.step))

    def _decimal(self, x: decimal.Decimal) -> bytes:
        return frame(b"M", str(x).encode("ascii"))

    def _fraction(self, x: fractions.Fraction) -> bytes:
        return frame(b"Q", self._int(x.numerator) + self._int(x.denominator))

    def _uuid(self, x: uuid.UUID) -> bytes:
        return frame(b"U", x.bytes)

    # --- dates and times -----------------------------------------------------------------------
    def _tz(self, tz: _dt.tzinfo | None, moment: _dt.datetime | None) -> bytes:
        if tz is None:
            return _NONE
        if type(tz) is _dt.timezone:
            return frame(b"z", self._timedelta(tz.utcoffset(None)) + _text(tz.tzname(None) or ""))
        try:
            key = getattr(tz, "key", None) or getattr(tz, "zone", None)
            parts = [_text(type_name(type(tz))), _text(key) if isinstance(key, str) else _NONE]
            for value in (tz.utcoffset(moment), tz.dst(moment)):
                parts.append(_NONE if value is None else self._timedelta(value))
            name = tz.tzname(moment)
            parts.append(_NONE if name is None else _text(name))
        except Exception as e:  # a broken tzinfo
            raise Uncacheable(type_name(type(tz)), f"its time zone could not be read: {e}") from e
        return frame(b"Z", b"".join(parts))

    def _datetime(self, x: _dt.datetime) -> bytes:
        fields = (x.year, x.month, x.day, x.hour, x.minute, x.second, x.microsecond, x.fold)
        return frame(b"D", b"".join(self._int(v) for v in fields) + self._tz(x.tzinfo, x))

    def _date(self, x: _dt.date) -> bytes:
        return frame(b"A", self._int(x.year) + self._int(x.month) + self._int(x.day))

    def _time(self, x: _dt.time) -> bytes:
        fields = (x.hour, x.minute, x.second, x.microsecond, x.fold)
        return frame(b"H", b"".join(self._int(v) for v in fields) + self._tz(x.tzinfo, None))

    def _timedelta(self, x: _dt.timedelta) -> bytes:
        return frame(b"G", self._int(x.days) + self._int(x.seconds) + self._int(x.microseconds))

    # --- containers ----------------------------------------------------------------------------
    def _enter(self, x: object) -> int:
        key = id(x)
        if key in self._active:
            raise Uncacheable(type_name(type(x)), "it contains itself (a reference cycle)")
        self._active.add(key)
        return key

    def _items(self, x: Any) -> list[bytes]:
        parts: list[bytes] = []
        encode = self.encode
        i = 0
        try:
            for i, e in enumerate(x):  # noqa: B007 - i is read in the except clause
                parts.append(encode(e))
        except Uncacheable as err:
            err.path.insert(0, f"[{i}]")
            raise
        return parts

    def _list(self, x: list) -> bytes:
        key = self._enter(x)
        try:
            return frame(b"l", b"".join(self._items(x)))
        finally:
            self._active.discard(key)

    def _tuple(self, x: tuple) -> bytes:
        key = self._enter(x)
        try:
            return frame(b"t", b"".join(self._items(x)))
        finally:
            self._active.discard(key)

    def _dict_entries(self, x: dict) -> bytes:
        entries = []
        encode = self.encode
        k: object = None
        try:
            for k, v in x.items():
                output_ref, self.output_ref = self.output_ref, False
                try:
                    kb = encode(k)
                finally:
                    self.output_ref = output_ref
                entries.append(kb + encode(v))
        except Uncacheable as err:
            err.path.insert(0, _path_segment(k))
            raise
        # encodings are prefix-free, so sorting key+value sorts by key first
        entries.sort()
        return b"".join(entries)

    def _dict(self, x: dict) -> bytes:
        key = self._enter(x)
        try:
            return frame(b"d", self._dict_entries(x))
        finally:
            self._active.discard(key)

    def _set(self, x: set | frozenset) -> bytes:
        key = self._enter(x)
        try:
            parts = []
            try:
                for e in x:
                    parts.append(self.encode(e))
            except Uncacheable as err:
                err.path.insert(0, "{...}")
                raise
            parts.sort()
            return frame(b"e" if type(x) is set else b"y", b"".join(parts))
        finally:
            self._active.discard(key)

    # --- everything that is not an exact built-in type -----------------------------------------
    def _other(self, x: object) -> bytes:
        t = type(x)
        if isinstance(x, enum.Enum):
            return self._enum(x)
        if isinstance(x, tuple) and hasattr(t, "_fields"):
            return self._namedtuple(x)
        if dataclasses.is_dataclass(t):
            _refuse_builtin_subclass(t)  # a dataclass that is also a dict: its fields do not say it all
            return self._dataclass(x)
        if isinstance(x, pathlib.PurePath):
            return frame(b"P", _text(type_name(t)) + _text(str(x)))
        if isinstance(x, File):
            return self._file(x)
        module = getattr(t, "__module__", "") or ""
        if module == "numpy" or module.startswith("numpy."):
            encoded = self._numpy(x)
            if encoded is not None:
                return encoded
        if isinstance(x, types.FunctionType | functools.partial | types.MethodType):
            return self.function(x)
        if isinstance(x, _BUILTIN_CALLABLES):
            return self._builtin(x)
        if isinstance(x, type):
            return frame(b"Y", _text(x.__module__ or "") + _text(x.__qualname__))
        if callable(x) and "__wrapped__" in (getattr(x, "__dict__", None) or {}):
            return self.function(x)
        return self._extension(x)

    def _enum(self, x: enum.Enum) -> bytes:
        t = type(x)
        try:
            value = self.encode(x.value)
        except Uncacheable as err:
            err.path.insert(0, ".value")
            raise
        return frame(b"E", _text(t.__module__) + _text(t.__qualname__) + value)

    def _namedtuple(self, x: tuple) -> bytes:
        t = type(x)
        key = self._enter(x)
        try:
            names = b"".join(_text(str(n)) for n in t._fields)  # type: ignore[attr-defined]
            return frame(b"K", _text(t.__module__) + _text(t.__qualname__) + frame(b"t", names)
                         + frame(b"t", b"".join(self._items(x))))
        finally:
            self._active.discard(key)

    def _dataclass(self, x: object) -> bytes:
        t = type(x)
        key = self._enter(x)
        try:
            parts = [_text(t.__module__), _text(t.__qualname__)]
            for f in dataclasses.fields(x):  # type: ignore[arg-type]
                value = getattr(x, f.name, _UNSET)
                try:
                    parts.append(_text(f.name) + (_UNSET_FIELD if value is _UNSET else self.encode(value)))
                except Uncacheable as err:
                    err.path.insert(0, f".{f.name}")
                    raise
            return frame(b"C", b"".join(parts))
        finally:
            self._active.discard(key)

    def _file(self, f: Any) -> bytes:
        if self.output_ref:
            return frame(b"R", f.url.encode("utf-8", "surrogatepass"))
        if f.scheme != "file":
            return frame(b"W", f.url.encode("utf-8", "surrogatepass"))
        file_digest = self.file_digest or default_file_cache().sha256
        try:
            sha = file_digest(f.filepath)
        except OSError as e:
            raise Uncacheable("File", f"its content could not be read to hash it ({f.url}): {e}") from e
        return frame(b"I", sha.encode("ascii"))

    def _numpy(self, x: Any) -> bytes | None:
        np = sys.modules.get("numpy")
        if np is None:
            return None
        if isinstance(x, np.ndarray):
            if type(x).__module__ != "numpy":  # e.g. numpy.ma.MaskedArray: its mask is not in tobytes
                return None
            header = _text(type(x).__name__) + self._dtype(x.dtype) + frame(b"t", b"".join(self._int(n)
                                                                                        for n in x.shape))
            if x.dtype.hasobject:
                key = self._enter(x)
                try:
                    body = self.encode(x.tolist())
                finally:
                    self._active.discard(key)
                return frame(b"n", header + body)
            return frame(b"n", header + frame(b"b", x.tobytes(order="C")))
        if isinstance(x, np.generic):
            if x.dtype.hasobject:
                return None
            return frame(b"p", self._dtype(x.dtype) + frame(b"b", x.tobytes()))
        if isinstance(x, np.dtype):
            return self._dtype(x)
        return None

    def _dtype(self, dtype: Any) -> bytes:
        if dtype.fields is not None:
            return frame(b"V", _text(repr(dtype.descr)))
        return frame(b"V", _text(dtype.str))

    def _builtin(self, x: Any) -> bytes:
        owner = getattr(x, "__self__", None)
        objclass = getattr(x, "__objclass__", None)
        name = _text(getattr(x, "__qualname__", None) or getattr(x, "__name__", ""))
        if objclass is not None:
            return frame(b"B", _text(type_name(objclass)) + name)
        if owner is None or isinstance(owner, types.ModuleType):
            return frame(b"B", _text(getattr(x, "__module__", None) or getattr(owner, "__name__", "") or "") + name)
        if isinstance(owner, type):
            return frame(b"B", _text(type_name(owner)) + name)
        try:
            bound = self.encode(owner)
        except Uncacheable as err:
            err.path.insert(0, ".__self__")
            raise
        return frame(b"B", _text(type_name(type(owner))) + name + bound)

    def function(self, f: Any) -> bytes:
        """A function value: the digest of its app identity (``identity.py``, which installs it)."""
        try:
            ident = _function_digest(f)
        except TypeError as e:
            raise Uncacheable(type_name(type(f)), str(e)) from e
        return frame(b"L", ident.encode("ascii"))

    def _extension(self, x: object) -> bytes:
        t = type(x)
        impl = id_for_memo.dispatch(t)
        if impl is id_for_memo.dispatch(object):
            raise Uncacheable(type_name(t))
        _refuse_builtin_subclass(t)
        # an exception from the user's own id_for_memo function is theirs to see: it fails the task,
        # as in Parsl, rather than silently turning caching off
        out = impl(x, output_ref=self.output_ref)
        if not isinstance(out, bytes | bytearray):
            raise Uncacheable(type_name(t), f"its id_for_memo function returned {type(out).__name__}, not bytes")
        return frame(b"X", _text(type_name(t)) + frame(b"b", bytes(out)))


def _refuse_builtin_subclass(t: type) -> None:
    """Raise ``Uncacheable`` for a subclass of a built-in type (``str``, ``dict``, ...) unless
    ``id_for_memo`` has a function registered for it or for a user class between it and the
    built-in: what a subclass adds to its base value is unknown."""
    for base in t.__mro__:
        if base in id_for_memo.registry and base is not object:
            if base.__module__ == "builtins" and base is not t:
                raise Uncacheable(type_name(t), f"a subclass of {base.__name__} with no id_for_memo function "
                                                "registered for it")
            return
        if base is not t and base in _EXACT:
            raise Uncacheable(type_name(t), f"a subclass of {base.__name__} with no id_for_memo function "
                                            "registered for it")


_BUILTIN_CALLABLES = (types.BuiltinFunctionType, types.MethodDescriptorType, types.WrapperDescriptorType,
                      types.ClassMethodDescriptorType, types.MethodWrapperType)

_EXACT: dict[type, Callable[[Encoder, Any], bytes]] = {
    type(None): Encoder._none,
    type(Ellipsis): Encoder._ellipsis,
    type(NotImplemented): Encoder._ellipsis,
    bool: Encoder._bool,
    int: Encoder._int,
    float: Encoder._float,
    complex: Encoder._complex,
    str: Encoder._str,
    bytes: Encoder._bytes,
    bytearray: Encoder._bytearray,
    list: Encoder._list,
    tuple: Encoder._tuple,
    dict: Encoder._dict,
    set: Encoder._set,
    frozenset: Encoder._set,
    range: Encoder._range,
    _dt.datetime: Encoder._datetime,
    _dt.date: Encoder._date,
    _dt.time: Encoder._time,
    _dt.timedelta: Encoder._timedelta,
    decimal.Decimal: Encoder._decimal,
    fractions.Fraction: Encoder._fraction,
    uuid.UUID: Encoder._uuid,
}


def encode_with(encoder: Encoder, value: object) -> bytes:
    """``encoder.encode(value)``, with too-deep nesting reported as :class:`Uncacheable`."""
    try:
        return encoder.encode(value)
    except RecursionError as e:
        raise Uncacheable(type_name(type(value)), "it is nested too deeply to walk") from e


def canonical_bytes(value: object, *, file_digest: Callable[[str], str] | None = None,
                    output_ref: bool = False) -> bytes:
    """The canonical bytes of ``value`` (see the module docstring for what they cover).

    ``file_digest(path) -> sha256 hex`` hashes the content of local ``File`` arguments (pass
    ``FileDigestCache().sha256``; default: a process-wide cache). ``output_ref`` marks ``outputs=``
    values, whose files are identified by URL. Raises :class:`Uncacheable`.
    """
    return encode_with(Encoder(file_digest=file_digest, output_ref=output_ref), value)


def digest(value: object, **kw: Any) -> str:
    """sha256 hex of :func:`canonical_bytes` (same keyword arguments)."""
    return hashlib.sha256(canonical_bytes(value, **kw)).hexdigest()
