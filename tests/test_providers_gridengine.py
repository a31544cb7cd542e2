"""GridEngineProvider against a real single-node Grid Engine cell (sge_qmaster + sge_execd on
this machine, queue all.q with 2 slots, started by scripts/gridengine.sh): submit, status,
cancel, a refused submission, and HTEX blocks that are Grid Engine jobs."""
from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys
import time

import pytest

import parsl_repro
from parsl_repro import python_app
from parsl_repro.config import Config
from parsl_repro.executors import HighThroughputExecutor
from parsl_repro.jobs.states import JobState
from parsl_repro.launchers import SimpleLauncher
from parsl_repro.providers import GridEngineProvider
from parsl_repro.providers.errors import SubmitException
from parsl_repro.providers.grid_engine.grid_engine import h_rt
from parsl_repro.typecheck import TypeCheckError
from tests.gridengine_server import GridEngineCell

VENV_BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="module")
def gridengine_cell(tmp_path_factory):
    """A real Grid Engine cell on ports of its own, one per test module, with its clients'
    environment."""
    cell = GridEngineCell(tmp_path_factory.mktemp("gridengine"))
    env = cell.start()
    yield cell, env
    cell.stop()


@pytest.fixture
def gridengine(gridengine_cell, monkeypatch, tmp_path):
    """The cell's environment for this test's Grid Engine commands; cwd is tmp_path (where
    ``#$ -cwd`` jobs run)."""
    _, env = gridengine_cell
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return env


def _qstat() -> dict[str, str]:
    """``{job id: state}`` from plain ``qstat`` (every user's jobs), read independently of the provider."""
    out = subprocess.run(["qstat", "-u", "*"], capture_output=True, text=True, check=True, timeout=30)
    jobs = {}
    for line in out.stdout.splitlines()[2:]:  # a header line and a line of dashes
        fields = line.split()
        if len(fields) >= 5:
            jobs[fields[0]] = fields[4]
    return jobs


def _wait(condition, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _wait_for_state(provider: GridEngineProvider, job_id: str, states: set[JobState], timeout: float = 30) -> JobState:
    _wait(lambda: provider.status([job_id])[0].state in states, timeout)
    return provider.status([job_id])[0].state


def test_a_block_is_a_batch_job_that_runs_then_is_cancelled(gridengine, tmp_path):
    provider = GridEngineProvider(walltime="00:05:00", scheduler_options="#$ -ac origin=parsl-repro-test",
                                  worker_init="echo initialised > init.txt", launcher=SimpleLauncher())
    provider.script_dir = str(tmp_path / "scripts")
    job_id = provider.submit("echo $JOB_ID > job.txt && sleep 120", 1, "test")
    assert job_id.isdigit() and job_id in _qstat()
    [script_path] = (tmp_path / "scripts").glob("test.*.submit")
    script = script_path.read_text()
    assert "#$ -l h_rt=0:05:00" in script and "#$ -ac origin=parsl-repro-test" in script
    assert provider.resources[job_id]["script_sha256"] == hashlib.sha256(script.encode()).hexdigest()
    # "t" (transferring) comes first, for a moment: it must read as RUNNING, never as a failure
    assert _wait_for_state(provider, job_id, {JobState.RUNNING}) is JobState.RUNNING
    assert _wait(lambda: _qstat()[job_id] == "r") and provider.status([job_id])[0].state is JobState.RUNNING
    assert _wait(lambda: (tmp_path / "job.txt").exists() and (tmp_path / "job.txt").read_text().strip())
    assert (tmp_path / "job.txt").read_text().split() == [job_id]  # ran in the submitter's cwd (-cwd)
    assert (tmp_path / "init.txt").read_text() == "initialised\n"
    details = subprocess.run(["qstat", "-j", job_id], capture_output=True, text=True, timeout=30).stdout
    assert "h_rt=300" in details and "origin=parsl-repro-test" in details
    assert provider.cancel([job_id]) == [True]
    assert provider.status([job_id])[0].state is JobState.CANCELLED
    assert _wait(lambda: job_id not in _qstat()), "qdel left the job in qstat"


def test_a_job_waiting_for_a_slot_is_pending_until_one_frees(gridengine, tmp_path):
    """all.q has 2 slots: a third job waits (qw) while two run."""
    provider = GridEngineProvider(launcher=SimpleLauncher())
    provider.script_dir = str(tmp_path)
    job_ids = [provider.submit("sleep 120", 1, f"slot{i}") for i in range(3)]
    try:
        assert _wait(lambda: [s.state for s in provider.status(job_ids)].count(JobState.RUNNING) == 2)
        states = dict(zip(job_ids, provider.status(job_ids), strict=True))
        [waiting] = [job_id for job_id, status in states.items() if status.state is not JobState.RUNNING]
        assert provider.status([waiting])[0].state is JobState.PENDING and _qstat()[waiting] == "qw"
        assert provider.cancel([j for j in job_ids if j != waiting]) == [True, True]
        assert _wait_for_state(provider, waiting, {JobState.RUNNING}) is JobState.RUNNING
    finally:
        provider.cancel(job_ids)
    assert [s.state for s in provider.status(job_ids)] == [JobState.CANCELLED] * 3
    assert _wait(lambda: not set(job_ids) & _qstat().keys())


def test_a_finished_job_that_qstat_forgets_counts_as_completed(gridengine, tmp_path):
    provider = GridEngineProvider(launcher=SimpleLauncher())
    provider.script_dir = str(tmp_path)
    job_id = provider.submit("echo finished", 1, "quick")
    assert job_id in _qstat()
    assert _wait(lambda: job_id not in _qstat(), 60)
    status = provider.status([job_id])[0]
    assert status.state is JobState.COMPLETED
    assert status.stdout_path.endswith(".submit.stdout") and status.stdout.strip() == "finished"


def test_qsub_refusing_the_job_raises_submit_exception_with_its_message(gridengine, tmp_path):
    provider = GridEngineProvider(queue="no.such.queue")
    provider.script_dir = str(tmp_path)
    with pytest.raises(SubmitException) as caught:
        provider.submit("true", 1, "refused")
    assert caught.value.retcode not in (0, None)
    assert 'unknown queue "no.such.queue"' in str(caught.value) and "qsub" in caught.value.message
    assert provider.resources == {}


def test_htex_blocks_on_grid_engine_run_tasks_and_are_cancelled_at_cleanup(gridengine, tmp_path, capsys):
    provider = GridEngineProvider(init_blocks=1, max_blocks=1, walltime="00:10:00",
                                  worker_init=f"export PATH={VENV_BIN}:$PATH")
    executor = HighThroughputExecutor(label="sge", provider=provider, max_workers_per_node=2,
                                      heartbeat_period=1, heartbeat_threshold=5)
    started = time.monotonic()
    kernel = parsl_repro.load(Config(executors=[executor], run_dir=str(tmp_path / "runinfo")))
    try:
        @python_app
        def where(x):
            import os
            return x * x, os.environ.get("JOB_ID"), os.environ.get("SGE_CELL")

        futures = [where(i) for i in range(20)]
        first = futures[0].result(timeout=120)
        to_first_result = time.monotonic() - started
        results = [first] + [f.result(timeout=120) for f in futures[1:]]
        assert [r[0] for r in results] == [i * i for i in range(20)]
        [(job_id, cell)] = {r[1:] for r in results}
        assert cell == gridengine["SGE_CELL"]
        # qstat may still show "t" for a moment after the job's workers connected
        assert job_id in provider.resources and _wait(lambda: _qstat().get(job_id) == "r")
        scripts = list(pathlib.Path(provider.script_dir).glob("parsl.sge.block-0.*.submit"))
        assert len(scripts) == 1 and f"export PATH={VENV_BIN}:$PATH" in scripts[0].read_text()
    finally:
        kernel.cleanup()
    with capsys.disabled():
        print(f"\nGrid Engine HTEX: load() to first result {to_first_result:.2f} s")
    assert _wait(lambda: job_id not in _qstat()), "the block's job outlived cleanup"
    assert provider.resources[job_id]["status"].state is JobState.CANCELLED


def test_starting_a_running_cell_again_reuses_it(gridengine_cell, gridengine):
    cell, env = gridengine_cell
    qmaster_pid = (cell.base_dir / "spool" / "qmaster" / "qmaster.pid").read_text()
    assert cell.start() == env
    assert (cell.base_dir / "spool" / "qmaster" / "qmaster.pid").read_text() == qmaster_pid
    assert "all.q@" in subprocess.run(["qstat", "-f"], capture_output=True, text=True, timeout=30).stdout


def test_configuration_is_type_checked_and_walltime_is_sent_as_h_rt():
    with pytest.raises(TypeCheckError):
        GridEngineProvider(max_blocks="2")
    provider = GridEngineProvider(queue="all.q")
    assert provider.status_polling_interval == 60 and provider.label == "grid_engine"
    assert provider.cmd_timeout == 60 and "queue='all.q'" in repr(provider)
    assert [h_rt(w) for w in ("00:10:00", "30", "1:30", "1-02:03:04", "100:00:00")] == \
        ["0:10:00", "0:30:00", "0:01:30", "26:03:04", "100:00:00"]
