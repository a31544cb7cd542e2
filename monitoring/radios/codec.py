"""A restricted data format for monitoring messages from peers that are not authenticated.

Unpickling can run any code the sender chooses, so a receiver whose peers are not authenticated
(the zmq radio without CurveZMQ) decodes this instead: JSON in which the few types monitoring
messages use beyond JSON's own are tagged objects. Decoding builds only plain values, never calls
anything a message names, and rejects unknown tags::

    (MessageType.RESOURCE_INFO, {"task_id": 3, "timestamp": datetime(...)})
    -> {"!tuple": [{"!MessageType": "RESOURCE_INFO"},
                   {"!dict": [["task_id", 3], ["timestamp", {"!datetime": "2026-..."}]]}]}

Supported: None, bool, int, float, str, bytes, list, tuple, set, frozenset, dict (any hashable
keys), ``datetime.datetime``/``date``/``timedelta`` and ``MessageType``. ``encode`` raises
``TypeError`` naming anything else; ``decode`` raises ``ValueError`` on anything malformed.
"""
from __future__ import annotations

import base64
import datetime
import json
from typing import Any

from parsl_repro.monitoring.message_type import MessageType


def _tagged(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, MessageType):
        return {"!MessageType": value.name}
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    if isinstance(value, tuple):
        return {"!tuple": [_tagged(v) for v in value]}
    if isinstance(value, dict):
        return {"!dict": [[_tagged(k), _tagged(v)] for k, v in value.items()]}
    if isinstance(value, (set, frozenset)):
        return {"!set" if isinstance(value, set) else "!frozenset": [_tagged(v) for v in value]}
    if isinstance(value, (bytes, bytearray)):
        return {"!bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, datetime.datetime):
        return {"!datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"!date": value.isoformat()}
    if isinstance(value, datetime.timedelta):
        return {"!timedelta": [value.days, value.seconds, value.microseconds]}
    raise TypeError(f"a {type(value).__qualname__} cannot travel on an unauthenticated radio; send plain values "
                    f"(numbers, strings, lists, dicts, datetimes) or configure CurveZMQ certificates")


def encode(message: Any) -> bytes:
    """``message`` in the restricted format."""
    return json.dumps(_tagged(message), separators=(",", ":"), allow_nan=True).encode("utf-8")


def _untag(obj: dict[str, Any]) -> Any:
    if len(obj) != 1:
        raise ValueError("a tagged value has exactly one key")
    ((tag, body),) = obj.items()
    if tag == "!tuple" and isinstance(body, list):
        return tuple(body)
    if tag == "!dict" and isinstance(body, list):
        if not all(isinstance(pair, list) and len(pair) == 2 for pair in body):
            raise ValueError("a dict is a list of [key, value] pairs")
        return {k: v for k, v in body}
    if tag == "!set" and isinstance(body, list):
        return set(body)
    if tag == "!frozenset" and isinstance(body, list):
        return frozenset(body)
    if tag == "!MessageType" and isinstance(body, str):
        return MessageType[body]
    if tag == "!bytes" and isinstance(body, str):
        return base64.b64decode(body, validate=True)
    if tag == "!datetime" and isinstance(body, str):
        return datetime.datetime.fromisoformat(body)
    if tag == "!date" and isinstance(body, str):
        return datetime.date.fromisoformat(body)
    if tag == "!timedelta" and isinstance(body, list) and len(body) == 3 and all(type(x) is int for x in body):
        return datetime.timedelta(days=body[0], seconds=body[1], microseconds=body[2])
    raise ValueError(f"unknown or malformed tag {tag[:40]!r}")


def decode(data: bytes) -> Any:
    """The message ``data`` encodes; ``ValueError`` if it is not this format."""
    try:
        return json.loads(data, object_hook=_untag)
    except ValueError:
        raise
    except (TypeError, KeyError, RecursionError, UnicodeDecodeError) as e:
        raise ValueError(f"not a monitoring message: {type(e).__name__}: {e}") from e
