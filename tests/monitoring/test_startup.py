"""Starting a recorded run waits for nothing that only the record needs: the environment capture
(packages, git, script digest), the writer process and the schema are the writer's business, and
load() and a first task on threads complete while they are held. The store is still checked at
start: one the run cannot record in is refused before anything runs."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from sqlalchemy import text

import parsl_repro
from parsl_repro import python_app
from parsl_repro.config import Config
from parsl_repro.dataflow.dflow import DataFlowKernelLoader
from parsl_repro.monitoring import environment, schema
from parsl_repro.monitoring.models import SCHEMA_VERSION
from parsl_repro.monitoring.store import StoreUnavailable
from tests.monitoring.conftest import store_engine


@python_app
def double(x):
    return 2 * x


@python_app(cache=True)
def cached_double(x):
    return 2 * x


def _held_until(gate: Path, program: str) -> str:
    """A shell script that waits until the file ``gate`` exists, then runs ``program`` with its arguments."""
    return f"#!/bin/sh\nwhile [ ! -e '{gate}' ]; do sleep 0.02; done\nexec '{program}' \"$@\"\n"


def _run_row(tmp_path, run_id: str) -> dict:
    engine = store_engine(tmp_path / "runinfo")
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT * FROM workflow WHERE run_id = :run"), {"run": run_id}).one()
            states = dict(conn.execute(text("SELECT task_id, task_status_name FROM task WHERE run_id = :run"),
                                       {"run": run_id}).all())
    finally:
        engine.dispose()
    return dict(row._mapping, task_states=states)


def test_load_and_a_first_task_do_not_wait_for_the_environment_capture(tmp_path, monkeypatch, no_leaks, backend):
    """The run's own process reads only what the run may change (argv, the working directory, the
    script's path, sys.path); the writer process captures the rest. Git is held until the first task
    has its result, and the run row still gets the whole environment once it is released."""
    repo = tmp_path / "repo"
    repo.mkdir()
    script = repo / "wf.py"
    script.write_text("print('a workflow')\n")
    for variable, value in (("GIT_CONFIG_GLOBAL", os.devnull), ("GIT_CONFIG_NOSYSTEM", "1"),
                            ("GIT_CEILING_DIRECTORIES", str(tmp_path))):
        monkeypatch.setenv(variable, value)
    git = [shutil.which("git"), "-c", "user.email=t@example.org", "-c", "user.name=t", "-C", str(repo)]
    for args in (["init", "-q"], ["add", "wf.py"], ["commit", "-qm", "first"]):
        subprocess.run(git + args, check=True, capture_output=True)
    head = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    gate = tmp_path / "gate"
    held_git = tmp_path / "bin" / "git"
    held_git.parent.mkdir()
    held_git.write_text(_held_until(gate, shutil.which("git")))
    held_git.chmod(0o755)
    monkeypatch.setenv("PATH", f"{held_git.parent}{os.pathsep}{os.environ['PATH']}")
    real_packages = environment.installed_packages(tuple(sys.path))
    captured_here = []
    monkeypatch.setattr(environment, "installed_packages", lambda path=None: captured_here.append(path) or ())
    monkeypatch.setattr(environment, "script_of_main", lambda: str(script))
    monkeypatch.setattr(sys, "argv", [str(script), "--token", "tok-123"])
    monkeypatch.chdir(tmp_path)
    kernel = parsl_repro.load(Config(run_dir=str(tmp_path / "runinfo")))
    try:
        assert double(21).result(timeout=30) == 42  # while git cannot run
    finally:
        gate.touch()
        kernel.cleanup()
    assert captured_here == [], "the run's own process captured its environment"
    row = _run_row(tmp_path, kernel.run_id)
    assert (row["script_path"], row["script_sha256"]) == (str(script), hashlib.sha256(script.read_bytes()).hexdigest())
    assert row["git_commit"] == head and row["git_dirty"] is not None and not row["git_dirty"]
    assert row["packages_digest"] == environment.packages_digest(real_packages)
    assert json.loads(row["argv"]) == [str(script), "--token", "***"]
    assert row["cwd"] == str(tmp_path) and row["host"] and row["user"] and row["python_version"]
    assert row["outcome"] == "completed" and row["task_states"] == {0: "exec_done"}


@pytest.mark.sqlite_only
def test_load_and_a_first_task_do_not_wait_for_the_writer_process_or_the_schema(tmp_path, monkeypatch, no_leaks,
                                                                                backend):
    """The writer process is held before its interpreter starts: the first result still comes, the
    fresh store has no schema yet, and once the writer runs the whole run is recorded."""
    gate = tmp_path / "gate"
    held_python = tmp_path / "held-python"
    held_python.write_text(_held_until(gate, sys.executable))
    held_python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(held_python))  # what the writer process is started with
    monkeypatch.chdir(tmp_path)
    kernel = parsl_repro.load(Config(run_dir=str(tmp_path / "runinfo")))
    try:
        assert double(21).result(timeout=30) == 42
        db = sqlite3.connect(tmp_path / "runinfo" / "provenance.db")
        try:
            assert db.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,), "the schema was made"
        finally:
            db.close()
    finally:
        gate.touch()
        kernel.cleanup()
    row = _run_row(tmp_path, kernel.run_id)
    assert row["outcome"] == "completed" and row["task_states"] == {0: "exec_done"} and row["packages_digest"]


def test_reading_a_fresh_store_at_start_makes_its_schema_first(tmp_path, monkeypatch, no_leaks, backend):
    """``reuse_from_store`` reads the store while the kernel starts: the kernel then opens it itself
    and makes its schema, whether or not the writer process has yet."""
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        with parsl_repro.load(Config(run_dir=str(tmp_path / "runinfo"), reuse_from_store=True)) as kernel:
            assert cached_double(4).result(timeout=30) == 8
    assert _run_row(tmp_path, kernel.run_id)["task_states"] == {0: "memo_done"}


@pytest.mark.sqlite_only
def test_a_store_file_that_is_no_database_is_refused_before_anything_starts(tmp_path, monkeypatch, no_leaks,
                                                                             backend):
    junk = tmp_path / "junk.db"
    content = b"this is not an SQLite database\n" * 100
    junk.write_bytes(content)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreUnavailable, match="junk.db"):
        parsl_repro.load(Config(run_dir=str(tmp_path / "runinfo"), provenance=f"sqlite:///{junk}"))
    assert DataFlowKernelLoader._dfk is None
    writers = [p for p in psutil.Process().children() if "parsl_repro.monitoring.shipping" in p.cmdline()]
    assert writers == [], "a writer process was started"
    assert junk.read_bytes() == content


def test_the_schema_version_is_known_without_the_models():
    assert schema.current_version() == SCHEMA_VERSION
