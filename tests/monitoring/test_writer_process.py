"""The database writer process: visible as ``MonitoringHub.dbm_proc``, and when it dies the run
goes on, the user is told, and the rest of the run is still recorded."""
from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
from sqlalchemy import inspect, text

from parsl_repro import python_app
from parsl_repro.monitoring import MonitoringHub
from tests.monitoring.conftest import store_engine

pytestmark = pytest.mark.usefixtures("backend")


@python_app
def double(x):
    return 2 * x


def _wait_for(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _task_states(tmp_path, run_id: str) -> dict[int, str]:
    engine = store_engine(tmp_path / "runinfo")
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("task"):
                return {}  # a fresh store: the writer process has not made its schema yet
            rows = conn.execute(text("SELECT task_id, task_status_name FROM task WHERE run_id = :run"),
                                {"run": run_id})
            return dict(rows.all())
    finally:
        engine.dispose()


def test_dbm_proc_is_the_runs_writer_process_and_none_without_one(load):
    kernel = load(monitoring=MonitoringHub(resource_monitoring_interval=0))
    writer = kernel.monitoring.dbm_proc
    assert writer.is_alive() and writer.exitcode is None
    assert psutil.Process(writer.pid).ppid() == os.getpid()
    assert "parsl_repro.monitoring.shipping" in psutil.Process(writer.pid).cmdline()
    kernel.cleanup()
    assert not writer.is_alive() and writer.exitcode == 0
    assert load(provenance=False, monitoring=MonitoringHub()).monitoring.dbm_proc is None


def test_the_writer_ignores_ctrl_c_and_lives_in_a_session_of_its_own(load, tmp_path):
    """A ctrl-C at the terminal signals the foreground process group; the writer must outlive it,
    so that the interrupted run is still recorded. It is outside that group, and ignores SIGINT."""
    kernel = load(monitoring=MonitoringHub(resource_monitoring_interval=0))
    writer = kernel.monitoring.dbm_proc
    assert double(1).result() == 2
    _wait_for(lambda: _task_states(tmp_path, kernel.run_id) == {0: "exec_done"})
    assert os.getpgid(writer.pid) != os.getpgid(0) and os.getsid(writer.pid) == writer.pid
    os.kill(writer.pid, signal.SIGINT)
    time.sleep(0.5)
    assert writer.is_alive()
    assert double(2).result() == 4
    kernel.cleanup()
    assert writer.exitcode == 0
    assert _task_states(tmp_path, kernel.run_id) == {0: "exec_done", 1: "exec_done"}


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGQUIT], ids=lambda s: s.name)
def test_killed_writer_is_reported_and_the_rest_of_the_run_is_still_recorded(load, tmp_path, caplog, sig):
    kernel = load(monitoring=MonitoringHub(resource_monitoring_interval=0))
    writer = kernel.monitoring.dbm_proc
    assert double(1).result() == 2
    _wait_for(lambda: _task_states(tmp_path, kernel.run_id) == {0: "exec_done"})  # the writer is in its loop

    def told() -> bool:
        return any("ended unexpectedly" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)

    with pytest.warns(RuntimeWarning, match="ended unexpectedly"):
        os.kill(writer.pid, sig)
        _wait_for(lambda: not writer.is_alive())
        _wait_for(told, 10)  # while the run is idle: nothing has to be emitted for the user to hear
    message = next(r.getMessage() for r in caplog.records if "ended unexpectedly" in r.getMessage())
    if sig == signal.SIGKILL:
        assert writer.exitcode == -signal.SIGKILL and "killed by SIGKILL" in message
    else:  # caught: it committed what it had read, then exited
        assert writer.exitcode == 128 + sig and f"exit status {128 + sig}" in message
    assert str(writer.pid) in message and kernel.run_id in message

    assert double(2).result() == 4
    kernel.cleanup()
    assert _task_states(tmp_path, kernel.run_id) == {0: "exec_done", 1: "exec_done"}
    engine = store_engine(tmp_path / "runinfo")
    with engine.connect() as conn:
        outcome, completed = conn.execute(text("SELECT outcome, time_completed FROM workflow WHERE run_id = :run"),
                                          {"run": kernel.run_id}).one()
    engine.dispose()
    assert outcome == "completed" and completed is not None
