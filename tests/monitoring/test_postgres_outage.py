"""A PostgreSQL store that goes away mid-run: events wait in the spool and are written on its return."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid

from sqlalchemy import text

from parsl_repro.monitoring.engine import make_engine

WORKFLOW = """
    import sys, time
    import parsl_repro as parsl
    from parsl_repro import python_app
    from parsl_repro.config import Config
    from parsl_repro.executors import ThreadPoolExecutor

    @python_app
    def step(i):
        import time
        time.sleep(0.02)
        return i

    with parsl.load(Config(executors=[ThreadPoolExecutor(max_threads=2)], provenance=sys.argv[1])):
        futures = []
        for i in range(300):
            futures.append(step(i))
            time.sleep(0.01)
        print(sum(f.result() for f in futures))
"""


def _wait_for_tasks(url: str, count: int) -> None:
    """Until the run has recorded ``count`` tasks: the outage must begin mid-run, not before it."""
    engine = make_engine(url, writer=False)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            try:
                with engine.connect() as conn:
                    if (conn.execute(text("SELECT count(*) FROM task")).scalar() or 0) >= count:
                        return
            except Exception:
                pass  # tables not created yet
            time.sleep(0.05)
        raise AssertionError("the workflow never started recording")
    finally:
        engine.dispose()


def test_events_survive_a_database_restart(postgres, tmp_path):
    url = postgres.fresh_database(f"outage_{uuid.uuid4().hex[:8]}")
    (tmp_path / "wf.py").write_text(textwrap.dedent(WORKFLOW))
    proc = subprocess.Popen([sys.executable, "wf.py", url], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_tasks(url, 10)
    postgres.stop()
    time.sleep(1.5)
    postgres.start()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.strip() == str(sum(range(300)))
    assert "stopped answering" in err and "is back" in err  # the user was told, both ways
    engine = make_engine(url, writer=False)
    with engine.connect() as conn:
        done = conn.execute(text("SELECT count(*) FROM task WHERE task_status_name = 'exec_done'")).scalar()
        states = conn.execute(text("SELECT count(*) FROM status")).scalar()
        outcome = conn.execute(text("SELECT outcome FROM workflow")).scalar()
    engine.dispose()
    assert (done, states, outcome) == (300, 900, "completed"), err  # err: what the writer told the user
    assert not list(tmp_path.glob("runinfo/*/provenance-spool-*"))


def test_a_spool_left_by_an_outage_is_written_later_by_the_cli(postgres, tmp_path):
    url = postgres.fresh_database(f"leftover_{uuid.uuid4().hex[:8]}")
    (tmp_path / "wf.py").write_text(textwrap.dedent(WORKFLOW).replace("range(300)", "range(100)"))
    proc = subprocess.Popen([sys.executable, "wf.py", url], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_tasks(url, 10)
    postgres.stop()
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        postgres.start()
    assert proc.returncode == 0, err
    assert "still unreachable" in err
    [spool] = tmp_path.glob("runinfo/*/provenance-spool-*.pickle")
    done = subprocess.run([sys.executable, "-m", "parsl_repro.cli", "--db", url, "spool", str(spool)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not spool.exists()
    engine = make_engine(url, writer=False)
    with engine.connect() as conn:
        done_count = conn.execute(text("SELECT count(*) FROM task WHERE task_status_name = 'exec_done'")).scalar()
        outcome = conn.execute(text("SELECT outcome FROM workflow")).scalar()
    engine.dispose()
    assert (done_count, outcome) == (100, "completed")
