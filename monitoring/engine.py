"""Database engines for the provenance store: SQLite tuned for many writers, anything else as given.

SQLAlchemy is imported only when an engine is made: a kernel that records through its writer
process finds and lays out its store (``default_url``, ``prepare_default_store``, ``sqlite_path``)
without loading it."""
from __future__ import annotations

import errno
import os
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from parsl_repro.errors import ParslError

if TYPE_CHECKING:
    from sqlalchemy import Engine


def default_url(runinfo_dir: str) -> str:
    """``sqlite:///<runinfo>/provenance.db``: the store every run uses unless told otherwise."""
    return f"sqlite:///{os.path.join(os.path.abspath(runinfo_dir), 'provenance.db')}"


def prepare_default_store(runinfo_dir: str) -> None:
    """Lay out ``<runinfo>`` for the default store, before it is opened.

    The database file is ``monitoring.db``, Parsl's name, so Parsl's tools find it and deleting
    it starts a fresh store, as in Parsl; ``provenance.db`` is a symbolic link to it. SQLite
    resolves links before naming its WAL and lock files, so both names reach one database. Two
    other layouts are kept as they are found: a real ``provenance.db`` (written by parsl_repro
    before this layout), which gets ``monitoring.db`` as a link when that name is free; and a
    ``monitoring.db`` that real Parsl wrote (no parsl_repro schema in it), which is left alone
    while ``provenance.db`` becomes a database of its own.
    """
    runinfo = os.path.abspath(runinfo_dir)
    os.makedirs(runinfo, exist_ok=True)
    ours, parsls = os.path.join(runinfo, "provenance.db"), os.path.join(runinfo, "monitoring.db")
    if os.path.islink(ours):
        return  # this layout; if monitoring.db was deleted, SQLite creates it afresh through the link
    if os.path.lexists(ours):
        _link("provenance.db", parsls)  # the older layout
        return
    if os.path.islink(parsls):
        os.unlink(parsls)  # the older layout's alias, left behind when its provenance.db was deleted
    elif os.path.exists(parsls) and not _is_parsl_repro_store(parsls):
        return  # real Parsl's database
    _link("monitoring.db", ours)


def sqlite_path(url: str) -> str | None:
    """The file a plain SQLite URL (``sqlite:///PATH``, ``sqlite+pysqlite:///PATH``) names, as
    SQLAlchemy reads it; None for any other URL, and for the SQLite forms whose reading is
    SQLAlchemy's to do (in memory, URI filenames, a query string, percent-escapes)."""
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            path = url[len(prefix):]
            if not path or path == ":memory:" or path.startswith("file:") or "?" in path or "%" in path:
                return None
            return path
    return None


def _link(target: str, link: str) -> None:
    if os.path.lexists(link):
        return
    try:
        os.symlink(target, link)
    except OSError:
        pass  # another run made it meanwhile, or the filesystem has no symbolic links


def _is_parsl_repro_store(path: str) -> bool:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_info'").fetchone() is not None
    except sqlite3.Error:
        return False


def make_engine(url: str, *, writer: bool) -> Engine:
    """An engine for ``url``.

    SQLite gets WAL mode (readers never block the writer; a killed process loses nothing that was
    committed), ``synchronous=NORMAL`` and a generous busy timeout. Writer engines start every
    transaction with ``BEGIN IMMEDIATE`` so that two runs writing one file queue up for the lock
    instead of failing when a read transaction tries to become a write.

    The directory of an SQLite file must exist: it is not created, so that a mistyped path fails
    here (``ProvenanceStore.open`` reports it as ``StoreUnavailable``) instead of starting an empty
    store somewhere unexpected. The default store's directory is made by ``prepare_default_store``.
    """
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, connect_args=_connect_timeout(parsed.get_backend_name()))
    _check_sqlite_directory(parsed.database)
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=60000")
        _enter_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


class StoreDirectoryMissing(FileNotFoundError):
    """The directory an SQLite store URL points into does not exist."""

    def __init__(self, directory: str) -> None:
        super().__init__(f"the directory {directory} does not exist (parsl_repro makes no directory for a store "
                         f"URL, so that a mistyped path is not silently a new, empty store)")
        self.directory = directory


def _check_sqlite_directory(database: str | None) -> None:
    """Raise ``StoreDirectoryMissing`` when an SQLite file's directory is not there."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return  # in memory, or an SQLite URI filename (sqlite:///file:...?uri=true), which SQLite resolves itself
    directory = os.path.dirname(os.path.abspath(database))
    if not os.path.isdir(directory):
        raise StoreDirectoryMissing(directory)


def check_sqlite_file(path: str) -> None:
    """Raise ``StoreDirectoryMissing`` when the directory of the SQLite file ``path`` is missing, and
    ``PermissionError`` when this process could not write the file (or, while there is none, create
    it in that directory): what opening it for writing would find, found without opening it."""
    _check_sqlite_directory(path)
    target = path if os.path.exists(path) else os.path.dirname(os.path.abspath(path))
    if not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, "not writable by this user", target)


def _connect_timeout(backend: str) -> dict[str, Any]:
    return {"connect_timeout": 10} if backend == "postgresql" else {}


def _enter_wal(cursor: Any, patience: float = 60.0) -> None:
    """Switch a database to WAL mode. Switching needs the file to itself and SQLite does not wait
    for that (the busy timeout does not apply), so when two runs create one store together the
    second retries until the first has switched it; once in WAL mode, nothing needs switching."""
    deadline = time.monotonic() + patience
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class StoreNotReadable(ParslError):
    """A store that cannot be read: no file there, not a database, not a provenance store, or a
    schema this version does not read. The message says which and what to do."""


def open_for_reading(url: str) -> Engine:
    """An engine that only reads the store at ``url`` (any SQLAlchemy URL), after checking that it is
    a provenance store of the schema this parsl_repro reads.

    SQLite files are opened with ``mode=ro``, so nothing (not even an empty file for a mistyped
    path) is ever written, and a reader never takes the write lock from a running workflow's
    writer. PostgreSQL sessions are ``default_transaction_read_only``. Raises ``StoreNotReadable``
    (a one-line message, passwords hidden) and ``SchemaTooNew``."""
    import sqlite3 as _sqlite3
    from urllib.parse import quote

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError
    from sqlalchemy.pool import QueuePool

    from parsl_repro.utils import redact_secrets

    shown = redact_secrets(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreNotReadable(f"{shown!r} is not a database URL (e.g. sqlite:///runinfo/provenance.db, "
                               f"or postgresql://user@host/db)") from None
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if not path or path == ":memory:":
            raise StoreNotReadable(f"{shown} names no database file")
        path = os.path.abspath(path)
        if not os.path.isfile(path):
            raise StoreNotReadable(f"No provenance store at {path}: run a workflow first (it writes "
                                   f"runinfo/provenance.db), or name a store, e.g. sqlite:///PATH or a PostgreSQL URL")
        uri = f"file:{quote(path)}?mode=ro"
        # a pool of connections that threads take turns with (a web server's request threads):
        # "sqlite://" alone would get SQLAlchemy's pool for in-memory databases, one connection per
        # thread, which closes connections other threads still use once more than five exist
        engine = create_engine("sqlite://", poolclass=QueuePool, pool_size=5, max_overflow=10,
                               creator=lambda: _sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False))
    else:
        connect_args = _connect_timeout(parsed.get_backend_name())
        if parsed.get_backend_name() == "postgresql":
            connect_args["options"] = "-c default_transaction_read_only=on"
        try:
            engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        except (ArgumentError, ImportError) as e:
            raise StoreNotReadable(f"cannot open {shown}: {e}") from None
    try:
        check_schema_readable(engine, shown)
    except StoreNotReadable:
        engine.dispose()
        raise
    except SQLAlchemyError as e:
        engine.dispose()
        cause = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise StoreNotReadable(f"cannot read {shown}: {redact_secrets(cause)}") from None
    return engine


def check_schema_readable(engine: Engine, shown: str) -> None:
    """Raise ``StoreNotReadable`` or ``SchemaTooNew`` unless the store has this parsl_repro's schema."""
    from parsl_repro.monitoring.models import SCHEMA_VERSION
    from parsl_repro.monitoring.schema import SchemaTooNew, stored_version

    with engine.connect() as conn:
        found = stored_version(conn)
    if found is None:
        raise StoreNotReadable(f"{shown} is not a provenance store (it has no parsl_repro schema): "
                               f"run a workflow that records into it first")
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(shown, found)
    if found < SCHEMA_VERSION:
        raise StoreNotReadable(f"The provenance store at {shown} has schema version {found}, older than this "
                               f"parsl_repro's ({SCHEMA_VERSION}): the next run that records into it upgrades it in "
                               f"place")
