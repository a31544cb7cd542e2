"""Times as numbers in SQL, the same on SQLite and PostgreSQL: what every view that bins time or
measures a duration in the database uses.

The store keeps times as naive UTC (``DateTime`` columns: text on SQLite). ``Epoch(column)`` is
seconds since 1970 as a float, exact to the microsecond; ``EpochMs(column)`` the same to the
millisecond but about three times cheaper on SQLite (``julianday``), for durations and histograms
where a millisecond is resolution enough. ``time_bin(seconds, start, width)`` is the index of a
time bin, ``Floor`` the integer part of a non-negative number, ``Greatest``/``Least`` a pair's
larger and smaller (evaluated once each, unlike a CASE)."""
from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import Float, Integer, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement


class Epoch(FunctionElement[float]):
    """Seconds since 1970 of a stored time, as a float, exact to the microsecond; NULL for NULL."""

    type = Float()
    inherit_cache = True
    name = "epoch"


@compiles(Epoch)
def _epoch_standard(element: Epoch, compiler: Any, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS DOUBLE PRECISION)"


@compiles(Epoch, "sqlite")
def _epoch_sqlite(element: Epoch, compiler: Any, **kw: Any) -> str:
    # SQLite's date functions keep milliseconds only (and round: 04.9996 is 05 to them), so the whole
    # seconds come from the text cut after the seconds, and the stored fraction (".123456" after
    # "YYYY-MM-DD HH:MM:SS") is added as it is; unixepoch() (SQLite 3.38) parses the whole seconds in
    # half the time strftime('%s') takes
    when = compiler.process(element.clauses, **kw)
    version = getattr(getattr(compiler.dialect, "dbapi", None), "sqlite_version_info", (0,))
    whole = f"unixepoch(substr({when}, 1, 19))" if version >= (3, 38) else f"strftime('%s', substr({when}, 1, 19))"
    return f"(CAST({whole} AS REAL) + CAST(substr({when}, 20) AS REAL))"


@compiles(Epoch, "mysql")
def _epoch_mysql(element: Epoch, compiler: Any, **kw: Any) -> str:
    return f"UNIX_TIMESTAMP({compiler.process(element.clauses, **kw)})"


class EpochMs(FunctionElement[float]):
    """``Epoch`` to the millisecond: on SQLite ``julianday``, about three times cheaper."""

    type = Float()
    inherit_cache = True
    name = "epoch_ms"


@compiles(EpochMs)
def _epoch_ms_standard(element: EpochMs, compiler: Any, **kw: Any) -> str:
    return _epoch_standard(element, compiler, **kw)  # exact elsewhere, and as cheap


@compiles(EpochMs, "sqlite")
def _epoch_ms_sqlite(element: EpochMs, compiler: Any, **kw: Any) -> str:
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


@compiles(EpochMs, "mysql")
def _epoch_ms_mysql(element: EpochMs, compiler: Any, **kw: Any) -> str:
    return _epoch_mysql(element, compiler, **kw)


class Floor(FunctionElement[int]):
    """The integer at or below a non-negative number (callers clamp below zero)."""

    type = Integer()
    inherit_cache = True
    name = "floor_int"


@compiles(Floor)
def _floor_standard(element: Floor, compiler: Any, **kw: Any) -> str:
    return f"CAST(FLOOR({compiler.process(element.clauses, **kw)}) AS INTEGER)"  # CAST alone rounds


@compiles(Floor, "sqlite")
def _floor_sqlite(element: Floor, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"  # truncates: the floor for x >= 0


class Greatest(FunctionElement[float]):
    """The larger of two numbers."""

    type = Float()
    inherit_cache = True
    name = "greatest"


class Least(FunctionElement[float]):
    """The smaller of two numbers."""

    type = Float()
    inherit_cache = True
    name = "least"


@compiles(Greatest, "sqlite")
def _greatest_sqlite(element: Greatest, compiler: Any, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


@compiles(Least, "sqlite")
def _least_sqlite(element: Least, compiler: Any, **kw: Any) -> str:
    return f"min({compiler.process(element.clauses, **kw)})"


@compiles(Greatest)
def _greatest_standard(element: Greatest, compiler: Any, **kw: Any) -> str:
    return f"GREATEST({compiler.process(element.clauses, **kw)})"


@compiles(Least)
def _least_standard(element: Least, compiler: Any, **kw: Any) -> str:
    return f"LEAST({compiler.process(element.clauses, **kw)})"


def number(value: float) -> ColumnElement[Any]:
    """A float written into the SQL, not bound: a GROUP BY expression must read the same as the
    selected one, and PostgreSQL tells two bound parameters apart even when equal."""
    return literal_column(repr(float(value)), Float)


def time_bin(seconds: ColumnElement[Any], start: float, width: float) -> ColumnElement[Any]:
    """The time bin (0, 1, ...) of ``seconds``: bins of ``width`` seconds from ``start``."""
    return Floor((seconds - number(start)) / number(width))


def naive_utc(when: datetime.datetime) -> datetime.datetime:
    """A time as the store holds it: naive, in UTC."""
    return when.astimezone(datetime.UTC).replace(tzinfo=None) if when.tzinfo else when


def from_epoch(seconds: float) -> datetime.datetime:
    """Seconds since 1970 as an aware UTC datetime."""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)
