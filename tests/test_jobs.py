"""Job states, block error handlers, the scaling strategy and the job status poller, driving a
small BlockProviderExecutor whose blocks are real LocalProvider jobs running ``sleep``."""
from __future__ import annotations

import os
import signal
import time
from concurrent.futures import Future
from functools import partial

import pytest

from parsl_repro.events import BlockState, RecordingSink
from parsl_repro.executors.errors import BadStateException
from parsl_repro.executors.status_handling import BlockActivity, BlockProviderExecutor
from parsl_repro.jobs.error_handlers import noop_error_handler, simple_error_handler, windowed_error_handler
from parsl_repro.jobs.errors import TooManyJobFailuresError
from parsl_repro.jobs.job_status_poller import JobStatusPoller
from parsl_repro.jobs.states import TERMINAL_STATES, JobState, JobStatus
from parsl_repro.jobs.strategy import Strategy
from parsl_repro.launchers import SimpleLauncher
from parsl_repro.providers import LocalProvider
from tests.test_providers_local import group_members

pytestmark = pytest.mark.usefixtures("no_leaks")


class EagerLocalProvider(LocalProvider):
    """A LocalProvider whose status may be asked on every poll (tests poll every 0.1 s); 0 would
    mean "never poll"."""
    status_polling_interval = 0.001


class SleepExecutor(BlockProviderExecutor):
    """Each block runs ``command`` (a sleep); tasks are never run: ``load`` is what
    ``outstanding()`` reports, and ``activity`` what ``block_activity()`` reports."""

    def __init__(self, provider: LocalProvider, *, workers: int = 1, command: str = "sleep 30",
                 block_error_handler=True, label: str = "sleepy") -> None:
        super().__init__(provider=provider, block_error_handler=block_error_handler)
        self.label = label
        self.command = command
        self.load = 0
        self.activity: dict[str, BlockActivity] | None = None
        self._workers = workers

    def outstanding(self) -> int:
        return self.load

    @property
    def workers_per_node(self) -> int:
        return self._workers

    def _get_launch_command(self, block_id: str) -> str:
        return self.command

    def block_activity(self) -> dict[str, BlockActivity] | None:
        return self.activity

    def submit(self, func, resource_specification, *args, **kwargs) -> Future:
        if self.bad_state_is_set:
            raise self.executor_exception
        future: Future = Future()
        self._tasks[len(self._tasks)] = future
        return future

    def shutdown(self) -> None:
        live = [b for b, s in self.status_facade.items() if not s.terminal]
        if live:
            self.scale_in_facade(len(live))

    def live_blocks(self) -> list[str]:
        return sorted((b for b, s in self.status_facade.items() if s.state in (JobState.PENDING, JobState.RUNNING)),
                      key=int)


@pytest.fixture
def make_executor(tmp_path):
    """Builds SleepExecutors on EagerLocalProviders; afterwards checks every block process ended."""
    made: list[SleepExecutor] = []

    def make(*, init_blocks=0, min_blocks=0, max_blocks=4, parallelism=1.0, nodes_per_block=1, sink=None,
             **executor_args) -> SleepExecutor:
        provider = EagerLocalProvider(init_blocks=init_blocks, min_blocks=min_blocks, max_blocks=max_blocks,
                                      parallelism=parallelism, nodes_per_block=nodes_per_block,
                                      launcher=SimpleLauncher(debug=False))
        provider.script_dir = str(tmp_path / f"submit_scripts_{len(made)}")
        executor = SleepExecutor(provider, **executor_args)
        executor.run_id = "run-1"
        executor.event_sink = sink
        made.append(executor)
        return executor

    yield make
    left = []
    for executor in made:
        executor.shutdown()
        for job_id, record in executor.provider.resources.items():
            deadline = time.monotonic() + 5
            while group_members(record["remote_pid"]) and time.monotonic() < deadline:
                executor.provider.status([job_id])  # reaps the block's bash once it exits
                time.sleep(0.05)
            if group_members(record["remote_pid"]):
                left.append(job_id)
                os.killpg(record["remote_pid"], signal.SIGKILL)
    assert not left, f"block processes left running: {left}"


def wait_for(condition, timeout: float = 10, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


def refresh(executor: SleepExecutor) -> None:
    executor.poll_facade()


# --- states ----------------------------------------------------------------------------------------------
def test_job_state_values_and_names_match_parsl():
    assert [(s.name, int(s)) for s in JobState] == [
        ("UNKNOWN", 0), ("PENDING", 1), ("RUNNING", 2), ("CANCELLED", 3), ("COMPLETED", 4), ("FAILED", 5),
        ("TIMEOUT", 6), ("HELD", 7), ("MISSING", 8), ("SCALED_IN", 9)]
    assert str(JobState.COMPLETED) == "JobState.COMPLETED"
    assert isinstance(repr(JobState.COMPLETED), str)
    assert set(TERMINAL_STATES) == {JobState.CANCELLED, JobState.COMPLETED, JobState.FAILED, JobState.TIMEOUT,
                                    JobState.MISSING, JobState.SCALED_IN}


def test_job_status_reads_and_summarises_output_files(tmp_path):
    out = tmp_path / "out"
    out.write_text("a" * 3000 + "END")
    status = JobStatus(JobState.FAILED, message="boom", exit_code=2, stdout_path=str(out),
                       stderr_path=str(tmp_path / "never-written"))
    assert status.terminal and status.status_name == "FAILED"
    assert str(status) == "JobState.FAILED (boom)" and "message=boom" in repr(status)
    assert status.stdout == "a" * 3000 + "END"
    summary = status.stdout_summary
    assert summary.startswith("a" * 1024) and summary.endswith("END") and "\n...\n" in summary
    assert len(summary) == JobStatus.SUMMARY_TRUNCATION_THRESHOLD + len("\n...\n")
    assert status.stderr_summary is None and status.stderr is None
    assert JobStatus(JobState.RUNNING).stdout_summary is None and not JobStatus(JobState.RUNNING).terminal


# --- error handlers (status given directly) ------------------------------------------------------------------
def statuses(*states: JobState, first: int = 1) -> dict[str, JobStatus]:
    return {str(first + i): JobStatus(s) for i, s in enumerate(states)}


F, C = JobState.FAILED, JobState.COMPLETED


def test_block_error_handler_flag_picks_simple_or_noop(make_executor):
    assert make_executor(block_error_handler=True).block_error_handler is simple_error_handler
    quiet = make_executor(block_error_handler=False)
    assert quiet.block_error_handler is noop_error_handler
    quiet.handle_errors(statuses(F, F, F, F))
    assert not quiet.bad_state_is_set


def test_custom_block_error_handler_is_called_with_executor_and_status(make_executor):
    calls = []
    executor = make_executor(block_error_handler=lambda ex, st: calls.append((ex, st)))
    bad = statuses(F, F)
    executor.handle_errors(bad)
    assert calls == [(executor, bad)]


def test_simple_error_handler_needs_init_blocks_failures_and_no_success(make_executor):
    executor = make_executor(init_blocks=3)
    executor.handle_errors(statuses(F, F))
    assert not executor.bad_state_is_set
    executor.handle_errors(statuses(C, F, F, F))
    assert not executor.bad_state_is_set
    executor.handle_errors(statuses(F, JobState.MISSING, F, F))
    assert executor.bad_state_is_set
    assert isinstance(executor.executor_exception, TooManyJobFailuresError)


def test_scaled_in_and_cancelled_blocks_are_not_failures(make_executor):
    executor = make_executor(init_blocks=1)
    executor.handle_errors(statuses(JobState.SCALED_IN, JobState.CANCELLED, JobState.TIMEOUT))
    assert not executor.bad_state_is_set


@pytest.mark.parametrize(("states", "bad"), [
    ((F, F), False),
    ((C, F, F), False),
    ((F, F, C, F), False),
    ((C, F, F, F), True),
])
def test_windowed_error_handler_looks_at_the_last_three_blocks(make_executor, states, bad):
    executor = make_executor(block_error_handler=windowed_error_handler)
    executor.handle_errors(statuses(*states))
    assert executor.bad_state_is_set is bad


def test_windowed_error_handler_orders_block_ids_as_numbers(make_executor):
    executor = make_executor(block_error_handler=windowed_error_handler)
    executor.handle_errors(statuses(F, F, F, C, C, first=8))  # 8, 9, 10 failed; 11, 12 fine
    assert not executor.bad_state_is_set
    executor.handle_errors({"8": JobStatus(C), "9": JobStatus(F), "21": JobStatus(F), "22": JobStatus(F),
                            "10": JobStatus(F)})
    assert executor.bad_state_is_set


def test_windowed_error_handler_threshold_via_partial(make_executor):
    executor = make_executor(block_error_handler=partial(windowed_error_handler, threshold=2))
    executor.handle_errors(statuses(C, C, C, F))
    assert not executor.bad_state_is_set
    executor.handle_errors(statuses(C, C, F, F))
    assert executor.bad_state_is_set


def test_bad_state_fails_held_tasks_and_later_submits(make_executor):
    executor = make_executor()
    held = executor.submit(print, {})
    executor.set_bad_state_and_fail_all(TooManyJobFailuresError("blocks keep dying"))
    with pytest.raises(BadStateException, match="blocks keep dying"):
        held.result(timeout=1)
    with pytest.raises(TooManyJobFailuresError):
        executor.submit(print, {})


# --- blocks: scale out, status, scale in, events -----------------------------------------------------------
def test_block_life_cycle_emits_block_state_events_in_order(make_executor):
    sink = RecordingSink()
    executor = make_executor(sink=sink, command="sleep 30")
    assert executor.scale_out_facade(2) == ["0", "1"]
    refresh(executor)
    assert executor.live_blocks() == ["0", "1"]
    assert executor.scale_in_facade(1) == ["0"]
    job_0 = executor.blocks_to_job_id["0"]
    wait_for(lambda: executor.provider.status([job_0])[0].state == JobState.CANCELLED, what="block 0 to die")
    refresh(executor)  # the provider says CANCELLED; SCALED_IN stands
    assert executor.status_facade["0"].state == JobState.SCALED_IN
    assert executor.scale_in_facade(5) == ["1"]

    events = sink.of_type(BlockState)
    by_block = {b: [e.state for e in events if e.block_id == b] for b in ("0", "1")}
    assert by_block == {"0": ["PENDING", "RUNNING", "SCALED_IN"], "1": ["PENDING", "RUNNING", "SCALED_IN"]}
    first = events[0]
    assert (first.run_id, first.executor, first.job_id) == ("run-1", "sleepy", executor.blocks_to_job_id["0"])
    assert executor.job_ids_to_block[first.job_id] == "0"
    assert [e.time for e in events] == sorted(e.time for e in events)


def test_block_that_exits_is_completed_or_failed_with_output(make_executor):
    sink = RecordingSink()
    executor = make_executor(sink=sink, command="echo about to fail >&2; exit 3")
    executor.scale_out_facade(1)
    wait_for(lambda: (refresh(executor), executor.status_facade["0"].terminal)[1], what="block 0 to end")
    status = executor.status_facade["0"]
    assert status.state == JobState.FAILED and status.exit_code == 3
    assert status.stderr == "about to fail\n"
    assert [e.state for e in sink.of_type(BlockState)][-1] == "FAILED"


def test_launch_failure_is_a_failed_block_with_the_reason(make_executor, tmp_path):
    sink = RecordingSink()
    executor = make_executor(sink=sink)
    (tmp_path / "file").write_text("")
    executor.provider.script_dir = str(tmp_path / "file")  # cannot hold scripts
    assert executor.scale_out_facade(1) == []
    status = executor.status_facade["0"]
    assert status.state == JobState.FAILED and "Failed to start block 0" in status.message
    refresh(executor)
    assert executor.status()["0"].state == JobState.FAILED
    (event,) = sink.of_type(BlockState)
    assert (event.state, event.job_id) == ("FAILED", None) and "ScriptPathError" in event.detail


def test_no_events_without_a_sink(make_executor):
    executor = make_executor(sink=None)
    executor.scale_out_facade(1)
    refresh(executor)
    assert executor.scale_in_facade(1) == ["0"]


def test_status_polling_interval_limits_provider_queries(make_executor):
    executor = make_executor()
    assert executor.status_polling_interval == 0.001
    executor.provider.status_polling_interval = 5  # LocalProvider's own interval
    assert executor.status_polling_interval == 5
    executor.scale_out_facade(1)
    executor.poll_facade()
    assert executor.status_facade["0"].state == JobState.RUNNING
    executor._status["0"] = JobStatus(JobState.PENDING)
    executor.poll_facade()  # within 5 s of the last poll: the provider is not asked
    assert executor.status_facade["0"].state == JobState.PENDING


# --- strategy arithmetic ------------------------------------------------------------------------------------
def strategize(strategy: Strategy, executor: SleepExecutor) -> None:
    refresh(executor)
    strategy.strategize([executor])


@pytest.mark.parametrize(("load", "workers", "parallelism", "max_blocks", "expected"), [
    (5, 2, 1.0, 4, 3),    # ceil(5 / 2)
    (8, 2, 0.5, 4, 2),    # 8 tasks * 0.5 = 4 slots wanted, 2 per block
    (100, 1, 1.0, 3, 3),  # capped at max_blocks
    (3, 1, 0.0, 4, 1),    # parallelism 0: one block, because there is work
    (0, 1, 1.0, 4, 0),    # no work, no blocks
])
def test_simple_strategy_scales_out_to_cover_outstanding_tasks(make_executor, load, workers, parallelism,
                                                                max_blocks, expected):
    executor = make_executor(workers=workers, parallelism=parallelism, max_blocks=max_blocks)
    strategy = Strategy(strategy="simple", max_idletime=60)
    strategy.add_executors([executor])
    executor.load = load
    strategize(strategy, executor)
    assert len(executor.live_blocks()) == expected
    strategize(strategy, executor)  # converged: no oscillation
    assert len(executor.live_blocks()) == expected


def test_nodes_per_block_multiplies_slots(make_executor):
    executor = make_executor(workers=2, nodes_per_block=2, max_blocks=10)
    strategy = Strategy(strategy="simple", max_idletime=60)
    strategy.add_executors([executor])
    executor.load = 9  # 4 slots per block
    strategize(strategy, executor)
    assert len(executor.live_blocks()) == 3


def test_init_blocks_launch_once_for_every_strategy(make_executor):
    for name in ("none", "simple", "htex_auto_scale"):
        executor = make_executor(init_blocks=2, label=f"x-{name}")
        strategy = Strategy(strategy=name, max_idletime=60)
        strategy.add_executors([executor])
        strategize(strategy, executor)
        strategize(strategy, executor)
        assert executor.live_blocks() == ["0", "1"], name
        executor.shutdown()


def test_none_strategy_never_scales_beyond_init_blocks(make_executor):
    executor = make_executor(init_blocks=1)
    strategy = Strategy(strategy="none", max_idletime=0)
    strategy.add_executors([executor])
    executor.load = 50
    strategize(strategy, executor)
    strategize(strategy, executor)
    assert executor.live_blocks() == ["0"]


def test_simple_strategy_scales_in_to_min_blocks_only_after_max_idletime(make_executor):
    executor = make_executor(min_blocks=1, max_blocks=4)
    strategy = Strategy(strategy="simple", max_idletime=0.5)
    strategy.add_executors([executor])
    executor.load = 3
    strategize(strategy, executor)
    assert len(executor.live_blocks()) == 3
    executor.load = 0
    strategize(strategy, executor)  # idle timer starts
    assert len(executor.live_blocks()) == 3
    time.sleep(0.6)
    strategize(strategy, executor)
    assert len(executor.live_blocks()) == 1
    assert sum(s.state == JobState.SCALED_IN for s in executor.status_facade.values()) == 2


def test_work_arriving_resets_the_idle_timer(make_executor):
    executor = make_executor(max_blocks=2)
    strategy = Strategy(strategy="simple", max_idletime=0.4)
    strategy.add_executors([executor])
    executor.load = 1
    strategize(strategy, executor)
    executor.load = 0
    strategize(strategy, executor)
    time.sleep(0.3)
    executor.load = 1
    strategize(strategy, executor)
    executor.load = 0
    time.sleep(0.2)
    strategize(strategy, executor)  # idle again for only ~0 s, not 0.5 s
    assert len(executor.live_blocks()) == 1


def test_simple_strategy_does_not_scale_in_while_there_is_work(make_executor):
    executor = make_executor(workers=4, max_blocks=4)
    strategy = Strategy(strategy="simple", max_idletime=0)
    strategy.add_executors([executor])
    executor.load = 12
    strategize(strategy, executor)
    executor.load = 1  # far more slots than tasks
    strategize(strategy, executor)
    assert len(executor.live_blocks()) == 3


def test_htex_auto_scale_scales_in_only_idle_blocks(make_executor):
    executor = make_executor(workers=1, max_blocks=4)
    strategy = Strategy(strategy="htex_auto_scale", max_idletime=5)
    strategy.add_executors([executor])
    executor.load = 4
    strategize(strategy, executor)
    assert executor.live_blocks() == ["0", "1", "2", "3"]

    executor.load = 1  # three blocks too many, but only blocks 1 and 3 have been idle long enough
    executor.activity = {"0": BlockActivity(tasks=1, idle=0), "1": BlockActivity(tasks=0, idle=30),
                         "2": BlockActivity(tasks=0, idle=1), "3": BlockActivity(tasks=0, idle=60)}
    strategize(strategy, executor)
    assert executor.live_blocks() == ["0", "2"]
    strategize(strategy, executor)
    assert executor.live_blocks() == ["0", "2"]


def test_htex_auto_scale_leaves_executors_without_block_activity(make_executor):
    executor = make_executor(workers=1, max_blocks=2)
    strategy = Strategy(strategy="htex_auto_scale", max_idletime=0)
    strategy.add_executors([executor])
    executor.load = 2
    strategize(strategy, executor)
    executor.load = 1
    strategize(strategy, executor)
    assert len(executor.live_blocks()) == 2


def test_strategy_skips_executors_in_bad_state(make_executor):
    executor = make_executor(init_blocks=1)
    strategy = Strategy(strategy="simple", max_idletime=0)
    strategy.add_executors([executor])
    executor.set_bad_state_and_fail_all(RuntimeError("gone"))
    executor.load = 10
    strategize(strategy, executor)
    assert executor.status_facade == {}


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="htex_auto_scale"):
        Strategy(strategy="greedy", max_idletime=1)
    with pytest.deprecated_call():
        Strategy(strategy=None, max_idletime=1)


# --- the poller --------------------------------------------------------------------------------------------
def test_poller_scales_out_under_load_and_in_when_idle(make_executor):
    sink = RecordingSink()
    executor = make_executor(sink=sink, workers=1, max_blocks=3)
    poller = JobStatusPoller(strategy="simple", max_idletime=0.3, strategy_period=0.1)
    try:
        poller.add_executors([executor])
        executor.load = 3
        wait_for(lambda: len(executor.live_blocks()) == 3, what="three blocks")
        executor.load = 0
        wait_for(lambda: executor.live_blocks() == [], what="scale in")
    finally:
        poller.close()
    states = {b: [e.state for e in sink.of_type(BlockState) if e.block_id == b] for b in ("0", "1", "2")}
    assert states == {b: ["PENDING", "RUNNING", "SCALED_IN"] for b in ("0", "1", "2")}


def test_poller_launches_init_blocks_when_executors_are_added(make_executor):
    executor = make_executor(init_blocks=2)
    poller = JobStatusPoller(strategy="none", max_idletime=60, strategy_period=60)
    try:
        poller.add_executors([executor])
        assert sorted(executor.blocks_to_job_id) == ["0", "1"]
    finally:
        poller.close()
    assert all(s.state == JobState.SCALED_IN for s in executor.status_facade.values())


def test_poller_close_scales_in_every_block_and_is_idempotent(make_executor):
    executor = make_executor(init_blocks=2, max_blocks=2)
    poller = JobStatusPoller(strategy="simple", max_idletime=60, strategy_period=0.1)
    poller.add_executors([executor])
    wait_for(lambda: executor.live_blocks() == ["0", "1"], what="init blocks running")
    poller.close()
    poller.close()
    assert executor.live_blocks() == []
    for job_id in executor.provider.resources:
        wait_for(lambda j=job_id: executor.provider.status([j])[0].terminal, what=f"job {job_id} to end")
    with pytest.raises(RuntimeError, match="closed"):
        poller.add_executors([make_executor(init_blocks=1, label="late")])


def test_poller_marks_executor_bad_after_repeated_block_failures(make_executor):
    sink = RecordingSink()
    executor = make_executor(sink=sink, init_blocks=2, max_blocks=2, command="echo no python here >&2; exit 127")
    held = executor.submit(print, {})
    poller = JobStatusPoller(strategy="simple", max_idletime=60, strategy_period=0.1)
    try:
        poller.add_executors([executor])
        wait_for(lambda: executor.bad_state_is_set, what="bad state")
        launched = len(executor.blocks_to_job_id)
        time.sleep(0.3)
        assert len(executor.blocks_to_job_id) == launched, "a bad executor must not be scaled further"
    finally:
        poller.close()
    error = executor.executor_exception
    assert isinstance(error, TooManyJobFailuresError)
    assert "EXIT CODE: 127" in str(error) and "no python here" in str(error)
    with pytest.raises(BadStateException):
        held.result(timeout=1)
    assert [e.state for e in sink.of_type(BlockState) if e.block_id == "0"][-1] == "FAILED"


def test_poller_ignores_executors_without_provider():
    executor = SleepExecutor(None)
    assert executor.status_polling_interval == 0
    poller = JobStatusPoller(strategy="simple", max_idletime=60, strategy_period=60)
    try:
        poller.add_executors([executor])
        assert poller.executors == []
    finally:
        poller.close()
