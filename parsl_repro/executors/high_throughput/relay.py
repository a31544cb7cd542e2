"""A byte relay between a local stream socket and a CurveZMQ ``PAIR`` socket over TCP.

The executor and its interchange speak ``protocol.FrameStream`` over a socket pair. When the
interchange runs on another host (a cluster's login node, reached through an SSH channel), a
relay on each side carries that same byte stream over TCP, authenticated and encrypted with
CurveZMQ (the run's keys), so neither end changes::

    executor --FrameStream-- [socket pair] -- Relay ==zmq PAIR, CurveZMQ, TCP== Relay -- [socket pair]
                                                                                  --FrameStream-- interchange

A message on the zmq side is one chunk of the stream, tagged ``D`` (data) or ``E`` (the sender's
end closed its writing side: the peer's stream sees end of file). TCP and zmq keep the chunks in
order. A relay stops when told to, or once both directions have ended.
"""
from __future__ import annotations

import logging
import socket
import threading

import zmq

logger = logging.getLogger(__name__)

READ_SIZE = 1 << 20
DATA, END = b"D", b"E"


class Relay:
    """Moves bytes both ways between ``sock`` (a blocking stream socket) and ``zsock`` (a
    connected or bound zmq ``PAIR`` socket). ``run`` serves until ``stop`` is set or both
    directions have ended; it owns both sockets and closes them when it returns."""

    def __init__(self, sock: socket.socket, zsock: zmq.Socket, name: str) -> None:
        sock.setblocking(True)
        zsock.setsockopt(zmq.SNDHWM, 0)  # never drop: a task or result must not vanish
        zsock.setsockopt(zmq.RCVHWM, 0)
        self.sock = sock
        self.zsock = zsock
        self.name = name
        self.stop = threading.Event()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        thread.start()
        return thread

    def run(self) -> None:
        poller = zmq.Poller()
        fd = self.sock.fileno()
        poller.register(fd, zmq.POLLIN)
        poller.register(self.zsock, zmq.POLLIN)
        local_open = remote_open = True
        try:
            while not self.stop.is_set() and (local_open or remote_open):
                events = dict(poller.poll(250))
                if local_open and fd in events:
                    try:
                        data = self.sock.recv(READ_SIZE)
                    except OSError:
                        data = b""
                    if data:
                        self.zsock.send_multipart([DATA, data], copy=False)
                    else:
                        self.zsock.send_multipart([END])
                        poller.unregister(fd)
                        local_open = False
                if remote_open and self.zsock in events:
                    kind, *payload = self.zsock.recv_multipart(copy=False)
                    if kind.bytes == DATA:
                        try:
                            self.sock.sendall(payload[0].buffer)
                        except OSError:  # our side is gone; keep draining so the peer is not stuck
                            pass
                    else:
                        try:
                            self.sock.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
                        remote_open = False
        except Exception:
            logger.exception("Relay %s failed", self.name)
        finally:
            try:
                self.sock.close()
            finally:
                self.zsock.close(linger=1000)
