"""Parsl's module path for the radio base class."""
from parsl_repro.monitoring.radios import RadioConfig

__all__ = ["RadioConfig"]
