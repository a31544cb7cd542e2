"""Creating, versioning and migrating the provenance schema in a database.

The version lives in ``schema_info`` (key ``schema_version``). A database from an older version
is migrated in place, one step at a time, by ``MIGRATIONS``; one written by a newer parsl_repro
is refused with ``SchemaTooNew`` rather than risk writing rows it would misread.

Every migration step checks before it changes anything (``_add_column`` adds a column only when it
is missing; a table already in the new shape is not rebuilt), so running a step on a database that
already has its result does nothing. That happens when a store's recorded version is older than its
tables, as when a user rewrites ``schema_version`` by hand.

SQLAlchemy and the models are imported when a database is created, migrated or inspected, not
with this module: a kernel checks an SQLite store's version at start (``sqlite_stored_version``
against ``current_version()``) without loading them, and leaves the rest to its writer process.
"""
from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

from parsl_repro.errors import ParslError
from parsl_repro.version import VERSION

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

logger = logging.getLogger(__name__)


class SchemaTooNew(ParslError):
    """The store was written by a newer parsl_repro whose schema this version does not know."""

    def __init__(self, url: str, found: int) -> None:
        super().__init__(url, found)
        self.url = url
        self.found = found

    def __str__(self) -> str:
        return (f"The provenance store at {self.url} has schema version {self.found}, newer than this parsl_repro "
                f"({VERSION}) understands (version {current_version()}). Upgrade parsl_repro, or point the run at "
                f"another store (Config(provenance=URL)).")


def _columns(conn: Connection, table: str) -> set[str]:
    """The columns ``table`` has now. A fresh inspector on every call: an inspector caches what it
    reflected, so one taken before a change would not see it."""
    from sqlalchemy import inspect

    return {c["name"] for c in inspect(conn).get_columns(table)}


def _add_column(conn: Connection, table: str, column_ddl: str) -> bool:
    """``ALTER TABLE table ADD COLUMN column_ddl`` unless the column is there already.

    ``column_ddl`` is the column as SQL, name first (``"manager TEXT"``). Returns whether it was
    added. Checking first makes a migration step safe to run on a database that already has the
    step's result (a store whose recorded version was rewritten, or a step interrupted on a
    database without transactional DDL).
    """
    from sqlalchemy import text

    name = column_ddl.split(maxsplit=1)[0]
    if name in _columns(conn, table):
        logger.info("Column %s.%s already exists: not added again", table, name)
        return False
    quote = conn.dialect.identifier_preparer.quote
    conn.execute(text(f"ALTER TABLE {quote(table)} ADD COLUMN {column_ddl}"))
    return True


def _primary_key(conn: Connection, table: str) -> set[str]:
    """The columns of ``table``'s primary key now (a fresh inspector, as for ``_columns``)."""
    from sqlalchemy import inspect

    return set(inspect(conn).get_pk_constraint(table)["constrained_columns"])


def _v1_to_v2(conn: Connection) -> None:
    """Version 2: results are kept per run (primary key memo_key, run_id), and runs record the pid
    of their process (to tell killed runs from live ones)."""
    from sqlalchemy import select, text

    from parsl_repro.monitoring.models import Result

    if _primary_key(conn, "result") != {"memo_key", "run_id"}:
        # typed: times come back as datetimes
        rows = [dict(r._mapping) for r in conn.execute(select(Result.__table__))]
        conn.execute(text("DROP TABLE result"))
        Result.__table__.create(conn)
        if rows:
            conn.execute(Result.__table__.insert(), rows)
    else:
        logger.info("Table result already has its version-2 primary key: not rebuilt")
    _add_column(conn, "workflow", "pid INTEGER")


def _v2_to_v3(conn: Connection) -> None:
    """Version 3: a try records the worker pool (manager) that ran it."""
    _add_column(conn, "try", "manager TEXT")


def _v3_to_v4(conn: Connection) -> None:
    """Version 4: a run records which earlier results its memo table started with (for ``why``)."""
    _add_column(conn, "workflow", "memo_sources TEXT")


def _v4_to_v5(conn: Connection) -> None:
    """Version 5: every task records its arguments' digest (the bytes in the new ``argument`` table,
    which ``create_all`` makes), a note when they were not stored, and a bash app's command line."""
    _add_column(conn, "task", "args_digest TEXT")
    _add_column(conn, "task", "args_note TEXT")
    _add_column(conn, "task", "command TEXT")
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_task_args_digest ON task (args_digest)")


def _v5_to_v6(conn: Connection) -> None:
    """Version 6: failed tasks and tries keep their error's traceback; the dashboard's look-ups of
    a task's dependants, a file's uses, a run's files by role and its tasks by state and by app get
    indexes."""
    _add_column(conn, "task", "traceback TEXT")
    _add_column(conn, "try", "traceback TEXT")
    for ddl in VERSION_6_INDEXES:
        conn.exec_driver_sql(ddl)


def _v6_to_v7(conn: Connection) -> None:
    """Version 7: what a replay needs beyond the arguments: each app's recipe (how to rebuild its
    function), where each task's call held other tasks' futures, which join app launched it, and
    which run a replay replays."""
    _add_column(conn, "app", "recipe TEXT")
    _add_column(conn, "task", "arg_futures TEXT")
    _add_column(conn, "task", "launched_by INTEGER")
    _add_column(conn, "workflow", "replay_of TEXT")


def _v7_to_v8(conn: Connection) -> None:
    """Version 8: a block records its provider, the host its scheduler commands ran on (a
    channel's), the sha256 of the submit script it ran and the provider's message; a node
    records the executor (site) it served, since block ids repeat across executors."""
    for column in ("provider", "host", "script_sha256", "message"):
        _add_column(conn, "block", f"{column} TEXT")
    _add_column(conn, "node", "executor_label TEXT")


VERSION_6_INDEXES = (
    "CREATE INDEX IF NOT EXISTS ix_dependency_run_upstream ON dependency (run_id, depends_on, task_id)",
    "CREATE INDEX IF NOT EXISTS ix_file_use_file ON file_use (file_id)",
    "CREATE INDEX IF NOT EXISTS ix_file_use_run_role ON file_use (run_id, role)",
    "CREATE INDEX IF NOT EXISTS ix_task_run_state ON task (run_id, task_status_name)",
    "CREATE INDEX IF NOT EXISTS ix_task_run_app_state ON task (run_id, task_func_name, task_status_name)",
)
"""Indexes that version 6 adds (``models`` declares the same, for new stores)."""


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5,
                                                       5: _v5_to_v6, 6: _v6_to_v7, 7: _v7_to_v8}
"""``MIGRATIONS[n]`` upgrades a database from version n to n + 1."""


def current_version() -> int:
    """The schema version this parsl_repro writes (``models.SCHEMA_VERSION``), known without
    importing the models: the migrations lead one step at a time from version 1 to it."""
    return max(MIGRATIONS) + 1


def sqlite_stored_version(path: str) -> int | None:
    """The schema version recorded in the SQLite database at ``path``, or None for an empty (or not
    yet existing) one; read with the standard library's driver, writing nothing but the empty file.
    Raises ``sqlite3.Error`` when the file cannot be opened or is not a database."""
    db = sqlite3.connect(path, timeout=60)
    try:
        if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_info'").fetchone() is None:
            return None
        row = db.execute("SELECT value FROM schema_info WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row is not None else None
    finally:
        db.close()


def stored_version(conn: Connection) -> int | None:
    """The schema version recorded in the database, or None for an empty database."""
    from sqlalchemy import inspect, select

    from parsl_repro.monitoring.models import SchemaInfo

    if not inspect(conn).has_table(SchemaInfo.__tablename__):
        return None
    value = conn.execute(select(SchemaInfo.value).where(SchemaInfo.key == "schema_version")).scalar_one_or_none()
    return int(value) if value is not None else None


def ensure_schema(engine: Engine, url_for_messages: str) -> int:
    """Create the tables in an empty database, migrate an older one, refuse a newer one.

    Returns the version the database had before (0 for a new database).
    """
    from sqlalchemy import text

    from parsl_repro.monitoring.models import SCHEMA_VERSION, Base, SchemaInfo

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
