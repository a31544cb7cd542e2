"""What the interchange knows about each worker pool (manager) registered with it."""
from __future__ import annotations

import time
from typing import Any


class ManagerRecord:
    """One registered worker pool (manager), as the interchange keeps it.

    ``record["block_id"]`` reads the same as ``record.block_id``, so a ``ManagerSelector``
    written against Parsl's dict-shaped records (``block_id``, ``tasks``, ``worker_count``,
    ``max_capacity``, ``active``, ``draining``, ``hostname``, ``idle_since``, ``parsl_version``,
    ``python_version``, ``packages``) works on these."""

    __slots__ = ("uid", "identity", "hostname", "block_id", "worker_count", "capacity", "tasks", "last_heard",
                 "registered", "active", "draining", "idle_since", "python_version", "version", "pid",
                 "packages", "idle_reported")

    def __init__(self, identity: bytes, info: dict[str, Any]) -> None:
        self.identity = identity
        self.uid = str(info.get("uid") or identity.decode(errors="replace"))
        self.hostname = str(info.get("hostname", "?"))
        self.block_id = str(info.get("block_id", ""))
        self.worker_count = int(info.get("worker_count", 1))
        self.capacity = int(info.get("capacity", self.worker_count))
        self.python_version = str(info.get("python_version", ""))
        self.version = str(info.get("parsl_repro_version", ""))
        self.pid = info.get("pid")
        packages = info.get("packages")
        self.packages: dict[str, str] = dict(packages) if isinstance(packages, dict) else {}
        self.tasks: set[bytes] = set()
        self.last_heard = time.monotonic()
        self.registered = time.time()
        self.active = True
        self.draining = False
        self.idle_since: float | None = time.time()
        self.idle_reported = True  # the registration's node record shows it idle

    def describe(self) -> dict[str, Any]:
        return {"manager": self.uid, "block_id": self.block_id, "hostname": self.hostname,
                "worker_count": self.worker_count, "tasks": len(self.tasks), "active": self.active,
                "draining": self.draining, "idle_duration": 0.0 if self.idle_since is None
                else max(0.0, time.time() - self.idle_since), "python_version": self.python_version,
                "parsl_version": self.version, "pid": self.pid}

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, _PARSL_KEYS.get(key, key))
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


_PARSL_KEYS = {"max_capacity": "capacity", "parsl_version": "version", "start_time": "registered"}
