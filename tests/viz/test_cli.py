"""``parsl-visualize`` on bad input: each case is a one-line error naming the cause, exit status 2,
and nothing written to the store."""
from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys

import pytest

from tests.viz.conftest import Dashboard, free_port


def visualize(*args: str, cwd=None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PARSL_REPRO_PROVENANCE_URL"}
    return subprocess.run([sys.executable, "-m", "parsl_repro.viz.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("parsl-visualize: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_no_store_in_the_working_directory_says_how_to_point_at_one(tmp_path):
    message = one_line_error(visualize(cwd=tmp_path))
    assert f"No provenance store at {tmp_path}/runinfo/provenance.db" in message
    assert "run a workflow first" in message and "sqlite:///PATH" in message
    assert not (tmp_path / "runinfo").exists()  # nothing created by looking


def test_a_file_that_is_not_a_store(tmp_path):
    (tmp_path / "notes.txt").write_text("not a database\n" * 100)
    assert "file is not a database" in one_line_error(visualize(str(tmp_path / "notes.txt")))
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("CREATE TABLE other (x)").connection.commit()
    assert "is not a provenance store" in one_line_error(visualize(f"sqlite:///{empty}"))


def test_a_store_of_a_newer_schema_is_refused_naming_both_versions(tmp_path):
    newer = tmp_path / "newer.db"
    db = sqlite3.connect(newer)
    db.execute("CREATE TABLE schema_info (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("INSERT INTO schema_info VALUES ('schema_version', '99')")
    db.commit()
    message = one_line_error(visualize(str(newer)))
    assert "schema version 99" in message and "Upgrade parsl_repro" in message


def test_an_unreachable_postgresql_url_hides_its_password():
    port = free_port()  # nothing listens there
    message = one_line_error(visualize(f"postgresql+psycopg://someone:s3cret@127.0.0.1:{port}/db"))
    assert "s3cret" not in message and "someone:***@" in message and "refused" in message.lower()


def test_a_port_in_use_is_named(sqlite_store):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        message = one_line_error(visualize(sqlite_store.url, "-p", str(port)))
    assert f"port {port} on 127.0.0.1 is already in use" in message and "-p PORT" in message


@pytest.mark.parametrize("listen, warned", [("127.0.0.1", False), ("0.0.0.0", True)])
def test_listening_beyond_loopback_warns_that_everything_recorded_is_visible(sqlite_store, tmp_path, listen, warned):
    server = Dashboard(sqlite_store.url, tmp_path / "stderr.log", "--listen", listen)
    log = server.stop()
    assert ("WARNING: listening on 0.0.0.0" in log) == warned
    if warned:
        assert "sees every recorded run, argument and path" in log


def test_the_store_is_opened_read_only(sqlite_store, dashboard, page):
    """Browsing every run's pages leaves the database file as it was, and its writer is never blocked."""
    path = sqlite_store.url.removeprefix("sqlite:///")
    before = (os.path.getsize(path), os.path.getmtime(path))
    for run_id in sqlite_store.run_ids():
        page.goto(f"{dashboard.base}/run/{run_id}")
        page.wait_for_selector("#page-title")
    assert (os.path.getsize(path), os.path.getmtime(path)) == before


def test_the_read_only_engine_serves_many_request_threads_at_once(sqlite_store):
    """The web server answers each request on a thread of its own: twelve threads holding a
    connection at the same time all read (a pool for in-memory SQLite would close some of them
    under the others once more than five exist)."""
    import threading

    from sqlalchemy import text

    from parsl_repro.monitoring.engine import open_for_reading

    engine = open_for_reading(sqlite_store.url)
    together = threading.Barrier(12)
    counts, errors = [], []

    def read() -> None:
        try:
            with engine.connect() as conn:
                together.wait(timeout=30)
                counts.append(conn.execute(text("SELECT count(*) FROM status")).scalar())
                together.wait(timeout=30)
        except Exception as e:  # collected: the assertion below names it
            errors.append(e)

    threads = [threading.Thread(target=read) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    assert not errors and len(counts) == 12 and len(set(counts)) == 1 and counts[0] > 0
