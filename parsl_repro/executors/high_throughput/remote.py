"""The interchange on another host: ``python -m parsl_repro.executors.high_throughput.remote``.

An executor whose provider reaches its site through a remote channel (``SSHChannel``) starts
this there, on the login node, over that channel. It reads the interchange's settings as one
JSON line on standard input, as the local interchange does, plus where to bind the executor's
port (``client_bind_address``, ``client_port`` or ``interchange_port_range``); it runs the
interchange in this process with a socket pair as its client link and a ``relay.Relay`` between
that pair and a CurveZMQ ``PAIR`` socket bound for the executor. It answers one line on
standard output, ``launch.READY_TAG`` and ``{"worker_port": ..., "client_port": ...}``, then serves until its standard
input closes (the SSH session ended: the executor stopped, or the connection died) or SIGTERM.

Only a client holding the run's client key (pushed with the certificates over the channel)
gets through the CurveZMQ handshake, so a shared login node's other users can neither submit
work nor read results.
"""
from __future__ import annotations

import json
import logging
import signal
import socket
import sys
from typing import Any

import zmq

from parsl_repro import curvezmq
from parsl_repro.executors.high_throughput import interchange as ix
from parsl_repro.executors.high_throughput.launch import READY_TAG
from parsl_repro.executors.high_throughput.relay import Relay

logger = logging.getLogger(__name__)


def main() -> int:
    line = sys.stdin.buffer.readline()
    if not line:
        return 2
    settings = json.loads(line)
    ours, theirs = socket.socketpair()
    settings["client_fd"] = theirs.detach()  # the interchange owns that end now
    ix._start_logging(settings)
    interchange = ix.Interchange(settings)
    context = curvezmq.ServerContext(settings.get("cert_dir"))
    zsock = context.socket(zmq.PAIR)
    zsock.setsockopt(zmq.LINGER, 1000)
    client_port = ix._bind(zsock, settings["client_bind_address"], settings.get("client_port"),
                           settings.get("interchange_port_range"))
    relay = Relay(ours, zsock, "interchange-relay")
    thread = relay.start()

    def stop(signum: int, frame: Any) -> None:
        logger.info("Received signal %d; stopping", signum)
        interchange.stopping = True

    signal.signal(signal.SIGTERM, stop)
    sys.stdout.write(READY_TAG + json.dumps({"worker_port": interchange.worker_port, "client_port": client_port})
                     + "\n")
    sys.stdout.flush()
    logger.info("Remote interchange serving: worker port %s, executor port %s", interchange.worker_port, client_port)
    code = 0
    try:
        interchange.run(sys.stdin.fileno())
    except Exception:
        logger.exception("Interchange failed")
        code = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        interchange.client.sock.close()  # the relay sends the executor our end of stream
        thread.join(5)
        relay.stop.set()
        thread.join(2)
        context.destroy(linger=0)
    return code


if __name__ == "__main__":
    sys.exit(main())
