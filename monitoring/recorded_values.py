"""Turning a task's arguments and result into what the store keeps: bytes and digests.

Runs on the thread that ships events to the writer (or the writer's own thread), never on the
kernel's: ``TaskArguments`` and ``TaskReturned`` carry the task's objects, and are rendered here
into ``RenderedArguments`` and ``RenderedReturn``, which hold only bytes, digests and notes.

Arguments are serialized together, ``(args, kwargs)``, through ``parsl_repro.serialize``; their
digest is the sha256 of the body. The bytes travel to the writer once per digest and run (the
writer stores them once per digest, across runs), so tasks called with the same arguments share
one stored copy. Arguments that hold a URL with a password (an FTP ``File`` with a login)
are never stored, only their digest. A result's digest is the sha256 of its serialized body, the same digest
the memoizer records for stored results.
"""
from __future__ import annotations

import hashlib
from typing import NamedTuple

from parsl_repro.events import TaskArguments, TaskReturned
from parsl_repro.serialize import serialize_value
from parsl_repro.serialize.errors import SerializationError
from parsl_repro.utils import holds_url_password

NOT_REPLAYABLE = "not replayable: "
"""How every note on a task that cannot be replayed from the record begins."""


def too_large(size: int, limit: int) -> str:
    return (f"{NOT_REPLAYABLE}arguments not stored (size): {size} bytes serialized, over the limit of {limit} "
            f"(Config.provenance_argument_limit)")


HOLDS_PASSWORD = (f"{NOT_REPLAYABLE}arguments not stored: they hold a URL with a password, which the record "
                  f"never keeps")


def not_serializable(reason: str) -> str:
    return f"{NOT_REPLAYABLE}arguments not stored: they cannot be serialized ({reason})"


class RenderedArguments(NamedTuple):
    """A task's arguments as stored: ``value`` is None when not shipped (too large, or these bytes
    were shipped already for another task); ``digest`` is None when they cannot be serialized."""
    run_id: str
    task_id: int
    digest: str | None
    serializer: str | None
    size: int | None
    value: bytes | None
    note: str | None


class RenderedReturn(NamedTuple):
    """A task's result digest (None when the result cannot be serialized)."""
    run_id: str
    task_id: int
    digest: str | None


def _digest_of(value: object) -> str:
    return hashlib.sha256(serialize_value(value)[1]).hexdigest()


_CONSTANT_DIGESTS = {value: _digest_of(value) for value in (None, True, False)}


class ValueRenderer:
    """Renders one run's argument and result events; remembers which argument bytes it shipped."""

    def __init__(self) -> None:
        self._shipped: set[str] = set()
        self._empty: tuple[str, str, int] | None = None  # (digest, serializer, size) of ((), {}), once shipped

    def arguments(self, e: TaskArguments) -> RenderedArguments:
        return RenderedArguments(*self.arguments_fields(e))

    def arguments_fields(self, e: TaskArguments) -> tuple:
        """``arguments(e)`` as a plain tuple of ``RenderedArguments``' fields: what the shipper sends
        (no named tuple built per task)."""
        if not e.args and not e.kwargs and self._empty is not None:  # a call without arguments, again
            return (e.run_id, e.task_id, *self._empty, None, None)
        try:  # the note goes on this task's row: "the arguments" is name enough (no f-string per task)
            serializer, body = serialize_value((e.args, e.kwargs), "the arguments")
        except SerializationError as error:
            return (e.run_id, e.task_id, None, None, None, None, not_serializable(error.reason))
        except Exception as error:  # the value changed under the serializer, a proxy refused: never lose the batch
            return (e.run_id, e.task_id, None, None, None, None, not_serializable(f"{type(error).__name__}: {error}"))
        digest = hashlib.sha256(body).hexdigest()
        size = len(body)
        if holds_url_password(body):
            return (e.run_id, e.task_id, digest, serializer, size, None, HOLDS_PASSWORD)
        if size > e.limit:
            return (e.run_id, e.task_id, digest, serializer, size, None, too_large(size, e.limit))
        if not e.args and not e.kwargs:
            self._empty = (digest, serializer, size)
        if digest in self._shipped:
            return (e.run_id, e.task_id, digest, serializer, size, None, None)
        self._shipped.add(digest)
        return (e.run_id, e.task_id, digest, serializer, size, body, None)

    @staticmethod
    def returned(e: TaskReturned) -> RenderedReturn:
        if e.digest is not None:
            return RenderedReturn(e.run_id, e.task_id, e.digest)
        value = e.value
        if value is None or value is True or value is False:  # the commonest results, digested once
            return RenderedReturn(e.run_id, e.task_id, _CONSTANT_DIGESTS[value])
        try:
            _serializer, body = serialize_value(value, "the result")
        except Exception:  # not serializable (or it changed under the serializer): no digest
            return RenderedReturn(e.run_id, e.task_id, None)
        return RenderedReturn(e.run_id, e.task_id, hashlib.sha256(body).hexdigest())
