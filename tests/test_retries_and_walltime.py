"""Retries (counted, cost-based with retry_handler), walltime limits, lazy and fail-fast errors."""
from __future__ import annotations

import time

import pytest

from parsl_repro import python_app
from parsl_repro.app.errors import AppTimeout
from parsl_repro.dataflow.states import States
from parsl_repro.events import RecordingSink, TaskState


def flaky_app(counter_path):
    @python_app
    def flaky(succeed_on):
        with open(counter_path, "a+") as f:
            f.seek(0)
            tries = len(f.read()) + 1
            f.write("x")
        if tries < succeed_on:
            raise RuntimeError(f"try {tries} fails")
        return tries
    return flaky


def test_retries_rerun_a_failing_task_until_it_succeeds(load, tmp_path):
    sink = RecordingSink()
    load(sink=sink, retries=3)
    fut = flaky_app(tmp_path / "count")(succeed_on=3)
    assert fut.result(timeout=30) == 3
    record = fut.task_record
    assert record.fail_count == 2 and record.try_id == 2
    assert len(record.fail_history) == 2 and "try 1 fails" in record.fail_history[0]
    causes = [e.cause for e in sink.of_type(TaskState) if e.task_id == fut.tid and e.new == "fail_retryable"]
    assert len(causes) == 2


def test_retries_exhausted_fail_with_the_last_error(load, tmp_path):
    load(retries=2)
    fut = flaky_app(tmp_path / "count")(succeed_on=10)
    with pytest.raises(RuntimeError, match="try 3 fails"):
        fut.result(timeout=30)
    assert (tmp_path / "count").read_text() == "xxx"


def test_retry_handler_cost_spends_the_budget(load, tmp_path):
    costs = []

    def half(exception, task_record):
        costs.append((type(exception).__name__, task_record["id"]))
        return 0.5

    load(retries=1, retry_handler=half)
    fut = flaky_app(tmp_path / "count")(succeed_on=10)
    with pytest.raises(RuntimeError):
        fut.result(timeout=30)
    # budget 1 at 0.5 per failure: tries 1 and 2 are retried, try 3 ends it
    assert len(costs) == 3 and costs[0] == ("RuntimeError", fut.tid)


def test_retry_handler_that_raises_stops_retries_and_becomes_the_error(load, tmp_path):
    def broken(exception, task_record):
        raise KeyError("handler broke")

    load(retries=5, retry_handler=broken)
    fut = flaky_app(tmp_path / "count")(succeed_on=10)
    with pytest.raises(KeyError, match="handler broke"):
        fut.result(timeout=30)
    assert (tmp_path / "count").read_text() == "x"


@python_app
def sleepy(seconds, walltime=None):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.01)
    return "finished"


def test_python_walltime_raises_app_timeout(dfk):
    fut = sleepy(5, walltime=0.2)
    with pytest.raises(AppTimeout, match="sleepy"):
        fut.result(timeout=10)
    assert fut.task_record["func_name"] == "sleepy"


def test_walltime_timer_does_not_leak_into_the_next_task_on_the_thread(dfk):
    assert sleepy(0.01, walltime=0.05).result(timeout=10) == "finished"
    time.sleep(0.1)
    assert all(f.result(timeout=10) == "finished" for f in [sleepy(0.02) for _ in range(8)])


def test_timed_out_task_is_retried(load):
    load(retries=1)
    fut = sleepy(5, walltime=0.1)
    with pytest.raises(AppTimeout):
        fut.result(timeout=10)
    assert fut.task_record.fail_count == 2


@python_app
def boom():
    raise ValueError("first failure")


def test_lazy_errors_default_keeps_running_other_tasks(dfk):
    bad = boom()
    bad.exception(timeout=10)
    assert sleepy(0.01).result(timeout=10) == "finished"


def test_lazy_errors_false_halts_the_workflow_at_the_first_failure(load):
    from parsl_repro.dataflow.errors import WorkflowHalted

    kernel = load(lazy_errors=False)
    gate = sleepy(0.5)
    waiting = sleepy(gate)  # not launched until gate finishes
    bad = boom()
    bad.exception(timeout=10)
    with pytest.raises(WorkflowHalted, match=f"task {bad.tid}"):
        sleepy(0)
    error = waiting.exception(timeout=10)
    assert isinstance(error, WorkflowHalted) and "first failure" in str(error)
    assert gate.result(timeout=10) == "finished"  # already running: allowed to finish
    assert kernel.task_state_counts[States.failed] == 2


def test_walltime_expiring_inside_a_c_call_still_raises_and_does_not_leak(dfk):
    import parsl_repro.app.python as python_module

    def blocking():
        time.sleep(0.3)  # one C call: the timer fires while it runs
        return "returned"

    wrapped = python_module.timeout(blocking, 0.05)
    with pytest.raises(AppTimeout):
        wrapped()
    for _ in range(20):  # a stray asynchronous AppTimeout would surface in this loop
        time.sleep(0.01)
