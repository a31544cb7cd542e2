"""Creating, versioning and migrating the provenance schema in a database.

The version lives in ``schema_info`` (key ``schema_version``). A database from an older version
is migrated in place, one step at a time, by ``MIGRATIONS``; one written by a newer parsl_repro
is refused with ``SchemaTooNew`` rather than risk writing rows it would misread.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect, select, text

from parsl_repro.errors import ParslError
from parsl_repro.monitoring.models import SCHEMA_VERSION, Base, SchemaInfo
from parsl_repro.version import VERSION

logger = logging.getLogger(__name__)


class SchemaTooNew(ParslError):
    """The store was written by a newer parsl_repro whose schema this version does not know."""

    def __init__(self, url: str, found: int) -> None:
        super().__init__(url, found)
        self.url = url
        self.found = found

    def __str__(self) -> str:
        return (f"The provenance store at {self.url} has schema version {self.found}, newer than this parsl_repro "
                f"({VERSION}) understands (version {SCHEMA_VERSION}). Upgrade parsl_repro, or point the run at "
                f"another store (Config(provenance=URL)).")


def _v1_to_v2(conn: Connection) -> None:
    """Version 2: results are kept per run (primary key memo_key, run_id), and runs record the pid
    of their process (to tell killed runs from live ones)."""
    from parsl_repro.monitoring.models import Result

    rows = [dict(r._mapping) for r in conn.execute(select(Result.__table__))]  # typed: times come back as datetimes
    conn.execute(text("DROP TABLE result"))
    Result.__table__.create(conn)
    if rows:
        conn.execute(Result.__table__.insert(), rows)
    conn.execute(text("ALTER TABLE workflow ADD COLUMN pid INTEGER"))


def _v2_to_v3(conn: Connection) -> None:
    """Version 3: a try records the worker pool (manager) that ran it."""
    conn.execute(text('ALTER TABLE "try" ADD COLUMN manager TEXT'))


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3}
"""``MIGRATIONS[n]`` upgrades a database from version n to n + 1."""


def stored_version(conn: Connection) -> int | None:
    """The schema version recorded in the database, or None for an empty database."""
    if not inspect(conn).has_table(SchemaInfo.__tablename__):
        return None
    value = conn.execute(select(SchemaInfo.value).where(SchemaInfo.key == "schema_version")).scalar_one_or_none()
    return int(value) if value is not None else None


def ensure_schema(engine: Engine, url_for_messages: str) -> int:
    """Create the tables in an empty database, migrate an older one, refuse a newer one.

    Returns the version the database had before (0 for a new database).
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # runs starting together must not race to create the tables (SQLite's BEGIN IMMEDIATE
            # already serializes them)
            conn.execute(text("SELECT pg_advisory_xact_lock(7305731)"))
        found = stored_version(conn)
        if found is not None and found > SCHEMA_VERSION:
            raise SchemaTooNew(url_for_messages, found)
        Base.metadata.create_all(conn)  # new tables; existing ones are left as they are
        version = found or 0
        while 0 < version < SCHEMA_VERSION:
            logger.info("Migrating provenance store %s from schema %s to %s", url_for_messages, version, version + 1)
            MIGRATIONS[version](conn)
            version += 1
        if found != SCHEMA_VERSION:
            conn.execute(SchemaInfo.__table__.delete().where(SchemaInfo.key == "schema_version"))
            conn.execute(SchemaInfo.__table__.insert(), [{"key": "schema_version", "value": str(SCHEMA_VERSION)}])
        if found is None:
            conn.execute(SchemaInfo.__table__.insert(), [{"key": "created_by", "value": f"parsl_repro {VERSION}"}])
        return found or 0
