"""What the view modules share: row conversion, UTC times, bounded lists and run lookup."""
from __future__ import annotations

import datetime
import socket
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.queries import RunNotFound
from parsl_repro.utils import process_alive


def aware(value: Any) -> Any:
    """A stored naive datetime (UTC by the store's convention) as an aware one; anything else as is."""
    if isinstance(value, datetime.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value


def row_dict(row: Any) -> dict[str, Any]:
    return {key: aware(value) for key, value in row._mapping.items()}


def rows(result: Any) -> list[dict[str, Any]]:
    return [row_dict(row) for row in result]


def seconds(start: Any, end: Any) -> float | None:
    """Seconds from ``start`` to ``end`` (datetimes), or None when either is missing."""
    if start is None or end is None:
        return None
    return (aware(end) - aware(start)).total_seconds()


@dataclass
class Page:
    """A bounded list: ``items`` are the first ``limit`` of ``total``."""

    items: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    limit: int = 0
    offset: int = 0
    """How many came before ``items`` (a later page of the list)."""

    @property
    def more(self) -> int:
        """How many come after ``items``."""
        return max(0, self.total - self.offset - len(self.items))


LIVE = "running"


def display_outcome(outcome: str | None, host: str | None, pid: int | None, time_completed: Any) -> tuple[str, bool]:
    """How a run ended, for a person, and whether it is live (its process still running here).

    A run recorded as running whose process is gone on this host was killed before it could record
    its end (the next run on that host marks it so too); a running run on another host is shown as
    running, not live, since this process cannot see it."""
    if outcome and outcome != LIVE:
        return outcome, False
    if time_completed is not None:
        return outcome or "completed", False
    if host and host == socket.gethostname() and pid:
        if process_alive(pid):
            return LIVE, True
        return "killed", False
    return LIVE, False


def require_run(conn: Connection, run_id: str) -> Any:
    """The run's row, or ``RunNotFound`` naming it."""
    row = conn.execute(select(m.Workflow.__table__).where(m.Workflow.run_id == run_id)).first()
    if row is None:
        raise RunNotFound(f"There is no run {run_id!r} in this store")
    return row
