"""The kernel's life: run directories and logs, the event stream, the state table, context
manager and exit modes, waiting, and the concurrent.futures facade."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import parsl_repro
from parsl_repro import python_app
from parsl_repro.concurrent import ParslPoolExecutor
from parsl_repro.config import Config
from parsl_repro.dataflow.dflow import DataFlowKernelLoader
from parsl_repro.dataflow.states import TRANSITIONS, States
from parsl_repro.dataflow.taskrecord import TaskRecord
from parsl_repro.dataflow.transitions import TaskStateMachine
from parsl_repro.errors import InternalConsistencyError
from parsl_repro.events import RecordingSink, RunEnded, RunStarted, TaskCreated, TaskState
from parsl_repro.executors import ThreadPoolExecutor


@python_app
def inc(x):
    return x + 1


@python_app
def broken():
    raise OSError("disk on fire")


def _record(task_id=1):
    return TaskRecord(dfk=None, task_id=task_id, func=inc, func_name="inc", args=(), kwargs={}, executor="t",
                      memoize=False, ignore_for_cache=[], join=False, app_kind="python",
                      resource_specification={}, time_invoked=0.0)


def test_state_machine_allows_only_table_moves_and_counts_them():
    sink = RecordingSink()
    machine = TaskStateMachine("run", sink)
    task = _record()
    machine.enter(task)
    assert machine.counts[States.pending] == 1 and not sink.events  # TaskCreated stands for this move
    machine.move(task, States.launched, detail="t")
    with pytest.raises(InternalConsistencyError, match="launched to pending"):
        machine.move(task, States.pending)
    machine.move(task, States.exec_done)
    with pytest.raises(InternalConsistencyError, match="exec_done to failed"):
        machine.move(task, States.failed)
    assert machine.counts[States.exec_done] == 1 and machine.counts[States.launched] == 0
    assert [(e.old, e.new, e.cause, e.detail) for e in sink.events] == [
        ("pending", "launched", TRANSITIONS[(States.pending, States.launched)], "t"),
        ("launched", "exec_done", TRANSITIONS[(States.launched, States.exec_done)], None),
    ]


def test_no_final_state_has_a_way_out():
    finals = {States.exec_done, States.memo_done, States.failed, States.dep_fail}
    assert not [move for move in TRANSITIONS if move[0] in finals]


def test_every_task_emits_its_life_as_events(load):
    sink = RecordingSink()
    kernel = load(sink=sink)
    good = inc(inc(1))
    bad = broken()
    child = inc(bad)
    assert good.result() == 3
    child.exception(timeout=10)
    kernel.cleanup()
    kinds = [type(e) for e in sink.events]
    assert kinds[0] is RunStarted and kinds[-1] is RunEnded and sink.closed
    created = {e.task_id: e for e in sink.of_type(TaskCreated)}
    assert created[good.tid].depends_on == (good.tid - 1,) and created[good.tid].func_name == "inc"
    states = {}
    for e in sink.of_type(TaskState):
        states.setdefault(e.task_id, []).append(e.new)
    assert states[good.tid] == ["launched", "exec_done"]  # TaskCreated stands for the move into pending
    assert states[bad.tid] == ["launched", "failed"]
    assert states[child.tid] == ["dep_fail"]
    launches = [e for e in sink.of_type(TaskState) if e.new == "launched"]
    assert len(launches) == 3 and {e.detail for e in launches} == {kernel.executors["threads"].label}
    failure = [e for e in sink.of_type(TaskState) if e.task_id == bad.tid and e.new == "failed"][0]
    assert failure.old == "launched" and failure.detail == "OSError: disk on fire"
    ended = sink.of_type(RunEnded)[0]
    assert ended.outcome == "failed" and ended.state_counts == {"exec_done": 2, "failed": 1, "dep_fail": 1}
    per_task: dict[int, list[float]] = {}
    for e in sink.of_type(TaskState):
        per_task.setdefault(e.task_id, []).append(e.time)
    for task_id, times in per_task.items():
        assert times == sorted(times), f"task {task_id} state times go backwards"
        assert created[task_id].time <= times[0]


def test_run_directories_are_numbered_and_hold_parsl_log(make_config, no_leaks, tmp_path):
    first = parsl_repro.load(make_config())
    inc(1).result()
    first.cleanup()
    second = parsl_repro.load(make_config())
    second.cleanup()
    root = tmp_path / "runinfo"
    assert sorted(n for n in os.listdir(root) if n.isdigit()) == ["000", "001"]
    assert "provenance.db" in os.listdir(root)
    assert first.run_dir == str(root / "000")
    log = (root / "000" / "parsl.log").read_text()
    assert "Starting DataFlowKernel" in log and "cleanup complete" in log


def test_initialize_logging_false_writes_no_log(make_config, no_leaks):
    kernel = parsl_repro.load(make_config(initialize_logging=False))
    kernel.cleanup()
    assert not os.path.exists(os.path.join(kernel.run_dir, "parsl.log"))


def test_with_load_cleans_up_on_exit(make_config, no_leaks):
    with parsl_repro.load(make_config()) as kernel:
        assert inc(1).result() == 2
    assert kernel.cleanup_called and DataFlowKernelLoader._dfk is None


def test_exit_mode_wait_waits_for_tasks(make_config, no_leaks):
    @python_app
    def slow():
        import time
        time.sleep(0.5)
        return "done"

    with parsl_repro.load(make_config(exit_mode="wait")):
        fut = slow()
    assert fut.done() and fut.result() == "done"


def test_exit_mode_skip_leaves_the_kernel_loaded(make_config, no_leaks):
    with parsl_repro.load(make_config(exit_mode="skip")) as kernel:
        pass
    assert not kernel.cleanup_called and parsl_repro.dfk() is kernel
    kernel.cleanup()


def test_wait_for_current_tasks_waits_for_every_task(dfk):
    @python_app
    def nap(i):
        import time
        time.sleep(0.05)
        return i

    futures = [nap(i) for i in range(12)]
    parsl_repro.wait_for_current_tasks()
    assert all(f.done() for f in futures)


def test_garbage_collect_false_keeps_task_records(load):
    kernel = load(garbage_collect=False)
    fut = inc(1)
    fut.result()
    assert kernel.tasks[fut.tid].status is States.exec_done


@pytest.mark.parametrize("mode,expect", [("wait", "written"), ("cleanup", None), ("skip", None)])
def test_script_that_never_cleans_up_is_handled_at_exit_per_exit_mode(tmp_path, mode, expect):
    script = tmp_path / "forgetful.py"
    script.write_text(textwrap.dedent(f"""
        import parsl_repro
        from parsl_repro import python_app
        from parsl_repro.config import Config
        parsl_repro.load(Config(exit_mode={mode!r}))

        @python_app
        def first():
            import time
            time.sleep(0.3)

        @python_app
        def second(_):
            open('result.txt', 'w').write('written')

        second(first())
    """))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = tmp_path / "result.txt"
    if expect is None:
        assert not result.exists()
    else:
        assert result.read_text() == expect
    log = next((tmp_path / "runinfo").glob("*/parsl.log")).read_text()
    assert "still loaded" in log


def test_parsl_pool_executor_submit_map_and_shutdown(make_config, no_leaks):
    with ParslPoolExecutor(make_config()) as pool:
        assert pool.submit(pow, 2, 10).result() == 1024
        assert list(pool.map(pow, [1, 2, 3], [2, 2, 2])) == [1, 4, 9]
        assert pool.app_count == 1
        dfk = pool.dfk
    assert dfk.cleanup_called


def test_parsl_pool_executor_over_a_running_kernel_leaves_it_running(dfk):
    pool = ParslPoolExecutor(dfk=dfk)
    assert pool.submit(abs, -3).result() == 3
    pool.shutdown()
    assert not dfk.cleanup_called


def test_memoization_within_a_run_reuses_results(load, tmp_path):
    kernel = load()
    calls = tmp_path / "calls"

    @python_app(cache=True)
    def costly(x):
        with open(calls, "a") as f:
            f.write(".")
        return x * 10

    assert costly(4).result() == 40
    again = costly(4)
    assert again.result() == 40 and again.task_record.from_memo
    assert costly(5).result() == 50
    assert calls.read_text() == ".."
    assert kernel.task_state_counts[States.memo_done] == 1


def test_uncacheable_argument_runs_the_task_uncached_and_says_why(load, caplog):
    import logging
    caplog.set_level(logging.WARNING, logger="parsl_repro")
    load()
    calls = []

    @python_app(cache=True)
    def cached(x):
        calls.append(1)
        return 1

    def generator():
        yield 1

    assert cached(generator()).result(timeout=10) == 1
    assert cached(generator()).result(timeout=10) == 1
    assert len(calls) == 2  # never a hit on an argument that cannot be hashed
    assert any("generator" in r.getMessage() and "not cached" in r.getMessage() for r in caplog.records)


def test_thread_pool_executor_used_standalone_shuts_down_twice():
    executor = ThreadPoolExecutor(max_threads=1)
    executor.start()
    assert executor.submit(abs, {}, -1).result() == 1
    executor.shutdown()
    executor.shutdown()


def test_default_config_loads(monkeypatch, tmp_path, no_leaks):
    monkeypatch.chdir(tmp_path)
    kernel = parsl_repro.load()
    assert isinstance(kernel.config, Config) and inc(1).result() == 2
    kernel.cleanup()
    assert (tmp_path / "runinfo" / "000" / "parsl.log").exists()


def test_debug_logging_carries_parsl_structured_task_records(dfk):
    import io
    import logging

    stream = io.StringIO()
    detach = parsl_repro.set_stream_logger(stream=stream, level=logging.DEBUG)
    captured = []

    class Keep(logging.Handler):
        def emit(self, record):
            captured.append(record.__dict__)

    keep = Keep()
    logging.getLogger("parsl_repro").addHandler(keep)
    try:
        first = inc(1)
        second = inc(first)
        second.result()
    finally:
        logging.getLogger("parsl_repro").removeHandler(keep)
        detach()
    assert {"parsl.task": second.tid, "parsl.dependency_task": first.tid}.items() <= next(
        r for r in captured if "parsl.dependency_task" in r).items()
    states = {r["parsl.task_state"] for r in captured if r.get("parsl.task") == second.tid and "parsl.task_state" in r}
    assert states == {"pending", "launched", "exec_done"}
    assert any(r.get("parsl.executor") == "threads" and r.get("parsl.task") == first.tid for r in captured)
    assert f"Task {second.tid} changing state from launched to exec_done" in stream.getvalue()


def test_ignore_for_cache_leaves_named_arguments_out_of_the_memo_key(load, tmp_path):
    load()
    calls = tmp_path / "calls"

    @python_app(cache=True, ignore_for_cache=["verbose"])
    def measure(x, verbose=False):
        with open(calls, "a") as f:
            f.write(".")
        return x

    assert measure(1, verbose=False).result() == 1
    assert measure(1, verbose=True).result() == 1
    assert calls.read_text() == "."


def test_app_cache_false_disables_memoization_for_every_app(load, tmp_path):
    load(app_cache=False)
    calls = tmp_path / "calls"

    @python_app(cache=True)
    def measure(x):
        with open(calls, "a") as f:
            f.write(".")
        return x

    measure(1).result()
    measure(1).result()
    assert calls.read_text() == ".."


def test_fan_out_sink_delivers_every_event_to_each_sink_and_closes_them(tmp_path, no_leaks):
    from parsl_repro.events import FanOutSink
    first, second = RecordingSink(), RecordingSink()
    fan = FanOutSink([first, second])
    config = Config(executors=[ThreadPoolExecutor()], run_dir=str(tmp_path / "runinfo"))
    kernel = parsl_repro.DataFlowKernel(config, event_sink=fan)
    try:
        @python_app(data_flow_kernel=kernel)
        def one():
            return 1
        one().result()
    finally:
        kernel.cleanup()
    kinds = [type(e).__name__ for e in first.events]
    assert first.events == second.events
    assert kinds == ["RunStarted", "MemoTableLoaded", "AppSeen", "TaskCreated", "TaskArguments", "TaskState",
                     "TaskState", "TaskReturned", "RunEnded"]
    assert first.closed and second.closed


def test_collection_thresholds_are_raised_while_a_kernel_runs_and_restored_after(load):
    import gc

    from parsl_repro.dataflow import gc_tuning
    saved = gc.get_threshold()
    gc.set_threshold(*gc_tuning.PYTHON_DEFAULTS)
    try:
        kernel = load()
        assert gc.get_threshold() == gc_tuning.KERNEL_THRESHOLDS
        kernel.cleanup()
        assert gc.get_threshold() == gc_tuning.PYTHON_DEFAULTS
        gc.set_threshold(1234, 5, 6)  # a user's own tuning is left alone
        kernel = load()
        assert gc.get_threshold() == (1234, 5, 6)
        kernel.cleanup()
        assert gc.get_threshold() == (1234, 5, 6)
    finally:
        gc.set_threshold(*saved)


def test_finished_tasks_leave_no_reference_cycles_for_the_collector(load):
    """A done task's record and future must not form a cycle: at a million tasks, cyclic garbage
    piled up by the gigabyte between collections."""
    import gc

    load()
    inc(0).result()
    gc.collect()
    futures = [inc(i) for i in range(500)]
    assert [f.result() for f in futures] == [i + 1 for i in range(500)]
    del futures
    assert gc.collect() < 50  # was about 9 objects per task


def test_each_started_executor_is_logged_with_its_label_and_type(load, caplog):
    import logging
    caplog.set_level(logging.INFO, logger="parsl_repro")
    kernel = load()
    kernel.add_executors([ThreadPoolExecutor(label="added_later", max_threads=1)])
    started = {(r.__dict__["parsl.executor.label"], r.__dict__["parsl.executor.type"])
               for r in caplog.records if "parsl.executor.label" in r.__dict__}
    kind = "parsl_repro.executors.threads.ThreadPoolExecutor"
    assert {("threads", kind), ("added_later", kind)} <= started

    @python_app(executors=["added_later"])
    def where():
        return "ran"

    assert where().result() == "ran"
