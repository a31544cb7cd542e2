"""The wire format between the executor, the interchange and the worker pools.

Every message is one zmq multipart message whose first frame is a tag. Control messages carry
one JSON frame; tasks and results travel as raw frames, several per message, so a batch of a
thousand tasks is one send with no per-task encoding beyond the 8-byte task id::

    executor -> interchange   HELLO {json}            first message: who the client is
                              TASKS id payload id payload ...
                              COMMAND {json}          (reply: COMMAND {json})
                              STOP
    interchange -> executor   RESULTS pool id status meta payload ...   (five frames per result)
                              EVENTS {json}           pools registering or lost
    pool -> interchange       REGISTER {json}         (reply: REGISTERED {json} or REJECTED {json})
                              HEARTBEAT
                              RESULTS id status meta payload ...
    interchange -> pool       TASKS id payload ...
                              HEARTBEAT
                              STOP

``status`` is ``OK`` (payload: the serialized result or RemoteExceptionWrapper) or ``LOST``
(payload: JSON naming the lost worker or pool). ``meta`` is JSON: where and when the try ran,
and its resource samples. Payloads are serialized with ``parsl_repro.serialize`` and are only
deserialized from authenticated peers (CurveZMQ, see ``parsl_repro.curvezmq``).
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

OK = b"OK"
LOST = b"LOST"

PROTOCOL_VERSION = "1"

META = struct.Struct(">dI")
"""The fixed start of a result's ``meta``: when the try started (time.time()) and the worker's pid;
JSON resource samples may follow."""

_ID = struct.Struct(">Q")
pack_id = _ID.pack


def unpack_id(frame: bytes) -> int:
    return _ID.unpack(frame)[0]


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def loads(frame: bytes) -> Any:
    return json.loads(frame)
