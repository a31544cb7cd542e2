"""A real PostgreSQL server on loopback for tests, run by scripts/postgres.sh (no mocks).

    with PostgresServer(tmp_dir) as pg:
        engine = sqlalchemy.create_engine(pg.url)          # database provenance_test
        other = sqlalchemy.create_engine(pg.fresh_database("run_42"))

The URL holds a generated password for a throwaway cluster: keep it out of logs and messages.
"""

from __future__ import annotations

import glob
import os
import pathlib
import re
import shutil

from tests.server_script import ServerScript

_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def postgres_available() -> bool:
    """True if a server can be had: installed already, or installable with apt-get (as root)."""
    if glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        return True
    return shutil.which("apt-get") is not None and os.geteuid() == 0


class PostgresServer(ServerScript):
    """A cluster in base_dir, started by start() (or `with`) and stopped by stop()."""

    script = "postgres.sh"

    def __init__(self, base_dir: pathlib.Path, start_timeout: float = 600.0) -> None:
        super().__init__(base_dir, start_timeout)
        self.url: str = ""

    def start(self) -> str:
        """Start (or find running) the server; return the SQLAlchemy URL of database provenance_test."""
        lines = self._start_output().strip().splitlines()
        if len(lines) != 1 or not lines[0].startswith("postgresql+psycopg://"):
            raise RuntimeError("scripts/postgres.sh start printed no URL")
        self.url = lines[0]
        return self.url

    def is_running(self) -> bool:
        return self._run("status", 30).returncode == 0

    def url_for(self, database: str) -> str:
        if not self.url:
            raise RuntimeError("the server is not started")
        return self.url.rsplit("/", 1)[0] + "/" + database

    def fresh_database(self, name: str) -> str:
        """(Re)create an empty database `name` owned by parsl_repro; return its URL.

        Connects as parsl_repro (which has CREATEDB) to the `postgres` maintenance database; an
        existing database of that name is dropped first, closing its connections.
        """
        if not _DB_NAME.fullmatch(name):
            raise ValueError(f"database name must match {_DB_NAME.pattern}: {name!r}")
        import sqlalchemy  # imported here so that this module loads without the optional deps

        engine = sqlalchemy.create_engine(self.url_for("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.exec_driver_sql(f'CREATE DATABASE "{name}" OWNER parsl_repro')
        finally:
            engine.dispose()
        return self.url_for(name)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
