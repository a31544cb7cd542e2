"""``ZMQRadio`` (Parsl's name): accepted as configuration."""
from __future__ import annotations

from parsl_repro.monitoring.radios import RadioConfig


class ZMQRadio(RadioConfig):
    def __init__(self, hub_address: str = "127.0.0.1", hub_zmq_port: int | None = None,
                 cert_dir: str | None = None) -> None:
        super().__init__(hub_address=hub_address, hub_zmq_port=hub_zmq_port, cert_dir=cert_dir)
