"""The interchange: the broker between one HighThroughputExecutor and its worker pools.

It runs as its own process (``python -m parsl_repro.executors.high_throughput.interchange``),
started by the executor, which writes its settings as one JSON line on the interchange's
standard input and keeps that pipe open: when the pipe closes, the executor is gone and the
interchange stops its pools and exits. The interchange answers with one JSON line on standard
output naming the worker port it bound.

Two connections:
  * the client link to the executor: one end of a local socket pair the executor made and
    passed down (``client_fd``), carrying tasks and commands in and results out as
    ``protocol.FrameStream`` messages; only the executor holds the other end;
  * the worker socket, a ROUTER bound to ``address`` (loopback by default), CurveZMQ-authenticated
    unless ``encrypted`` is off, where pools register, pull tasks up to their capacity (workers
    + prefetch), return results and send heartbeats.

Tasks wait in the pending queue and go to pools with free capacity, a batch per pool per pass,
in the order the ``manager_selector`` puts the pools (random by default). Tasks with a
``priority`` go first, lowest value first, in arrival order among equals; the rest follow in
arrival order. A pool
silent for ``heartbeat_threshold`` is lost: its outstanding tasks come back to the executor as
``ManagerLost`` failures (the kernel retries them per ``retries``). A pool that asks to drain
(after its ``drain_period``) gets no more tasks and is told to stop once its last result is in.
The interchange never looks inside a task or a result; it only moves frames. A malformed
message from a pool or the client is logged and dropped: it never stops the interchange.
SIGTERM, like the executor's pipe closing or its STOP, makes it stop its pools and exit.

It alone decides each pool's activity and tells the executor (``messages.PoolEvent``, on
EVENTS): registered; busy when work reaches an idle pool; idle once it has held no task for
``IDLE_REPORT_AFTER`` seconds; lost, drained; and, as it stops, idle (for a pool idle then but
not yet reported) and stopped for every pool still connected. Commands arrive as
``messages.CommandRequest`` and each gets exactly one reply of its command's type.
"""
from __future__ import annotations

import base64
import heapq
import json
import logging
import os
import select
import signal
import socket
import sys
import time
from collections import deque
from typing import Any

import zmq

from parsl_repro import curvezmq
from parsl_repro.executors.high_throughput import messages
from parsl_repro.executors.high_throughput import protocol as p
from parsl_repro.executors.high_throughput.manager_record import ManagerRecord
from parsl_repro.executors.high_throughput.manager_selector import ManagerSelector, RandomManagerSelector
from parsl_repro.executors.high_throughput.messages import Command, CommandRequest, PoolEventKind, decode, encode

# plain ints: pyzmq's flag enums cost an enum construction on every `&` and `|` in the loop
POLLIN, POLLOUT, EVENTS, NOBLOCK = int(zmq.POLLIN), int(zmq.POLLOUT), int(zmq.EVENTS), int(zmq.NOBLOCK)

logger = logging.getLogger("parsl_repro.executors.high_throughput.interchange")

IDLE_REPORT_AFTER = 1.0
"""Seconds a pool must stay without tasks before its node record says idle."""

FINAL_FLUSH_SECONDS = 1.0
"""How long the interchange, as it stops, tries to hand the executor what it still has to say."""


class Interchange:
    """The broker's state and loop: see the module docstring. ``run`` serves until told to stop."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.heartbeat_period = float(settings.get("heartbeat_period", 30))
        self.heartbeat_threshold = float(settings.get("heartbeat_threshold", 120))
        self.context = curvezmq.ServerContext(settings.get("cert_dir"))
        # no high-water marks: a ROUTER silently drops what it cannot queue, and a result or a
        # task must never vanish because the other side fell behind for a while
        # the executor: our parent, over the socket it passed us (see protocol.FrameStream)
        self.client = p.FrameStream(socket.socket(fileno=int(settings["client_fd"])))
        self.workers = self.context.socket(zmq.ROUTER)
        self.workers.setsockopt(zmq.LINGER, 0)
        self.workers.setsockopt(zmq.SNDHWM, 0)
        self.workers.setsockopt(zmq.RCVHWM, 0)
        self.workers.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.worker_port = _bind(self.workers, settings.get("worker_bind_address", "127.0.0.1"),
                                 settings.get("worker_port"), settings.get("worker_port_range"))
        if settings.get("worker_ipc"):  # pools on this host: a Unix socket, in the executor's private directory
            self.workers.bind(f"ipc://{settings['worker_ipc']}")
        self.queue: deque[tuple[bytes, bytes]] = deque()  # tasks without a priority, in arrival order
        self.prioritized: list[tuple[float, int, bytes, bytes]] = []  # heap of (priority, arrival, id, payload)
        self._arrivals = 0
        self.manager_selector: ManagerSelector = _selector(settings.get("manager_selector"))
        self.short_task_prefetch = bool(settings.get("short_task_prefetch", False))
        self._debug = logger.isEnabledFor(logging.DEBUG)
        self.managers: dict[bytes, ManagerRecord] = {}
        self.held_blocks: set[str] = set()
        self.registered_blocks: set[str] = set()  # every block whose pools ever registered
        self.pool_events: list[messages.PoolEvent] = []  # not yet sent to the executor
        self.pending_results: list[bytes] = []
        self.stopping = False

    # --- main loop --------------------------------------------------------------------------------
    def run(self, control: int) -> None:
        """Serve until told to stop, or until ``control`` (the executor's pipe) closes."""
        poller = zmq.Poller()
        client = self.client
        poller.register(client.fd, POLLIN)
        client_flags = POLLIN
        poller.register(self.workers, POLLIN)
        poller.register(control, POLLIN)
        next_heartbeat = time.monotonic() + self.heartbeat_period
        next_idle_check = time.monotonic() + 1.0
        try:
            while not self.stopping:
                events = dict(poller.poll(min(self.heartbeat_period, 1.0) * 1000))
                if control in events:
                    if not os.read(control, 4096):
                        logger.info("The executor's pipe closed; stopping")
                        break
                ready = events.get(client.fd, 0)
                if ready & POLLOUT:
                    client.flush()
                if ready & POLLIN:
                    self._from_client()
                if self.workers in events:
                    self._from_workers()
                self._dispatch()
                self._flush()
                wanted = POLLIN | POLLOUT if client.pending else POLLIN
                if wanted != client_flags:  # wait for room only while something is waiting to go
                    poller.modify(client.fd, wanted)
                    client_flags = wanted
                self._stop_drained()
                now = time.monotonic()
                if now >= next_heartbeat:
                    next_heartbeat = now + self.heartbeat_period
                    self._heartbeat()
                self._expire(now)
                if now >= next_idle_check:
                    next_idle_check = now + 1.0
                    self._report_idle()
        finally:  # whatever ended the loop, the pools are told to stop
            self._stop_pools()

    def _from_client(self) -> None:
        try:
            messages = self.client.receive()
        except EOFError:
            logger.info("The executor closed its link; stopping")
            self.stopping = True
            return
        for frames in messages:
            try:
                self._client_message(frames)
            except Exception:
                logger.exception("Dropped a malformed message from the executor (%d frames, starting %r)",
                                 len(frames), frames[0][:64] if frames else b"")

    def _client_message(self, frames: list[bytes]) -> None:
        tag = frames[0]
        if tag == p.TASKS:
            queue = self.queue
            for i in range(1, len(frames) - 1, 2):
                task_id = frames[i]
                if len(task_id) == p.ID_SIZE:
                    queue.append((task_id, frames[i + 1]))
                else:
                    self._prioritize(task_id, frames[i + 1])
            if self._debug:
                for i in range(1, len(frames) - 1, 2):
                    logger.debug("Put task %d onto pending_task_queue", p.unpack_id(frames[i][:p.ID_SIZE]))
        elif tag == p.COMMAND:
            request: CommandRequest | None = None
            reply: messages.Reply
            try:
                decoded = decode(frames[1])
                if not isinstance(decoded, CommandRequest):
                    raise TypeError(f"a COMMAND must carry a CommandRequest, not {type(decoded).__name__}")
                request = decoded
                reply = self._command(request)
            except Exception as e:  # the client waits for exactly one reply per command
                logger.exception("Command %r failed", frames[1][:200])
                failed = request.command if request else None
                reply = messages.CommandFailedReply(failed, f"{type(e).__name__}: {e}")
            self.client.send([p.COMMAND, encode(reply)])
        elif tag == p.STOP:
            self.stopping = True
        elif tag == p.HELLO:
            logger.info("Executor connected")
        else:
            logger.warning("Dropped a message with unknown tag %r from the executor", tag[:64])

    def _prioritize(self, task_frame: bytes, payload: bytes) -> None:
        task_id, priority = p.unpack_prioritized_id(task_frame)
        self._arrivals += 1
        heapq.heappush(self.prioritized, (priority, self._arrivals, task_id, payload))

    def _next_task(self) -> tuple[bytes, bytes]:
        if self.prioritized:
            _, _, task_id, payload = heapq.heappop(self.prioritized)
            return task_id, payload
        return self.queue.popleft()

    def _command(self, request: CommandRequest) -> messages.Reply:
        """Carry out one command; the reply is of its command's ``reply_type``."""
        command, managers = request.command, list(self.managers.values())
        if command is Command.CONNECTED_MANAGERS:
            return messages.ConnectedManagersReply([m.info() for m in managers])
        if command is Command.OUTSTANDING:
            queued = len(self.queue) + len(self.prioritized)
            return messages.OutstandingReply(queued + sum(len(m.tasks) for m in managers))
        if command is Command.REGISTERED_BLOCKS:
            return messages.RegisteredBlocksReply(sorted(self.registered_blocks))
        if command is Command.MANAGERS_PACKAGES:
            return messages.ManagersPackagesReply({m.uid: m.packages for m in managers})
        if command is Command.WORKER_PORT:
            return messages.WorkerPortReply(self.worker_port)
        if command is Command.WORKER_COUNT:
            return messages.WorkerCountReply(sum(m.worker_count for m in managers if m.active))
        if command is Command.HOLD_BLOCK:
            self.held_blocks.add(request.target)
            held = [m for m in managers if m.block_id == request.target]
            for m in held:
                m.active = False
            return messages.HoldBlockReply(request.target, len(held))
        if command is Command.HOLD_MANAGER:
            held = [m for m in managers if m.uid == request.target]
            for m in held:
                m.active = False
            return messages.HoldManagerReply(request.target, bool(held))
        raise ValueError(f"no handler for {command}")

    def _from_workers(self) -> None:
        workers = self.workers
        while workers.getsockopt(EVENTS) & POLLIN:  # cheaper than raising zmq.Again once drained
            frames = workers.recv_multipart(NOBLOCK)
            try:
                self._worker_message(frames)
            except Exception:
                logger.exception("Dropped a malformed message from pool %r (%d frames, starting %r)", frames[0],
                                 len(frames), frames[1][:64] if len(frames) > 1 else b"")

    def _worker_message(self, frames: list[bytes]) -> None:
        identity = frames[0]
        tag = frames[1] if len(frames) > 1 else b""
        manager = self.managers.get(identity)
        if manager is not None:
            manager.last_heard = time.monotonic()
        if tag == p.RESULTS:
            if manager is None:
                logger.warning("Results from an unregistered pool %r dropped", identity)
                return
            if (len(frames) - 2) % 4:
                raise ValueError(f"a RESULTS message has {len(frames) - 2} frames after its tag, not 4 per result")
            uid = manager.uid.encode()
            pending = self.pending_results
            now = time.monotonic()
            returned = manager.returned
            for i in range(2, len(frames) - 3, 4):
                returned(frames[i], now)
                pending += [uid, frames[i], frames[i + 1], frames[i + 2], frames[i + 3]]
            if not manager.tasks and manager.idle_since is None:
                manager.idle_since = time.time()  # reported by _report_idle once it lasts
        elif tag == p.REGISTER:
            self._register(identity, p.loads(frames[2]))
        elif tag == p.HEARTBEAT:
            if manager is None:
                logger.debug("Heartbeat from unknown pool %r", identity)
        elif tag == p.DRAIN:
            if manager is None:
                logger.warning("Drain request from unknown pool %r ignored", identity)
                return
            logger.info("Pool %s (block %s) is draining: no more tasks go to it", manager.uid, manager.block_id)
            manager.draining = True
        else:
            logger.warning("Dropped a message with unknown tag %r from pool %r", tag[:64], identity)

    def _register(self, identity: bytes, info: dict[str, Any]) -> None:
        if not isinstance(info, dict):
            raise ValueError(f"a registration must be a JSON object, not {type(info).__name__}")
        if str(info.get("protocol")) != p.PROTOCOL_VERSION:
            reason = (f"pool {info.get('uid')} on {info.get('hostname')} speaks protocol {info.get('protocol')}, "
                      f"the interchange speaks {p.PROTOCOL_VERSION}")
            logger.error("%s", reason)
            self._send_worker(identity, [p.REJECTED, p.dumps({"reason": reason})])
            return
        manager = ManagerRecord(identity, info)
        if manager.block_id in self.held_blocks:
            manager.active = False
        self.managers[identity] = manager
        self.registered_blocks.add(manager.block_id)
        logger.info("Pool %s registered from %s (block %s, %s workers)", manager.uid, manager.hostname,
                    manager.block_id, manager.worker_count)
        self.pool_events.append(manager.event(PoolEventKind.REGISTERED))
        self._send_worker(identity, [p.REGISTERED, p.dumps({"ok": True})])

    def _dispatch(self) -> None:
        if not self.queue and not self.prioritized:
            return
        now = time.monotonic()
        prefetch = self.short_task_prefetch
        limits = {m.identity: m.limit(prefetch, now) for m in self.managers.values() if m.active and not m.draining}
        ready = {m.identity: m for m in self.managers.values() if len(m.tasks) < limits.get(m.identity, 0)}
        if not ready:
            return
        order = self.manager_selector.sort_managers(ready, set(ready)) if len(ready) > 1 else list(ready)
        order.reverse()  # as Parsl: the selector's last pool is filled first
        batches: dict[bytes, list[bytes]] = {}
        # every pool up to its capacity first; only then the short-task extras, so that no task
        # waits in one pool while another has a free worker
        for fill_to in ((lambda m: m.capacity), (lambda m: limits[m.identity])):
            for identity in order:
                manager = ready[identity]
                room = fill_to(manager) - len(manager.tasks)
                if room > 0 and self._take(manager, room, batches.setdefault(identity, [p.TASKS]), now):
                    break  # the queue is empty
        for identity, frames in batches.items():
            if len(frames) > 1:
                manager = ready[identity]
                if manager.idle_reported:
                    manager.idle_reported = False
                    self.pool_events.append(manager.event(PoolEventKind.BUSY))
                manager.idle_since = None
                self._send_worker(identity, frames)

    def _take(self, manager: ManagerRecord, room: int, frames: list[bytes], now: float) -> bool:
        """Move up to ``room`` queued tasks into ``frames`` for ``manager``; True once the queue is empty."""
        queue, prioritized, held = self.queue, self.prioritized, manager.tasks
        while room and (queue or prioritized):
            task_id, payload = self._next_task() if prioritized else queue.popleft()
            frames += [task_id, payload]
            held[task_id] = now
            room -= 1
        return not queue and not prioritized

    def _flush(self) -> None:
        """Send the executor this pass's pool events, then its results."""
        if self.pool_events:
            self.client.send([p.EVENTS, *map(encode, self.pool_events)])
            self.pool_events = []
        if self.pending_results:
            self.client.send([p.RESULTS, *self.pending_results])
            self.pending_results = []

    def _stop_drained(self) -> None:
        """Tell each draining pool that has no task left to stop, and forget it."""
        for identity, manager in list(self.managers.items()):
            if manager.draining and not manager.tasks:
                logger.info("Pool %s (block %s) drained; telling it to stop", manager.uid, manager.block_id)
                del self.managers[identity]
                try:
                    self.workers.send_multipart([identity, p.STOP], zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass  # it is gone already
                self.pool_events.append(manager.event(PoolEventKind.DRAINED))

    def _report_idle(self) -> None:
        """Record pools idle for ``IDLE_REPORT_AFTER`` seconds or more (as of when they became
        idle). Shorter gaps are not worth a node record: a pool running a chain of tasks would
        otherwise record two per task."""
        horizon = time.time() - IDLE_REPORT_AFTER
        for manager in self.managers.values():
            since = manager.idle_since
            if since is not None and since <= horizon and not manager.idle_reported:
                manager.idle_reported = True
                self.pool_events.append(manager.event(PoolEventKind.IDLE, since))

    def _heartbeat(self) -> None:
        for identity in list(self.managers):
            self._send_worker(identity, [p.HEARTBEAT])

    def _expire(self, now: float) -> None:
        for identity, manager in list(self.managers.items()):
            if now - manager.last_heard > self.heartbeat_threshold:
                self._lose(identity, f"no heartbeat for {now - manager.last_heard:.0f} s")

    def _lose(self, identity: bytes, why: str) -> None:
        manager = self.managers.pop(identity)
        logger.error("Pool %s on %s (block %s) lost: %s; %d tasks fail", manager.uid, manager.hostname,
                     manager.block_id, why, len(manager.tasks))
        self.pool_events.append(manager.event(PoolEventKind.LOST, reason=why))
        lost = encode(messages.TaskLost(messages.LostKind.MANAGER, manager.uid, manager.hostname, manager.block_id,
                                        reason=why))
        meta = b""
        for task_id in manager.tasks:
            self.pending_results += [manager.uid.encode(), task_id, p.LOST, meta, lost]

    def _send_worker(self, identity: bytes, frames: list[bytes]) -> bool:
        try:
            self.workers.send_multipart([identity, *frames])
            return True
        except zmq.ZMQError as e:  # the pool disconnected (ROUTER_MANDATORY)
            if identity in self.managers:
                self._lose(identity, f"unreachable ({e})")
            return False

    def _stop_pools(self) -> None:
        """Tell every pool to stop, tell the executor they stopped (a pool idle since its last
        result and not yet reported idle first gets its idle record), and close the sockets."""
        now = time.time()
        for identity, manager in self.managers.items():
            try:
                self.workers.send_multipart([identity, p.STOP], zmq.NOBLOCK)
            except zmq.ZMQError:
                pass
            if not manager.idle_reported and not manager.tasks:
                self.pool_events.append(manager.event(PoolEventKind.IDLE, manager.idle_since or now))
            self.pool_events.append(manager.event(PoolEventKind.STOPPED, now))
        time.sleep(0.05)
        client = self.client
        self._flush()
        deadline = time.monotonic() + FINAL_FLUSH_SECONDS
        while client.pending and time.monotonic() < deadline:  # the executor reads until we close
            select.select([], [client.fd], [], 0.05)
            client.flush()
        client.sock.close()
        self.workers.close(0)
        self.context.term()


def _selector(packed: str | None) -> ManagerSelector:
    """The executor's ``manager_selector``, sent serialized and base64-encoded (None: random)."""
    if not packed:
        return RandomManagerSelector()
    from parsl_repro.serialize import deserialize

    selector = deserialize(base64.b64decode(packed))
    if not isinstance(selector, ManagerSelector):
        raise TypeError(f"manager_selector must be a ManagerSelector, not {type(selector).__name__}")
    return selector


def _bind(sock: Any, address: str, port: int | None, port_range: Any) -> int:
    host = f"[{address}]" if ":" in address and not address.startswith("[") else address
    if ":" in address:
        sock.setsockopt(zmq.IPV6, 1)
    if port:
        sock.bind(f"tcp://{host}:{port}")
        return int(port)
    low, high = port_range if port_range else (49152, 65535)
    return sock.bind_to_random_port(f"tcp://{host}", min_port=low, max_port=high, max_tries=1000)


def _start_logging(settings: dict[str, Any]) -> None:
    """``<logdir>/interchange.log`` (DEBUG with ``worker_debug``, else INFO), or through the run's
    ``LogConfig`` when the executor sent one (pickled: the executor's pipe is trusted)."""
    logdir = settings.get("logdir")
    encoded = settings.get("log_config") if logdir else None
    if not encoded:
        _default_logging(settings)
        return
    import pathlib
    import pickle

    from parsl_repro.logconfigs.base import oneshot_initialize_logging
    try:
        log_config = pickle.loads(base64.b64decode(encoded))
    except Exception:  # a LogConfig class this process cannot import: keep the default
        _default_logging(settings)
        logger.exception("Cannot load the run's log configuration; logging to interchange.log instead")
        return
    oneshot_initialize_logging(log_config=log_config, log_dir=pathlib.Path(logdir), log_name="interchange")


def _default_logging(settings: dict[str, Any]) -> None:
    logdir = settings.get("logdir")
    handlers: list[logging.Handler] = [logging.FileHandler(os.path.join(logdir, "interchange.log"))] if logdir \
        else [logging.StreamHandler()]
    logging.basicConfig(level=logging.DEBUG if settings.get("debug") else logging.INFO, handlers=handlers,
                        format="%(asctime)s %(name)s:%(lineno)d [%(levelname)s] %(message)s")


def main() -> int:
    line = sys.stdin.buffer.readline()
    if not line:
        return 2
    settings = json.loads(line)
    _start_logging(settings)
    interchange = Interchange(settings)

    def stop(signum: int, frame: Any) -> None:
        logger.info("Received signal %d; stopping", signum)
        interchange.stopping = True

    signal.signal(signal.SIGTERM, stop)
    sys.stdout.write(json.dumps({"worker_port": interchange.worker_port}) + "\n")
    sys.stdout.flush()
    try:
        interchange.run(sys.stdin.fileno())
    except Exception:
        logger.exception("Interchange failed")
        return 1
    finally:
        # Stopping is under way. The executor closes our pipe and sends SIGTERM at once; if the
        # pipe wins, the signal can land while the interpreter shuts down, after it has put the
        # default action back, and would end a clean exit with status -15.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return 0


if __name__ == "__main__":
    sys.exit(main())
