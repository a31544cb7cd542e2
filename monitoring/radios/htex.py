"""``HTEXRadio`` (Parsl's name): events travel on the HighThroughputExecutor's result stream."""
from __future__ import annotations

from parsl_repro.monitoring.radios import RadioConfig


class HTEXRadio(RadioConfig):
    def __init__(self) -> None:
        super().__init__()
