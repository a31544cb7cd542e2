"""The receiving end of the zmq radio: a helper process with a zmq socket bound to one address.

Bind to loopback unless senders on other hosts must reach it. With ``cert_dir`` the socket is a
CurveZMQ server that admits only clients holding the run's client key, and messages are pickles
(the peer is authenticated). Without it anyone who can reach the port can connect, so messages
are decoded with the restricted ``codec`` and never unpickled, and each is limited to
``MAX_UNAUTHENTICATED_BYTES``. Only ``(tag, dict)`` pairs are queued; anything else that arrives
(a malformed message, bytes from a port scanner) is logged and dropped, and the receiver carries
on.
"""
from __future__ import annotations

import ipaddress
import logging
import pickle
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

import zmq

from parsl_repro import curvezmq
from parsl_repro.addresses import tcp_url
from parsl_repro.monitoring.radios import codec
from parsl_repro.monitoring.radios.process import ReceiverProcess, start_helper_log
from parsl_repro.process_loggers import wrap_with_logs

logger = logging.getLogger(__name__)

POLL_MS = 100
"""How often the receiver looks at its exit event while no message arrives."""
MAX_UNAUTHENTICATED_BYTES = 16 * 1024 * 1024


class ZMQRadioReceiver(ReceiverProcess):
    """The helper process of the zmq radio; ``port`` is where it listens, ``close()`` or
    ``shutdown()`` stops it, or set ``exit_event`` and wait for ``process`` to end."""


def start_zmq_receiver(*, monitoring_messages: Queue, loopback_address: str, port_range: tuple[int, int],
                       logdir: str, worker_debug: bool, cert_dir: str | None) -> ZMQRadioReceiver:
    """Start a zmq receiver bound to ``loopback_address`` on a free port in ``port_range``
    (both ends included), queueing what arrives on ``monitoring_messages``; log in ``logdir``."""
    ipaddress.ip_address(loopback_address)  # an IP address, not a name: raises ValueError otherwise
    return ZMQRadioReceiver(zmq_receiver_main, name="Monitoring-ZMQ-Router-Process", settings={
        "resource_msgs": monitoring_messages, "address": loopback_address, "port_range": tuple(port_range),
        "run_dir": logdir, "debug": worker_debug, "cert_dir": cert_dir})


def _bind(sock: zmq.Socket, address: str, port_range: tuple[int, int]) -> int:
    low, high = port_range
    if low == high:
        sock.bind(tcp_url(address, low))
        return low
    return sock.bind_to_random_port(tcp_url(address), min_port=low, max_port=high + 1)


def _accept(frames: list[bytes], authenticated: bool) -> Any:
    """The message in ``frames``, or raise ``ValueError`` saying why it is not one."""
    if len(frames) != 1:
        raise ValueError(f"{len(frames)} frames, expected 1")
    message = pickle.loads(frames[0]) if authenticated else codec.decode(frames[0])
    if not (isinstance(message, tuple) and len(message) == 2):
        raise ValueError(f"a {type(message).__name__}, expected a (tag, dict) pair")
    return message


@wrap_with_logs(target=__name__)
def zmq_receiver_main(*, comm_q: Queue, exit_event: Event, resource_msgs: Queue, address: str,
                      port_range: tuple[int, int], run_dir: str, debug: bool, cert_dir: str | None) -> None:
    """The helper process: bind, report the port, then queue each message until ``exit_event``
    (and what is already waiting when it is set)."""
    start_helper_log(run_dir, "monitoring_zmq_router.log", debug, "parsl_repro: monitoring zmq receiver")
    authenticated = cert_dir is not None
    context = curvezmq.ServerContext(cert_dir)
    try:
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.set_hwm(0)
        if not authenticated:
            sock.setsockopt(zmq.MAXMSGSIZE, MAX_UNAUTHENTICATED_BYTES)
        port = _bind(sock, address, port_range)
    except Exception as e:
        logger.exception("zmq receiver could not start on %s, ports %s", address, port_range)
        context.destroy(linger=0)
        comm_q.put(f"could not listen on {address} ports {port_range[0]}-{port_range[1]}: {e}")
        return
    logger.info("Listening for monitoring messages on %s (%s)", tcp_url(address, port),
                "CurveZMQ" if authenticated else "unauthenticated: restricted decoding")
    comm_q.put(port)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    try:
        while True:
            stopping = exit_event.is_set()
            if not poller.poll(0 if stopping else POLL_MS):
                if stopping:
                    break
                continue
            frames = sock.recv_multipart()
            try:
                message = _accept(frames, authenticated)
            except Exception as e:
                logger.warning("Dropped a message that is not a monitoring message: %s: %s", type(e).__name__, e)
                continue
            logger.debug("Message: %r", message)
            resource_msgs.put(message)
    finally:
        context.destroy(linger=0)
        logger.info("zmq receiver finished")
