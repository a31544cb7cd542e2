"""``UDPRadio`` (Parsl's name): accepted; parsl_repro never sends monitoring data over UDP."""
from __future__ import annotations

from parsl_repro.monitoring.radios import RadioConfig


class UDPRadio(RadioConfig):
    def __init__(self, *, port: int | None = None, atexit_timeout: int = 3, address: str, debug: bool = False,
                 hmac_digest: str = "sha512") -> None:
        super().__init__(port=port, atexit_timeout=atexit_timeout, address=address, debug=debug,
                         hmac_digest=hmac_digest)
