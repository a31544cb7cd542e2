"""Helpers for provenance tests: run workflow scripts as a user would, and read the store.

Every test of the store, memo and CLI modules runs twice: against SQLite (the default store
under runinfo/) and against a real PostgreSQL server on loopback (scripts/postgres.sh), each
PostgreSQL test in a fresh database. The store is chosen through PARSL_REPRO_PROVENANCE_URL, which subprocesses inherit.
Tests about SQLite files themselves are marked ``sqlite_only``.
"""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from parsl_repro.monitoring.engine import default_url, make_engine

_databases = itertools.count()

ONE_TASK = """
    import parsl_repro as parsl
    from parsl_repro import python_app

    @python_app
    def one():
        return 1

    with parsl.load():
        one().result()
"""
"""A workflow script of one task, for tests about the run record rather than the tasks."""


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: the test is about the SQLite store file itself")


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        backends = ["sqlite"] if metafunc.definition.get_closest_marker("sqlite_only") else ["sqlite", "postgresql"]
        metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    from tests.pg_server import PostgresServer

    server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def backend(request, monkeypatch):
    """'sqlite' or 'postgresql'; for PostgreSQL, runs record into a fresh database."""
    monkeypatch.delenv("PARSL_REPRO_PROVENANCE_URL", raising=False)
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres")
        monkeypatch.setenv("PARSL_REPRO_PROVENANCE_URL", server.fresh_database(f"t{next(_databases)}"))
    return request.param


def store_engine(runinfo: Path):
    """The store that runs under ``runinfo`` record into, as the current backend chooses."""
    url = os.environ.get("PARSL_REPRO_PROVENANCE_URL") or default_url(str(runinfo))
    return make_engine(url, writer=False)


class Workspace:
    """A directory holding a workflow script, its runinfo/ and its store."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, source: str) -> Path:
        path = self.root / name
        path.write_text(textwrap.dedent(source))
        return path

    def run(self, script: str = "wf.py", *args: str, check: bool = True, timeout: float = 120) -> str:
        done = subprocess.run([sys.executable, script, *args], cwd=self.root, capture_output=True, text=True,
                              timeout=timeout)
        if check:
            assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def cli(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "parsl_repro.cli", *args], cwd=self.root, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def calls(self, name: str = "calls.log") -> list[str]:
        path = self.root / name
        return path.read_text().split() if path.exists() else []

    @property
    def engine(self):
        return store_engine(self.root / "runinfo")


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace(tmp_path)


@pytest.fixture(scope="session")
def recorded(tmp_path_factory):
    """Real runs to export (tests/monitoring/export_runs.py), recorded once into an SQLite store:
    ``(root, engine, {"main", "killed", "resumed"} -> run id)``."""
    from parsl_repro.monitoring.engine import open_for_reading
    from tests.monitoring.export_runs import record_runs

    root = tmp_path_factory.mktemp("export")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("PARSL_REPRO_PROVENANCE_URL", raising=False)
        runs = record_runs(root)
    engine = open_for_reading(default_url(str(root / "runinfo")))
    yield root, engine, runs
    engine.dispose()
