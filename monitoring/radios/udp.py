"""``UDPRadio``: monitoring messages as UDP datagrams, each authenticated with an HMAC.

``create_receiver`` makes a fresh random key for the run (as long as the digest's output, as
RFC 2104 advises) and starts a helper process listening on a UDP port; senders, wherever the
pickled configuration reaches, sign every datagram with that key. The receiver checks the HMAC
before anything else and unpickles only datagrams that carry a valid one: short datagrams and
those signed with another key or digest are dropped, with an error in
``run_dir/monitoring_udp_router.log``, and the receiver carries on.

The receiver listens on the loopback interface when ``address`` is a loopback name or address,
and on every interface otherwise (remote workers must reach it; the HMAC keeps strangers out).
UDP itself promises nothing: a datagram may be lost, and one larger than 64 KiB cannot be sent.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import pickle
import secrets
import socket
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from parsl_repro.monitoring.radios.process import ReceiverProcess, start_helper_log
from parsl_repro.process_loggers import wrap_with_logs
from parsl_repro.radios import MonitoringRadioReceiver, MonitoringRadioSender, RadioConfig

logger = logging.getLogger(__name__)

MAX_DATAGRAM = 65535
POLL_S = 0.1
"""How often the receiver looks at its exit event while no datagram arrives."""


class UDPRadio(RadioConfig):
    """A radio over UDP; ``address`` is where senders reach the submit side."""

    def __init__(self, *, port: int | None = None, atexit_timeout: int = 3, address: str, debug: bool = False,
                 hmac_digest: str = "sha512") -> None:
        self.port = port
        self.atexit_timeout = atexit_timeout
        self.address = address
        self.debug = debug
        self.hmac_digest = hmac_digest
        self.hmac_key: bytes | None = None

    def create_receiver(self, *, run_dir: str, resource_msgs: Queue) -> MonitoringRadioReceiver:
        self.hmac_key = secrets.token_bytes(hashlib.new(self.hmac_digest).digest_size)
        receiver = UDPRadioReceiver(run_dir=run_dir, resource_msgs=resource_msgs, address=self.address,
                                    port=self.port, hmac_key=self.hmac_key, hmac_digest=self.hmac_digest,
                                    atexit_timeout=self.atexit_timeout, debug=self.debug)
        self.port = receiver.port
        return receiver

    def create_sender(self) -> MonitoringRadioSender:
        if self.port is None or self.hmac_key is None:
            raise RuntimeError("UDPRadio.create_sender() needs create_receiver() to be called first")
        return UDPRadioSender(self.address, self.port, self.hmac_key, self.hmac_digest)


class UDPRadioSender(MonitoringRadioSender):
    """Signs and sends each message as one datagram. Failures are logged, never raised: losing a
    monitoring message must not fail the task that sent it."""

    def __init__(self, address: str, port: int, hmac_key: bytes, hmac_digest: str, *, timeout: int = 10) -> None:
        self.address = address
        self.port = port
        self.hmac_key = hmac_key
        self.hmac_digest = hmac_digest
        self.sock_timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        self.sock.settimeout(timeout)

    def send(self, message: object) -> None:
        try:
            data = pickle.dumps(message)
            datagram = hmac.digest(self.hmac_key, data, self.hmac_digest) + data
        except Exception:
            logger.exception("Monitoring message of type %s could not be pickled; not sent", type(message).__name__)
            return
        try:
            self.sock.sendto(datagram, (self.address, self.port))
        except OSError as e:
            logger.error("Monitoring message (%d bytes) not sent to %s:%s: %s", len(datagram), self.address,
                         self.port, e)

    def close(self) -> None:
        self.sock.close()


class UDPRadioReceiver(ReceiverProcess):
    """The helper process listening for datagrams; ``port`` is the UDP port it bound."""

    def __init__(self, *, run_dir: str, resource_msgs: Queue, address: str, port: int | None, hmac_key: bytes,
                 hmac_digest: str, atexit_timeout: float, debug: bool) -> None:
        super().__init__(udp_receiver_main, name="Monitoring-UDP-Router-Process", settings={
            "run_dir": run_dir, "resource_msgs": resource_msgs, "bind_address": bind_address_for(address),
            "port": port, "hmac_key": hmac_key, "hmac_digest": hmac_digest, "atexit_timeout": atexit_timeout,
            "debug": debug})


def bind_address_for(address: str) -> str:
    """The loopback address itself when senders reach us on loopback, else every interface."""
    try:
        resolved = socket.gethostbyname(address)
    except OSError:
        return "0.0.0.0"
    return resolved if ipaddress.ip_address(resolved).is_loopback else "0.0.0.0"


class _Verifier:
    """Checks a datagram's HMAC and returns the message inside, or None (logged) if it has none."""

    def __init__(self, key: bytes, digest: str) -> None:
        self.key = key
        self.digest = digest
        self.size = hashlib.new(digest).digest_size

    def open(self, datagram: bytes, sender: Any) -> tuple[bool, Any]:
        if len(datagram) < self.size:
            logger.error("Dropped a %d-byte datagram from %s: too short to carry a %s HMAC", len(datagram), sender,
                         self.digest)
            return False, None
        mac, data = datagram[:self.size], datagram[self.size:]
        if not hmac.compare_digest(mac, hmac.digest(self.key, data, self.digest)):
            # the content is untrusted: say where it came from, never what it held
            logger.error("Dropped a datagram from %s: its HMAC does not match this run's key", sender)
            return False, None
        try:
            return True, pickle.loads(data)  # authenticated: made by a sender holding this run's key
        except Exception:
            logger.exception("Dropped an authenticated datagram from %s that does not unpickle", sender)
            return False, None


@wrap_with_logs(target=__name__)
def udp_receiver_main(*, comm_q: Queue, exit_event: Event, resource_msgs: Queue, run_dir: str, bind_address: str,
                      port: int | None, hmac_key: bytes, hmac_digest: str, atexit_timeout: float,
                      debug: bool) -> None:
    """The helper process: bind, report the port, then queue each authenticated message until
    ``exit_event``, and after it until no datagram has come for ``atexit_timeout`` seconds."""
    start_helper_log(run_dir, "monitoring_udp_router.log", debug, "parsl_repro: monitoring UDP receiver")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.bind((bind_address, port or 0))
        verifier = _Verifier(hmac_key, hmac_digest)
    except Exception as e:
        logger.exception("UDP receiver could not start on %s:%s", bind_address, port)
        sock.close()
        comm_q.put(f"could not listen on UDP {bind_address}:{port or 'any port'}: {e}")
        return
    sock.settimeout(POLL_S)
    bound = sock.getsockname()[1]
    logger.info("Listening for monitoring datagrams on %s:%s", bind_address, bound)
    comm_q.put(bound)

    def receive_one() -> bool:
        try:
            datagram, sender = sock.recvfrom(MAX_DATAGRAM)
        except TimeoutError:
            return False
        ok, message = verifier.open(datagram, sender)
        if ok:
            logger.debug("Message from %s: %r", sender, message)
            resource_msgs.put(message)
        return True

    try:
        while not exit_event.is_set():
            receive_one()
        logger.info("Exit requested; taking datagrams until none arrives for %s s", atexit_timeout)
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < atexit_timeout:
            if receive_one():
                quiet_since = time.monotonic()
    finally:
        sock.close()
        logger.info("UDP receiver finished")
