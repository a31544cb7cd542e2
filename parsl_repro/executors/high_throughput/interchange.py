"""The interchange: the broker between one HighThroughputExecutor and its worker pools.

It runs as its own process (``python -m parsl_repro.executors.high_throughput.interchange``),
started by the executor, which writes its settings as one JSON line on the interchange's
standard input and keeps that pipe open: when the pipe closes, the executor is gone and the
interchange stops its pools and exits. The interchange answers with one JSON line on standard
output naming the ports it bound.

Two ROUTER sockets, both CurveZMQ-authenticated unless ``encrypted`` is off:
  * the client socket (bound to the loopback address) where the executor sends tasks and
    commands and receives results;
  * the worker socket (bound to ``address``, loopback by default) where pools register, pull
    tasks up to their capacity (workers + prefetch), return results and send heartbeats.

Tasks wait in one queue and go to pools with free capacity, a batch per pool per pass. A pool
silent for ``heartbeat_threshold`` is lost: its outstanding tasks come back to the executor as
``ManagerLost`` failures (the kernel retries them per ``retries``). The interchange never looks
inside a task or a result; it only moves frames.
"""
from __future__ import annotations

import json
import logging
import os
import random
import sys
import time
from collections import deque
from typing import Any

import zmq

from parsl_repro import curvezmq
from parsl_repro.executors.high_throughput import protocol as p

logger = logging.getLogger("parsl_repro.executors.high_throughput.interchange")


class ManagerRecord:
    __slots__ = ("uid", "identity", "hostname", "block_id", "worker_count", "capacity", "tasks", "last_heard",
                 "registered", "active", "draining", "idle_since", "python_version", "version", "pid")

    def __init__(self, identity: bytes, info: dict[str, Any]) -> None:
        self.identity = identity
        self.uid = str(info.get("uid") or identity.decode(errors="replace"))
        self.hostname = str(info.get("hostname", "?"))
        self.block_id = str(info.get("block_id", ""))
        self.worker_count = int(info.get("worker_count", 1))
        self.capacity = int(info.get("capacity", self.worker_count))
        self.python_version = str(info.get("python_version", ""))
        self.version = str(info.get("parsl_repro_version", ""))
        self.pid = info.get("pid")
        self.tasks: set[bytes] = set()
        self.last_heard = time.monotonic()
        self.registered = time.time()
        self.active = True
        self.draining = False
        self.idle_since: float | None = time.time()

    def describe(self) -> dict[str, Any]:
        return {"manager": self.uid, "block_id": self.block_id, "hostname": self.hostname,
                "worker_count": self.worker_count, "tasks": len(self.tasks), "active": self.active,
                "draining": self.draining, "idle_duration": 0.0 if self.idle_since is None
                else max(0.0, time.time() - self.idle_since), "python_version": self.python_version,
                "parsl_version": self.version, "pid": self.pid}


class Interchange:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.heartbeat_period = float(settings.get("heartbeat_period", 30))
        self.heartbeat_threshold = float(settings.get("heartbeat_threshold", 120))
        self.context = curvezmq.ServerContext(settings.get("cert_dir"))
        self.client = self.context.socket(zmq.ROUTER)
        self.client.setsockopt(zmq.LINGER, 0)
        self.workers = self.context.socket(zmq.ROUTER)
        self.workers.setsockopt(zmq.LINGER, 0)
        self.workers.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.client_port = _bind(self.client, settings.get("loopback_address", "127.0.0.1"), None,
                                 settings.get("interchange_port_range"))
        self.worker_port = _bind(self.workers, settings.get("worker_bind_address", "127.0.0.1"),
                                 settings.get("worker_port"), settings.get("worker_port_range"))
        self.client_identity: bytes | None = None
        self.queue: deque[tuple[bytes, bytes]] = deque()
        self.managers: dict[bytes, ManagerRecord] = {}
        self.held_blocks: set[str] = set()
        self.registered_blocks: set[str] = set()  # every block whose pools ever registered
        self.pending_results: list[bytes] = []
        self.stopping = False

    # --- main loop --------------------------------------------------------------------------------
    def run(self, control: int) -> None:
        """Serve until told to stop, or until ``control`` (the executor's pipe) closes."""
        poller = zmq.Poller()
        poller.register(self.client, zmq.POLLIN)
        poller.register(self.workers, zmq.POLLIN)
        poller.register(control, zmq.POLLIN)
        next_heartbeat = time.monotonic() + self.heartbeat_period
        while not self.stopping:
            events = dict(poller.poll(min(self.heartbeat_period, 1.0) * 1000))
            if control in events:
                if not os.read(control, 4096):
                    logger.info("The executor's pipe closed; stopping")
                    break
            if self.client in events:
                self._from_client()
            if self.workers in events:
                self._from_workers()
            self._dispatch()
            self._flush_results()
            now = time.monotonic()
            if now >= next_heartbeat:
                next_heartbeat = now + self.heartbeat_period
                self._heartbeat()
            self._expire(now)
        self._stop_pools()

    def _from_client(self) -> None:
        while True:
            try:
                frames = self.client.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            identity, tag = frames[0], frames[1]
            self.client_identity = identity
            if tag == p.TASKS:
                queue = self.queue
                for i in range(2, len(frames) - 1, 2):
                    queue.append((frames[i], frames[i + 1]))
            elif tag == p.COMMAND:
                reply = self._command(p.loads(frames[2]))
                self.client.send_multipart([identity, p.COMMAND, p.dumps(reply)])
            elif tag == p.STOP:
                self.stopping = True
            elif tag == p.HELLO:
                logger.info("Executor connected")

    def _command(self, command: dict[str, Any]) -> Any:
        name = command.get("name")
        if name == "connected_managers":
            return [m.describe() for m in self.managers.values()]
        if name == "outstanding":
            return len(self.queue) + sum(len(m.tasks) for m in self.managers.values())
        if name == "registered_blocks":
            return sorted(self.registered_blocks)
        if name == "worker_count":
            return sum(m.worker_count for m in self.managers.values() if m.active)
        if name == "hold_block":
            block = str(command["block_id"])
            self.held_blocks.add(block)
            for m in self.managers.values():
                if m.block_id == block:
                    m.active = False
            return True
        if name == "hold_manager":
            for m in self.managers.values():
                if m.uid == command["manager"]:
                    m.active = False
            return True
        if name == "ping":
            return "pong"
        return {"error": f"unknown command {name!r}"}

    def _from_workers(self) -> None:
        while True:
            try:
                frames = self.workers.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            identity, tag = frames[0], frames[1]
            manager = self.managers.get(identity)
            if manager is not None:
                manager.last_heard = time.monotonic()
            if tag == p.RESULTS:
                if manager is None:
                    logger.warning("Results from an unregistered pool %r dropped", identity)
                    continue
                uid = manager.uid.encode()
                pending = self.pending_results
                for i in range(2, len(frames) - 3, 4):
                    manager.tasks.discard(frames[i])
                    pending += [uid, frames[i], frames[i + 1], frames[i + 2], frames[i + 3]]
                if not manager.tasks:
                    manager.idle_since = time.time()
            elif tag == p.REGISTER:
                self._register(identity, p.loads(frames[2]))
            elif tag == p.HEARTBEAT:
                if manager is None:
                    logger.debug("Heartbeat from unknown pool %r", identity)

    def _register(self, identity: bytes, info: dict[str, Any]) -> None:
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
        self._event(dict(manager.describe(), event="registered", cpu_count=info.get("cpu_count", 0),
                         total_memory=info.get("total_memory", 0)))
        self._send_worker(identity, [p.REGISTERED, p.dumps({"ok": True})])

    def _dispatch(self) -> None:
        if not self.queue:
            return
        ready = [m for m in self.managers.values() if m.active and len(m.tasks) < m.capacity]
        random.shuffle(ready)
        queue = self.queue
        for manager in ready:
            room = manager.capacity - len(manager.tasks)
            frames = [p.TASKS]
            while room and queue:
                task_id, payload = queue.popleft()
                frames += [task_id, payload]
                manager.tasks.add(task_id)
                room -= 1
            if len(frames) > 1:
                manager.idle_since = None
                if not self._send_worker(manager.identity, frames):
                    continue
            if not queue:
                return

    def _flush_results(self) -> None:
        if self.pending_results and self.client_identity is not None:
            self.client.send_multipart([self.client_identity, p.RESULTS, *self.pending_results])
            self.pending_results = []

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
        lost = p.dumps({"kind": "manager", "manager": manager.uid, "hostname": manager.hostname,
                        "block_id": manager.block_id, "reason": why})
        meta = b""
        for task_id in manager.tasks:
            self.pending_results += [manager.uid.encode(), task_id, p.LOST, meta, lost]
        self._event(dict(manager.describe(), event="lost", reason=why))

    def _send_worker(self, identity: bytes, frames: list[bytes]) -> bool:
        try:
            self.workers.send_multipart([identity, *frames])
            return True
        except zmq.ZMQError as e:  # the pool disconnected (ROUTER_MANDATORY)
            if identity in self.managers:
                self._lose(identity, f"unreachable ({e})")
            return False

    def _event(self, event: dict[str, Any]) -> None:
        if self.client_identity is not None:
            self.client.send_multipart([self.client_identity, p.EVENTS, p.dumps(event)])

    def _stop_pools(self) -> None:
        for identity in list(self.managers):
            try:
                self.workers.send_multipart([identity, p.STOP], zmq.NOBLOCK)
            except zmq.ZMQError:
                pass
        time.sleep(0.05)
        self.client.close(0)
        self.workers.close(0)
        self.context.term()


def _bind(sock: Any, address: str, port: int | None, port_range: Any) -> int:
    host = f"[{address}]" if ":" in address and not address.startswith("[") else address
    if ":" in address:
        sock.setsockopt(zmq.IPV6, 1)
    if port:
        sock.bind(f"tcp://{host}:{port}")
        return int(port)
    low, high = port_range if port_range else (49152, 65535)
    return sock.bind_to_random_port(f"tcp://{host}", min_port=low, max_port=high, max_tries=1000)


def main() -> int:
    line = sys.stdin.buffer.readline()
    if not line:
        return 2
    settings = json.loads(line)
    logdir = settings.get("logdir")
    handlers: list[logging.Handler] = [logging.FileHandler(os.path.join(logdir, "interchange.log"))] if logdir \
        else [logging.StreamHandler()]
    logging.basicConfig(level=logging.DEBUG if settings.get("debug") else logging.INFO, handlers=handlers,
                        format="%(asctime)s %(name)s:%(lineno)d [%(levelname)s] %(message)s")
    interchange = Interchange(settings)
    sys.stdout.write(json.dumps({"client_port": interchange.client_port,
                                 "worker_port": interchange.worker_port}) + "\n")
    sys.stdout.flush()
    try:
        interchange.run(sys.stdin.fileno())
    except Exception:
        logger.exception("Interchange failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
