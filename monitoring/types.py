"""Type names for monitoring messages (Parsl's): a message is a dict, tagged with its
``MessageType`` when it travels on a radio."""
from __future__ import annotations

from typing import Any, TypeAlias

from parsl_repro.monitoring.message_type import MessageType

MonitoringMessage: TypeAlias = dict[str, Any]
TaggedMonitoringMessage: TypeAlias = tuple[MessageType, MonitoringMessage]
