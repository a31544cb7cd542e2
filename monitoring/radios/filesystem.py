"""``FilesystemRadio`` (Parsl's name): accepted as configuration."""
from __future__ import annotations

from parsl_repro.monitoring.radios import RadioConfig


class FilesystemRadio(RadioConfig):
    def __init__(self, *, run_dir: str) -> None:
        super().__init__(run_dir=run_dir)
