"""The executor's one connection to its interchange, and the I/O thread's loop over it.

Parsl opens three zmq connections (``outgoing_q`` for tasks, ``incoming_q`` for results,
``command_client`` for commands). Here one local socket pair carries all three
(``protocol.FrameStream``: the interchange is the executor's child, and no other process can
reach the pair). The executor's I/O thread alone reads and writes it::

    any thread   put(task) ----------> outbox   --+
                 ask(request) -------> commands --+--wake pipe--> I/O thread (serve)
                 run("MANAGERS")                                    | TASKS, COMMAND, (at stop) STOP
                                                                    v
                                                               interchange
                                                                    | RESULTS, COMMAND replies, EVENTS
    handler.results / .pool_events  <-------------------------------+

``serve`` ends when the executor sets ``stopping`` (it then sends what is queued and STOP, and
reads the interchange's last pool events until the interchange closes its end), when the
interchange dies, or on a bug in the loop; either way every command still waiting fails with
``CommandClientBadError``.
"""
from __future__ import annotations

import collections
import logging
import os
import select
import threading
import time
from concurrent.futures import Future
from typing import Any, Protocol

from parsl_repro import curvezmq
from parsl_repro.executors.high_throughput import protocol as p
from parsl_repro.executors.high_throughput.errors import (
    CommandClientBadError,
    CommandClientTimeoutError,
    CommandFailed,
)
from parsl_repro.executors.high_throughput.messages import (
    PARSL_COMMANDS,
    Command,
    CommandFailedReply,
    CommandRequest,
    PoolEvent,
    Reply,
    decode,
    encode,
)

logger = logging.getLogger(__name__)

LAST_WORDS_SECONDS = 5.0
"""How long the I/O thread, after STOP, waits for the interchange's last pool events."""

_COMMANDS_BY_VALUE = {command.value: command for command in Command}


class LinkHandler(Protocol):
    """What the I/O loop hands on (``results.ResultHandler`` is the executor's)."""

    def results(self, frames: list[bytes]) -> None:
        """A RESULTS message, tag included."""

    def pool_events(self, events: list[PoolEvent]) -> None:
        """Pools registered, turned busy or idle, or left."""

    def interchange_died(self) -> bool:
        """Whether the interchange process has exited (checked twice a second)."""

    def link_closed(self) -> None:
        """The interchange closed its end of the link unasked."""

    def failed(self, error: Exception) -> None:
        """The I/O loop itself failed with ``error``."""


class InterchangeLink:
    """The executor's one connection to its interchange (see the module docstring).

    ``put``, ``ask`` and ``run`` may be called from any thread: they queue, and wake the I/O
    thread through a pipe. ``zmq_context`` is the CurveZMQ client context of the run's
    certificates (``zmq_context.cert_dir``), as Parsl's links have; no socket is made on it.
    """

    def __init__(self, cert_dir: str | None, stream: p.FrameStream) -> None:
        self.zmq_context = curvezmq.ClientContext(cert_dir)
        self.stream = stream
        self.outbox: collections.deque[tuple[bytes, bytes]] = collections.deque()
        self.commands: collections.deque[tuple[CommandRequest, Future]] = collections.deque()
        self.awaiting_reply: collections.deque[tuple[CommandRequest, Future]] = collections.deque()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        self.io_ident = -1
        self._closed: BaseException | None = None
        self._lock = threading.Lock()

    # --- any thread ---------------------------------------------------------------------------------
    def put(self, task: tuple[bytes, bytes]) -> None:
        """Queue one task (its packed id and payload) for the next batch to the interchange."""
        self.outbox.append(task)
        if threading.get_ident() != self.io_ident:  # the I/O thread sends its own submissions
            self.wake()

    def wake(self) -> None:
        """Wake the I/O thread (to send what is queued, or to notice ``stopping``)."""
        try:
            os.write(self.wake_w, b"\0")
        except BlockingIOError:
            pass  # the pipe is full: the I/O thread is already awake
        except OSError:
            pass  # closed: the link is shut down and nothing more will be sent

    def ask(self, request: CommandRequest | Command, timeout_s: float | None = None) -> Reply:
        """Ask the interchange one command; returns its reply, of the command's ``reply_type``.

        Raises ``CommandFailed`` if the interchange could not carry it out,
        ``CommandClientTimeoutError`` after ``timeout_s`` seconds and ``CommandClientBadError``
        once the link is closed."""
        if isinstance(request, Command):
            request = CommandRequest(request)
        reply = self._send_command(request, timeout_s)
        if isinstance(reply, CommandFailedReply):
            raise CommandFailed(f"the interchange could not carry out {request.command.value}: {reply.error}")
        if not isinstance(reply, request.command.reply_type):
            raise CommandFailed(f"the interchange answered {request.command.value} with a {type(reply).__name__}")
        return reply

    def run(self, command: str, timeout_s: float | None = None) -> Any:
        """Parsl's command channel: ask one of Parsl's names (``"MANAGERS"``,
        ``"MANAGERS_PACKAGES"``, ``"CONNECTED_BLOCKS"``, ``"WORKERS"``, ``"OUTSTANDING_C"``,
        ``"WORKER_BINDS"``) or a ``Command``'s value, and return the reply as Parsl shapes it
        (``Reply.value``). An unknown name, or a command the interchange could not carry out,
        answers ``{"error": reason}``. Raises as ``ask`` does for timeouts and a closed link."""
        known = PARSL_COMMANDS.get(command) or _COMMANDS_BY_VALUE.get(command)
        if known is None:
            return {"error": f"unknown command {command!r}"}
        return self._send_command(CommandRequest(known), timeout_s).value

    def _send_command(self, request: CommandRequest, timeout_s: float | None) -> Reply:
        reply: Future = Future()
        with self._lock:
            if self._closed is not None:
                raise CommandClientBadError(f"the connection to the interchange is closed: {self._closed}")
            self.commands.append((request, reply))
        self.wake()
        try:
            return reply.result(timeout_s)
        except TimeoutError:
            raise CommandClientTimeoutError(
                f"the interchange did not answer {request.command.value!r} within {timeout_s} s") from None

    def close(self, reason: BaseException | None = None) -> None:
        """Fail every command still waiting for a reply and refuse new ones (the I/O thread
        calls this as it exits). Idempotent."""
        with self._lock:
            if self._closed is None:
                self._closed = reason or RuntimeError("closed")
            waiting = [reply for _, reply in self.commands] + [reply for _, reply in self.awaiting_reply]
            self.commands.clear()
            self.awaiting_reply.clear()
        for reply in waiting:
            if not reply.done():
                reply.set_exception(CommandClientBadError(f"the connection to the interchange closed: {self._closed}"))

    def close_pipe(self) -> None:
        """Close the wake pipe (after the I/O thread has ended)."""
        for fd in (self.wake_r, self.wake_w):
            if fd >= 0:
                os.close(fd)
        self.wake_r = self.wake_w = -1

    # --- the I/O thread -----------------------------------------------------------------------------
    def serve(self, handler: LinkHandler, stopping: threading.Event, label: str) -> None:
        """The I/O thread's loop, for executor ``label``: send what is queued, hand on what comes
        back, until ``stopping`` is set or the interchange is gone (see the module docstring)."""
        self.io_ident = threading.get_ident()
        stream = self.stream
        stream.send([p.HELLO, p.dumps({"label": label})])
        poller = select.poll()
        poller.register(stream.fd, select.POLLIN)
        stream_flags = select.POLLIN
        poller.register(self.wake_r, select.POLLIN)
        next_check = time.monotonic() + 0.5
        failure: BaseException | None = None
        try:
            while not stopping.is_set():
                events = dict(poller.poll(200))
                if self.wake_r in events:
                    os.read(self.wake_r, 65536)
                ready = events.get(stream.fd, 0)
                if ready & select.POLLOUT:
                    stream.flush()
                if ready & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    try:
                        self._receive(handler)  # completing futures here submits their dependents...
                    except EOFError:
                        handler.link_closed()
                        return
                self._send_queued()  # ...which leave in the same pass
                wanted = select.POLLIN | select.POLLOUT if stream.pending else select.POLLIN
                if wanted != stream_flags:  # wait for room only while something waits to go
                    poller.modify(stream.fd, wanted)
                    stream_flags = wanted
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + 0.5
                    if handler.interchange_died():
                        return
            self._send_queued()
            stream.send([p.STOP])
            self._last_words(handler, poller)
        except Exception as e:  # a bug here would hang every task: fail them instead
            logger.exception("The I/O thread of %s failed", label)
            failure = e
            handler.failed(e)
        finally:
            self.close(failure or RuntimeError(f"executor {label} is shutting down"))
            stream.sock.close()
            self.zmq_context.term()

    def _last_words(self, handler: LinkHandler, poller: Any) -> None:
        """After STOP: deliver the last tasks and STOP, and hand on the pool events the
        interchange sends as it stops, until it closes its end (results are no longer read:
        the executor fails what is outstanding)."""
        stream = self.stream
        deadline = time.monotonic() + LAST_WORDS_SECONDS
        while time.monotonic() < deadline:
            poller.modify(stream.fd, select.POLLIN | select.POLLOUT if stream.pending else select.POLLIN)
            events = dict(poller.poll(100))
            if self.wake_r in events:
                os.read(self.wake_r, 65536)
            ready = events.get(stream.fd, 0)
            if ready & select.POLLOUT:
                stream.flush()
            if ready & (select.POLLIN | select.POLLHUP | select.POLLERR):
                try:
                    self._receive(handler, results=False)
                except EOFError:
                    return
        logger.warning("The interchange did not close its link within %s s of STOP", LAST_WORDS_SECONDS)

    def _send_queued(self) -> None:
        stream, outbox, commands = self.stream, self.outbox, self.commands
        if outbox:
            frames = [p.TASKS]
            while outbox:
                frames.extend(outbox.popleft())
            stream.send(frames)
        while commands:
            request, reply = commands.popleft()
            self.awaiting_reply.append((request, reply))
            stream.send([p.COMMAND, encode(request)])

    def _receive(self, handler: LinkHandler, results: bool = True) -> None:
        for frames in self.stream.receive():
            tag = frames[0]
            if tag == p.RESULTS:
                if results:
                    handler.results(frames)
            elif tag == p.COMMAND:
                self._reply(frames[1])
            elif tag == p.EVENTS:
                handler.pool_events(self._pool_events(frames))
            else:
                logger.warning("Dropped a message with unknown tag %r from the interchange", tag[:64])

    def _reply(self, frame: bytes) -> None:
        """Complete the oldest command waiting: the interchange answers in order, once each."""
        if not self.awaiting_reply:
            logger.warning("Dropped a reply from the interchange that no command waits for")
            return
        request, reply = self.awaiting_reply.popleft()
        if reply.done():  # its caller gave up waiting
            return
        try:
            reply.set_result(decode(frame))
        except Exception as e:
            reply.set_exception(CommandFailed(f"unreadable reply to {request.command.value}: {e}"))

    @staticmethod
    def _pool_events(frames: list[bytes]) -> list[PoolEvent]:
        events = []
        for frame in frames[1:]:
            try:
                event = decode(frame)
            except Exception:
                logger.exception("Dropped an unreadable pool event from the interchange: %r", frame[:200])
                continue
            if isinstance(event, PoolEvent):
                events.append(event)
            else:
                logger.warning("Dropped a %s sent as a pool event", type(event).__name__)
        return events
