"""SlurmProvider against a real single-node Slurm cluster (slurmctld + slurmd on this machine,
started by scripts/slurm.sh): submit, status, cancel, and HTEX blocks that are Slurm jobs."""
from __future__ import annotations

import os
import subprocess
import time

import pytest

import parsl_repro
from parsl_repro import python_app
from parsl_repro.config import Config
from parsl_repro.executors import HighThroughputExecutor, MPIExecutor
from parsl_repro.jobs.states import JobState
from parsl_repro.launchers import AprunLauncher, SimpleLauncher, SrunLauncher
from parsl_repro.providers import SlurmProvider
from parsl_repro.providers.errors import SubmitException


def _squeue() -> dict[str, str]:
    out = subprocess.run(["squeue", "--noheader", "--format=%i %t"], capture_output=True, text=True, check=True)
    return dict(line.split() for line in out.stdout.splitlines() if line.strip())


def _wait_for_state(provider: SlurmProvider, job_id: str, states: set[JobState], timeout: float = 30) -> JobState:
    deadline = time.monotonic() + timeout
    while True:
        state = provider.status([job_id])[0].state
        if state in states or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def test_a_block_is_a_batch_job_with_the_asked_resources_that_runs_then_is_cancelled(slurm, tmp_path):
    provider = SlurmProvider(partition="debug", cores_per_node=2, mem_per_node=1, walltime="00:05:00",
                             exclusive=False, scheduler_options="#SBATCH --comment=parsl-repro-test",
                             worker_init="echo initialised > init.txt", launcher=SimpleLauncher())
    provider.script_dir = str(tmp_path)
    job_id = provider.submit(f"cd {tmp_path} && echo $SLURM_JOB_ID $PARSL_CORES > job.txt && sleep 60", 1, "test")
    assert job_id.isdigit() and job_id in _squeue()
    [script_path] = [p for p in tmp_path.glob("test.*") if not p.name.endswith((".stdout", ".stderr"))]
    script = script_path.read_text()
    for directive in ("--partition=debug", "--time=5", "--mem=1g", "--cpus-per-task=2", "--comment=parsl-repro-test"):
        assert f"#SBATCH {directive}" in script
    assert "--exclusive" not in script
    assert _wait_for_state(provider, job_id, {JobState.RUNNING}) is JobState.RUNNING
    deadline = time.monotonic() + 30
    while not (tmp_path / "job.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (tmp_path / "job.txt").read_text().split() == [job_id, "2"]
    details = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    assert "TimeLimit=00:05:00" in details and "Partition=debug" in details
    assert provider.cancel([job_id]) == [True]
    assert provider.status([job_id])[0].state is JobState.CANCELLED
    deadline = time.monotonic() + 30
    while _squeue().get(job_id, "CG") in ("R", "CG") and job_id in _squeue() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job_id not in _squeue()


def test_a_finished_job_that_squeue_forgets_counts_as_completed(slurm, tmp_path):
    """Accounting is off here, so sacct refuses and the provider asks squeue instead; squeue
    forgets a job MinJobAge (2 s here) after it ends, and a job it no longer lists has ended."""
    provider = SlurmProvider(exclusive=False, launcher=SimpleLauncher())
    provider.script_dir = str(tmp_path)
    job_id = provider.submit("true", 1, "quick")
    deadline = time.monotonic() + 60
    while job_id in _squeue() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job_id not in _squeue()
    assert provider.status([job_id])[0].state is JobState.COMPLETED and provider._use_sacct is False
    assert provider.resources[job_id]["status"].stdout_path.endswith(".stdout")


def test_sbatch_refusing_the_job_raises_submit_exception_with_its_message(slurm, tmp_path):
    provider = SlurmProvider(partition="no-such-partition", exclusive=False)
    provider.script_dir = str(tmp_path)
    with pytest.raises(SubmitException) as caught:
        provider.submit("true", 1, "refused")
    assert caught.value.retcode != 0 and "partition" in caught.value.stderr.lower()


def test_htex_blocks_on_slurm_run_tasks_and_are_cancelled_at_cleanup(slurm, tmp_path):
    provider = SlurmProvider(partition="debug", exclusive=False, init_blocks=1, max_blocks=1, walltime="00:10:00",
                             launcher=SimpleLauncher())
    executor = HighThroughputExecutor(label="slurm_htex", provider=provider, max_workers_per_node=2,
                                      heartbeat_period=1, heartbeat_threshold=5)
    kernel = parsl_repro.load(Config(executors=[executor], run_dir=str(tmp_path / "runinfo")))
    try:
        @python_app
        def where(x):
            import os
            return x * x, os.environ.get("SLURM_JOB_ID")

        results = [f.result(timeout=120) for f in [where(i) for i in range(40)]]
        assert [r[0] for r in results] == [i * i for i in range(40)]
        [job_id] = {r[1] for r in results}
        assert job_id in executor.provider.resources and job_id in _squeue()
    finally:
        kernel.cleanup()
    deadline = time.monotonic() + 30
    while job_id in _squeue() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job_id not in _squeue(), "the block's job outlived cleanup"


def test_mpi_executor_on_slurm_takes_only_the_simple_launcher(slurm):
    for launcher in (SrunLauncher(), AprunLauncher()):
        with pytest.raises(TypeError):
            MPIExecutor(provider=SlurmProvider(launcher=launcher))
    with pytest.raises(ValueError):
        MPIExecutor(mpi_launcher="bad_launcher", provider=SlurmProvider(launcher=SimpleLauncher()))
    assert isinstance(MPIExecutor(provider=SlurmProvider(launcher=SimpleLauncher())).provider.launcher,
                      SimpleLauncher)
    assert "SlurmProvider(" in repr(SlurmProvider())
    assert os.environ["SLURM_CONF"] == slurm
