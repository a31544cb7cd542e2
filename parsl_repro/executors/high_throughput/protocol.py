"""The wire format between the executor, the interchange and the worker pools.

Every message is one multipart message whose first frame is a tag: a zmq multipart message
between the interchange and its pools, a ``FrameStream`` message between the executor and its
interchange (its own child, over a socket pair only the two of them hold). Control messages carry
one JSON frame; tasks and results travel as raw frames, several per message, so a batch of a
thousand tasks is one send with no per-task encoding beyond the 8-byte task id::

    executor -> interchange   HELLO {json}            first message: who the client is
                              TASKS id payload id payload ...   (id: 8 bytes, or 16 with a priority)
                              COMMAND CommandRequest  (reply: COMMAND and the command's reply type)
                              STOP                    (the interchange stops its pools, sends
                                                       their last EVENTS, closes the link)
    interchange -> executor   RESULTS pool id status meta payload ...   (five frames per result)
                              EVENTS PoolEvent ...    pools registering, busy, idle, gone
    pool -> interchange       REGISTER {json}         (reply: REGISTERED {json} or REJECTED {json})
                              HEARTBEAT
                              DRAIN                   take no more tasks; STOP me once idle
                              RESULTS id status meta payload ...
    interchange -> pool       TASKS id payload ...
                              HEARTBEAT
                              STOP

``CommandRequest``, the replies, ``PoolEvent`` and ``TaskLost`` are the typed messages of
``messages``, one JSON frame each. ``status`` is ``OK`` (payload: the serialized result or
RemoteExceptionWrapper) or ``LOST`` (payload: a ``TaskLost`` naming the lost worker or pool).
``meta`` is ``META`` (when the try started, the worker's pid), then JSON resource samples.
Payloads are serialized with ``parsl_repro.serialize`` and are only deserialized from
authenticated peers (CurveZMQ, see ``parsl_repro.curvezmq``).

A task payload is normally an apply message (``parsl_repro.serialize``). One submitted with a
context (``HighThroughputExecutor.submit_payload``) is ``CONTEXT_PAYLOAD``, the serialized
context's length (8 bytes), the serialized context, then the caller's buffer.

Anything malformed (too few frames, an unknown tag, JSON that does not parse) is logged and
dropped by whoever receives it; it never stops the interchange.
"""
from __future__ import annotations

import array
import collections
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

PROTOCOL_VERSION = "2"

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


class FrameStream:
    """Multipart messages over a local stream socket: the executor's link to its interchange.

    The interchange is the executor's own child, so the two talk over a ``socket.socketpair()``
    that no other process can reach: authenticated by construction, with no encryption to pay
    for, and a round trip about four times quicker than a zmq TCP connection (whose every
    message also passes through zmq's I/O threads). A message is its total length (8 bytes),
    its frame count (4 bytes), each frame's length (4 bytes each), then the frames.

    Non-blocking both ways: ``send`` queues and writes what the socket takes, ``flush`` writes
    more of what is queued (call it when ``pending`` and the socket is writable), ``receive``
    returns the complete messages read so far. Both sides write while the other is busy writing
    too, so neither may ever block on a full socket buffer. ``receive`` raises ``EOFError`` once
    the other end has closed, after returning every complete message that arrived before; once
    the other end is gone, ``send`` and ``flush`` quietly drop what they are given (``closed``
    says so), since nobody is left to read it.
    """

    _TOTAL = struct.Struct("=Q")
    _COUNT = struct.Struct("=I")
    READ_SIZE = 1 << 20

    def __init__(self, sock: Any) -> None:
        import socket

        sock.setblocking(False)
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, 4 << 20)  # fewer wake-ups for big batches
            except OSError:
                pass
        self.sock = sock
        self.fd = sock.fileno()
        self._out: collections.deque[bytes] = collections.deque()
        self._sent = 0  # bytes of _out[0] already written
        self._in = bytearray()
        self.closed = False  # the other end stopped reading: nothing more is sent
        self._eof = False  # the other end stopped writing: nothing more will arrive
        self._scratch = bytearray(self.READ_SIZE)
        self._scratch_view = memoryview(self._scratch)

    @property
    def pending(self) -> bool:
        return bool(self._out)

    def send(self, frames: list[bytes]) -> None:
        if self.closed:
            return
        lengths = array.array("I", map(len, frames))
        header = self._TOTAL.pack(4 + 4 * len(frames) + sum(lengths)) + self._COUNT.pack(len(frames))
        self._out.append(b"".join([header, lengths.tobytes(), *frames]))
        self.flush()

    def flush(self) -> None:
        out = self._out
        while out:
            first = out[0]
            try:
                sent = self.sock.send(memoryview(first)[self._sent:])
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # BrokenPipeError, ConnectionResetError: the reader is gone
                self._gone()
                return
            self._sent += sent
            if self._sent == len(first):
                out.popleft()
                self._sent = 0

    def receive(self) -> list[list[bytes]]:
        buffer = self._in
        scratch = self._scratch  # recv(n) would allocate (and page in) n bytes on every call
        ended = self._eof
        while not ended:
            try:
                size = self.sock.recv_into(scratch)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # ConnectionResetError: the writer is gone
                size = 0
            if not size:
                ended = True
                break
            buffer += self._scratch_view[:size]
            if size < len(scratch):
                break
        messages = []
        view = memoryview(buffer)
        start = 0
        end = len(buffer)
        total_size, count_size = self._TOTAL.size, self._COUNT.size
        try:
            while end - start >= total_size:
                (total,) = self._TOTAL.unpack_from(view, start)
                if end - start - total_size < total:
                    break
                at = start + total_size
                (count,) = self._COUNT.unpack_from(view, at)
                at += count_size
                lengths = array.array("I")
                lengths.frombytes(view[at:at + 4 * count])
                at += 4 * count
                frames = []
                for length in lengths:
                    frames.append(bytes(view[at:at + length]))
                    at += length
                messages.append(frames)
                start += total_size + total
        finally:
            view.release()
        if start:
            del buffer[:start]
        if ended:
            self._eof = True
            self._gone()
            if not messages:
                raise EOFError("the other end of the link closed")
        return messages

    def _gone(self) -> None:
        self.closed = True
        self._out.clear()
        self._sent = 0
