"""The provenance store (``parsl_repro.monitoring``): schema, event writer, queries, identity and
memo keys, and Parsl's monitoring configuration objects.

Installed as the ``parsl_repro.monitoring`` subpackage from the top-level ``monitoring/`` folder.
``MonitoringHub`` is imported on first use, so the writer process does not load typeguard.
"""
from typing import Any

__all__ = ["MonitoringHub"]


def __getattr__(name: str) -> Any:
    if name == "MonitoringHub":
        from parsl_repro.monitoring.monitoring import MonitoringHub
        return MonitoringHub
    raise AttributeError(f"module 'parsl_repro.monitoring' has no attribute {name!r}")
