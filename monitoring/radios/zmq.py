"""``ZMQRadio``: monitoring messages over a zmq connection to a receiver bound, by default, to
loopback. With ``cert_dir`` (``parsl_repro.curvezmq.create_certificates``) the connection is
encrypted and only holders of the run's client key may send; without it, messages are limited
to plain data (``codec``), since the receiver cannot know who sent them. See ``zmq_router`` for
the receiving end.
"""
from __future__ import annotations

import ipaddress
import logging
import pickle
import socket
from multiprocessing.queues import Queue

import zmq

from parsl_repro import curvezmq
from parsl_repro.addresses import tcp_url
from parsl_repro.monitoring.radios import codec
from parsl_repro.radios import MonitoringRadioReceiver, MonitoringRadioSender, RadioConfig

logger = logging.getLogger(__name__)

DEFAULT_PORT_RANGE = (49152, 65535)


class ZMQRadio(RadioConfig):
    """A radio over zmq. ``hub_address`` is where the receiver binds and senders connect
    (loopback unless told otherwise); ``hub_zmq_port`` fixes the port, else a free one is taken."""

    def __init__(self, hub_address: str = "127.0.0.1", hub_zmq_port: int | None = None,
                 cert_dir: str | None = None) -> None:
        self.hub_address = hub_address
        self.hub_zmq_port = hub_zmq_port
        self.cert_dir = cert_dir

    def create_receiver(self, *, run_dir: str, resource_msgs: Queue) -> MonitoringRadioReceiver:
        from parsl_repro.monitoring.radios.zmq_router import start_zmq_receiver

        port_range = (self.hub_zmq_port, self.hub_zmq_port) if self.hub_zmq_port else DEFAULT_PORT_RANGE
        receiver = start_zmq_receiver(monitoring_messages=resource_msgs, loopback_address=_ip(self.hub_address),
                                      port_range=port_range, logdir=run_dir, worker_debug=False,
                                      cert_dir=self.cert_dir)
        self.hub_zmq_port = receiver.port
        return receiver

    def create_sender(self) -> MonitoringRadioSender:
        if self.hub_zmq_port is None:
            raise RuntimeError("ZMQRadio.create_sender() needs create_receiver() or hub_zmq_port first")
        return ZMQRadioSender(self.hub_address, self.hub_zmq_port, self.cert_dir)


def _ip(address: str) -> str:
    try:
        ipaddress.ip_address(address)
        return address
    except ValueError:
        return socket.gethostbyname(address)


class ZMQRadioSender(MonitoringRadioSender):
    """Sends each message on one zmq connection. Not thread safe (zmq sockets are not): make one
    sender per thread. A message that cannot be handed to the connection within ``timeout``
    seconds (no receiver, or one that refused this sender's keys) is logged and dropped: losing a
    monitoring message must not hang the task that sent it."""

    def __init__(self, hub_address: str, hub_zmq_port: int, cert_dir: str | None, *, timeout: float = 10) -> None:
        self._encrypted = cert_dir is not None
        self._context = curvezmq.ClientContext(cert_dir=cert_dir)
        self._hub_channel = self._context.socket(zmq.DEALER)
        self._hub_channel.set_hwm(0)
        self._hub_channel.setsockopt(zmq.SNDTIMEO, int(timeout * 1000))
        try:
            url = tcp_url(hub_address, hub_zmq_port)
        except ValueError:  # a host name: zmq resolves it
            url = f"tcp://{hub_address}:{hub_zmq_port}"
        self._hub_channel.connect(url)

    def send(self, message: object) -> None:
        """Queue ``message`` for sending; without CurveZMQ, ``TypeError`` if it is not plain data."""
        data = pickle.dumps(message) if self._encrypted else codec.encode(message)
        try:
            self._hub_channel.send(data)
        except zmq.Again:
            logger.error("Monitoring message of type %s dropped: no connection to the zmq receiver took it in time",
                         type(message).__name__)

    def close(self, linger_ms: int = 1000) -> None:
        """Close the connection, giving queued messages up to ``linger_ms`` to leave."""
        self._context.destroy(linger=linger_ms)
