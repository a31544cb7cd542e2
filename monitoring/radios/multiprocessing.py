"""``MultiprocessingQueueRadio`` (Parsl's name): accepted as configuration."""
from __future__ import annotations

from parsl_repro.monitoring.radios import RadioConfig


class MultiprocessingQueueRadio(RadioConfig):
    def __init__(self) -> None:
        super().__init__()
