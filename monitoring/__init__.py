"""The provenance store (``parsl_repro.monitoring``): schema, event writer, queries, identity and
memo keys, and Parsl's monitoring configuration objects.

Installed as the ``parsl_repro.monitoring`` subpackage from the top-level ``monitoring/`` folder.
"""
from parsl_repro.monitoring.hub import MonitoringHub

__all__ = ["MonitoringHub"]
