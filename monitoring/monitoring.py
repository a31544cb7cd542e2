"""``MonitoringHub``: Parsl's monitoring configuration object, at Parsl's module path
(``parsl_repro.monitoring.monitoring``), accepted so Parsl configs load.

parsl_repro records every run whether or not a hub is configured; the hub's settings say where
and how much: ``logging_endpoint`` (a database URL) chooses the store, ``workflow_name`` and
``workflow_version`` name the run, and ``resource_monitoring_enabled`` /
``resource_monitoring_interval`` drive per-task resource sampling on executors that run tasks in
worker processes. No hub process is started: events reach the store through the kernel's event
stream and the executors' own result channels.

While a kernel records with this hub, ``dbm_proc`` (Parsl's name) is a handle on the run's
database writer process (``pid``, ``is_alive()``, ``exitcode``), or None when the run records in
this process or not at all. The kernel sets it with ``attach``.
"""
from __future__ import annotations

import logging
import warnings
from typing import Any

from parsl_repro.events import EventSink, FanOutSink
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin

logger = logging.getLogger(__name__)


class MonitoringHub(RepresentationMixin):
    @typechecked_config
    def __init__(self, hub_address: Any = None, hub_port_range: Any = None, hub_port: Any = None,
                 workflow_name: str | None = None, workflow_version: str | None = None,
                 logging_endpoint: str | None = None, monitoring_debug: bool = False,
                 resource_monitoring_enabled: bool = True, resource_monitoring_interval: float = 30) -> None:
        for name, value in (("hub_address", hub_address), ("hub_port", hub_port), ("hub_port_range", hub_port_range)):
            if value is not None:
                message = f"MonitoringHub.{name} is unused: parsl_repro carries monitoring events without a hub"
                warnings.warn(message, DeprecationWarning, stacklevel=2)
                logger.warning(message)
        if resource_monitoring_interval < 0:
            from parsl_repro.errors import ConfigurationError
            raise ConfigurationError("MonitoringHub: resource_monitoring_interval must be 0 or more seconds")
        self.hub_address = hub_address
        self.hub_port_range = hub_port_range
        self.hub_port = hub_port
        self.workflow_name = workflow_name
        self.workflow_version = workflow_version
        self.logging_endpoint = logging_endpoint
        self.monitoring_debug = monitoring_debug
        self.resource_monitoring_enabled = resource_monitoring_enabled
        self.resource_monitoring_interval = resource_monitoring_interval
        self.dbm_proc: Any = None

    def attach(self, sink: EventSink) -> None:
        """Called by the kernel that loads this hub with its event sink: point ``dbm_proc`` at the
        sink's database writer process, if it has one."""
        sinks = sink.sinks if isinstance(sink, FanOutSink) else [sink]
        self.dbm_proc = next((s.writer_process for s in sinks if hasattr(s, "writer_process")), None)
