"""The wire format between the executor, the interchange and the worker pools.

Every message is one zmq multipart message whose first frame is a tag. Control messages carry
one JSON frame; tasks and results travel as raw frames, several per message, so a batch of a
thousand tasks is one send with no per-task encoding beyond the 8-byte task id::

    executor -> interchange   HELLO {json}            first message: who the client is
                              TASKS id payload id payload ...   (id: 8 bytes, or 16 with a priority)
                              COMMAND {json}          (reply: COMMAND {json})
                              STOP
    interchange -> executor   RESULTS pool id status meta payload ...   (five frames per result)
                              EVENTS {json}           pools registering or lost
    pool -> interchange       REGISTER {json}         (reply: REGISTERED {json} or REJECTED {json})
                              HEARTBEAT
                              DRAIN                   take no more tasks; STOP me once idle
                              RESULTS id status meta payload ...
    interchange -> pool       TASKS id payload ...
                              HEARTBEAT
                              STOP

``status`` is ``OK`` (payload: the serialized result or RemoteExceptionWrapper) or ``LOST``
(payload: JSON naming the lost worker or pool). ``meta`` is JSON: where and when the try ran,
and its resource samples. Payloads are serialized with ``parsl_repro.serialize`` and are only
deserialized from authenticated peers (CurveZMQ, see ``parsl_repro.curvezmq``).

A task payload is normally an apply message (``parsl_repro.serialize``). One submitted with a
context (``HighThroughputExecutor.submit_payload``) is ``CONTEXT_PAYLOAD``, the serialized
context's length (8 bytes), the serialized context, then the caller's buffer.

Anything malformed (too few frames, an unknown tag, JSON that does not parse) is logged and
dropped by whoever receives it; it never stops the interchange.
"""
from __future__ import annotations

import json
import struct
from typing import Any

HELLO = b"HELLO"
TASKS = b"TASKS"
RESULTS = b"RESULTS"
COMMAND = b"COMMAND"
EVENTS = b"EVENTS"
STOP = b"STOP"
REGISTER = b"REGISTER"
REGISTERED = b"REGISTERED"
REJECTED = b"REJECTED"
HEARTBEAT = b"HEARTBEAT"
DRAIN = b"DRAIN"

OK = b"OK"
LOST = b"LOST"

PROTOCOL_VERSION = "1"

META = struct.Struct(">dI")
"""The fixed start of a result's ``meta``: when the try started (time.time()) and the worker's pid;
JSON resource samples may follow."""

_ID = struct.Struct(">Q")
ID_SIZE = _ID.size
pack_id = _ID.pack

_PRIORITIZED_ID = struct.Struct(">Qd")
"""A task id frame that also carries the task's ``priority`` (lower runs first): the
interchange strips the priority, so pools and results only ever see 8-byte ids."""


def pack_prioritized_id(task_id: int, priority: float) -> bytes:
    return _PRIORITIZED_ID.pack(task_id, priority)


def unpack_prioritized_id(frame: bytes) -> tuple[bytes, float]:
    """``(8-byte task id frame, priority)``."""
    return frame[:ID_SIZE], _PRIORITIZED_ID.unpack(frame)[1]


def unpack_id(frame: bytes) -> int:
    return _ID.unpack(frame)[0]


CONTEXT_PAYLOAD = b"C"
"""First byte of a task payload that carries a context (never the first byte of an apply message)."""


def pack_context_payload(context: bytes, buffer: bytes) -> bytes:
    return CONTEXT_PAYLOAD + _ID.pack(len(context)) + context + buffer


def unpack_context_payload(payload: bytes) -> tuple[bytes, bytes]:
    """``(serialized context, buffer)`` of a payload made by ``pack_context_payload``."""
    (length,) = _ID.unpack_from(payload, 1)
    start = 1 + _ID.size
    return payload[start:start + length], payload[start + length:]


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def loads(frame: bytes) -> Any:
    return json.loads(frame)
