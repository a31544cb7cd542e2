"""Parsl's monitoring radios, as configuration objects.

In Parsl a radio carries monitoring messages from workers to the hub. parsl_repro's executors
carry them on their own result channels, so these objects only need to load: an executor given
``remote_monitoring_radio=UDPRadio(...)`` (say) accepts it and records the choice.
"""
from __future__ import annotations

from typing import Any

from parsl_repro.utils import RepresentationMixin


class RadioConfig(RepresentationMixin):
    """Base class of radio configurations (Parsl's name)."""

    def __init__(self, **settings: Any) -> None:
        for name, value in settings.items():
            setattr(self, name, value)
