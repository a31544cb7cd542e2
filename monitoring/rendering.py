"""A task's call as the task table shows it: its arguments, files and streams rendered to bounded,
readable text that refers to no live object.

The shipper renders each ``TaskCreated`` on the kernel's side (``render_fields``), since its
arguments cannot cross to the writer process; the in-process writer renders it itself
(``render``). Files appear by URL (with any password hidden) and futures by task, never by
address. This module loads no SQLAlchemy, so the kernel can render without it.
"""
from __future__ import annotations

import json
import os
import reprlib
from typing import Any, NamedTuple

from parsl_repro.data_provider.data_future import DataFuture
from parsl_repro.data_provider.files import File
from parsl_repro.events import TaskCreated
from parsl_repro.utils import redact_secrets

MAX_CALL_CHARS = 2000
"""The longest ``args_repr`` kept; a longer call is cut and ends in "..."."""


class RenderedTask(NamedTuple):
    """A ``TaskCreated`` with its call turned into text: what the task row needs, and nothing that
    refers to live objects, so it can cross a process boundary."""
    run_id: str
    task_id: int
    time: float
    func_name: str
    app_kind: str
    executor: str
    depends_on: tuple[int, ...]
    memoize: bool
    args_repr: str
    inputs: str | None
    outputs: str | None
    stdin: str | None
    stdout: str | None
    stderr: str | None
    app_digest: str | None = None
    arg_futures: str | None = None
    launched_by: int | None = None


def render(e: TaskCreated) -> RenderedTask:
    """``e`` with its call rendered to text."""
    return RenderedTask(*render_fields(e))


def render_fields(e: TaskCreated) -> tuple:
    """``render(e)`` as a plain tuple of ``RenderedTask``'s fields: what the writer process is sent
    (no named tuple built on the kernel's side)."""
    kwargs = e.kwargs
    futures = future_paths(e.args, kwargs) if e.depends_on else None
    if not kwargs:
        args = e.args
        return (e.run_id, e.task_id, e.time, e.func_name, e.app_kind, e.executor, e.depends_on, e.memoize,
                _call_repr(args, {}) if args else "()", None, None, None, None, None, e.app_digest, futures,
                e.launched_by)
    return (e.run_id, e.task_id, e.time, e.func_name, e.app_kind, e.executor, e.depends_on, e.memoize,
            _call_repr(e.args, kwargs), _bounded(kwargs.get("inputs")), _bounded(kwargs.get("outputs")),
            _bounded(kwargs.get("stdin")), _stream(kwargs, "stdout"), _stream(kwargs, "stderr"), e.app_digest,
            futures, e.launched_by)


_MAX_FUTURE_DEPTH = 6


def future_paths(args: tuple, kwargs: dict | None) -> str | None:
    """Where a call holds other tasks' futures, as JSON ``[[path, task id, kind], ...]``: ``path`` is
    ``["a", position, ...]`` or ``["k", name, ...]`` followed by the positions and keys into the
    lists, tuples and dicts that hold it; ``kind`` is ``"result"`` (an ``AppFuture``) or ``"output"``
    (a ``DataFuture``: a file another task writes). A replay puts its own futures back there. None
    when there is none."""
    found: list[list] = []

    def walk(value: Any, path: list, depth: int) -> None:
        kind = type(value)
        if kind in _SIMPLE or kind is str:
            return
        if isinstance(value, DataFuture):
            found.append([path, value.tid, "output"])
        elif kind.__name__ == "AppFuture":  # the kernel's type, from a layer above this one
            found.append([path, value.tid, "result"])
        elif depth < _MAX_FUTURE_DEPTH and kind in (list, tuple):
            for i, item in enumerate(value):
                walk(item, [*path, i], depth + 1)
        elif depth < _MAX_FUTURE_DEPTH and kind is dict:
            for key, item in value.items():
                if type(key) is str:
                    walk(item, [*path, key], depth + 1)

    for position, value in enumerate(args):
        walk(value, ["a", position], 0)
    for name, value in (kwargs or {}).items():
        walk(value, ["k", name], 0)
    return json.dumps(found) if found else None


def render_inputs(inputs: Any) -> str | None:
    """``inputs=`` as the task table's ``task_inputs`` shows it."""
    return inputs if isinstance(inputs, str) else _bounded(inputs)


class _ArgumentRepr(reprlib.Repr):
    """Bounded reprs for the task table: files by URL and futures by task, never by address."""

    def repr_File(self, x: Any, level: int) -> str:  # noqa: N802 (reprlib dispatches on the type name)
        return f"File({redact_secrets(x.url)!r})"

    def repr_DataFuture(self, x: Any, level: int) -> str:  # noqa: N802
        return f"<output {redact_secrets(x.file_obj.url)!r} of task {x.tid}>"

    def repr_AppFuture(self, x: Any, level: int) -> str:  # noqa: N802
        return f"<result of task {x.tid}>"


_repr = _ArgumentRepr()
_repr.maxstring = 200
_repr.maxother = 200
_repr.maxlist = _repr.maxtuple = _repr.maxdict = 20
_SIMPLE = (int, float, bool, type(None))


def _bounded(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) in _SIMPLE:
        return repr(value)
    if type(value) is str and len(value) <= 200:
        return redact_secrets(repr(value))
    try:
        return redact_secrets(_repr.repr(value))
    except Exception:
        return f"<{type(value).__name__}>"


def _call_repr(args: tuple, kwargs: dict) -> str:
    if not kwargs and all(type(a) in _SIMPLE for a in args):  # f(1, 2.5): the common short call
        text = "(" + ", ".join(map(repr, args)) + ")"
        if len(text) <= MAX_CALL_CHARS:
            return text
    parts = [_bounded(a) or "None" for a in args]
    parts += [f"{k}={_bounded(v)}" for k, v in kwargs.items()]
    text = "(" + ", ".join(parts) + ")"
    return text if len(text) <= MAX_CALL_CHARS else text[:MAX_CALL_CHARS - 3] + "..."


def _file_of(value: Any) -> File | None:
    """The File a value stands for (a File or a DataFuture), else None. Never getattr on other
    objects: an AppFuture turns attribute access into a new task."""
    if isinstance(value, File):
        return value
    if isinstance(value, DataFuture):
        return value.file_obj
    return None


def _stream(kwargs: dict, name: str) -> str:
    """A task's stdout or stderr as Parsl's monitoring records it: the URL of a File, the path
    of a path (with or without a mode), or "" when there is none."""
    spec = kwargs.get(name)
    if spec is None:
        return ""
    if isinstance(spec, tuple):
        spec = spec[0]
    file = _file_of(spec)
    if file is not None:
        return redact_secrets(file.url)
    return os.fsdecode(spec) if isinstance(spec, (str, bytes, os.PathLike)) else str(spec)
