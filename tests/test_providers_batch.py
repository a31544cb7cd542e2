"""PBSProProvider, TorqueProvider, CondorProvider, LSFProvider and CobaltProvider against
stand-ins of their schedulers' command-line tools; SlurmProvider and GridEngineProvider too, for
what their real-server tests (tests/test_providers_slurm.py, tests/test_providers_gridengine.py)
cannot reach: a remote channel, a missing command, cancel's bookkeeping, a transient state.

PBS, Torque, HTCondor, LSF and Cobalt cannot run here (no server of theirs is installable in
this environment), so each test puts small executable fakes of ``qsub``, ``qstat``, ``qdel``,
``condor_submit``, ``condor_q``, ``condor_rm``, ``bsub``, ``bjobs``, ``bkill``, ``sbatch`` and
``scancel`` first on PATH. A fake records its argv and standard input and prints output captured
from the real scheduler (``tests/data/schedulers/``, each file with a one-line source note; the
one-line answers of ``sbatch`` and Grid Engine's ``qsub -terse`` are written in the tests), so
the providers are exercised through the same shell, channel and parsing as on a real cluster;
what is not exercised is the scheduler's own behaviour (that it accepts the script we write).
"""
from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path
from unittest import mock

import pytest

from parsl_repro.channels.local.local import LocalChannel
from parsl_repro.errors import ConfigurationError
from parsl_repro.jobs.states import JobState
from parsl_repro.launchers import AprunLauncher, SrunLauncher, WrappedLauncher
from parsl_repro.providers import (
    CobaltProvider,
    CondorProvider,
    GridEngineProvider,
    LSFProvider,
    PBSProProvider,
    SlurmProvider,
    TorqueProvider,
)
from parsl_repro.providers.errors import SubmitException
from parsl_repro.providers.grid_engine.grid_engine import qstat_xml_states

DATA = Path(__file__).parent / "data" / "schedulers"


def sample(name: str) -> str:
    """A captured output, without its source note."""
    return "".join(line for line in (DATA / name).read_text().splitlines(keepends=True)
                   if not line.startswith("# source:"))


class FakeScheduler:
    """Executable stand-ins for scheduler commands, in a directory put first on PATH.

    ``answer(command, stdout, stderr, exit_code)`` (re)defines what a command prints and how it
    exits; every call is recorded as its argv (``calls``) and its standard input is kept in
    ``stdin[command]``."""

    def __init__(self, bin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bin_dir = bin_dir
        bin_dir.mkdir()
        self.log = bin_dir / "calls.log"
        self.log.touch()
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def answer(self, command: str, stdout: str = "", stderr: str = "", exit_code: int = 0) -> None:
        (self.bin_dir / f".{command}.out").write_text(stdout)
        (self.bin_dir / f".{command}.err").write_text(stderr)
        script = self.bin_dir / command
        script.write_text(
            "#!/bin/bash\n"
            f"{{ printf '%s\\037' \"$(basename \"$0\")\" \"$@\"; printf '\\036'; }} >> '{self.log}'\n"
            f"cat > '{self.bin_dir}/.{command}.stdin'\n"
            f"cat '{self.bin_dir}/.{command}.out'\n"
            f"cat '{self.bin_dir}/.{command}.err' >&2\n"
            f"exit {exit_code}\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)

    @property
    def calls(self) -> list[list[str]]:
        return [record.split("\x1f")[:-1] for record in self.log.read_text().split("\x1e")[:-1]]

    def stdin(self, command: str) -> str:
        return (self.bin_dir / f".{command}.stdin").read_text()


@pytest.fixture
def sched(tmp_path, monkeypatch) -> FakeScheduler:
    return FakeScheduler(tmp_path / "bin", monkeypatch)


def ready(provider, tmp_path):
    """The provider with its script_dir set, as the kernel does before a block is submitted."""
    provider.script_dir = str(tmp_path / "submit_scripts")
    return provider


def submitted_script(path: str, suffix: str) -> tuple[str, str]:
    """``(script text, job name)`` of the script qsub/bsub/condor_submit was given."""
    return Path(path).read_text(), os.path.basename(path).removesuffix(suffix)


# --- what each provider writes and runs -------------------------------------------------------------

def test_pbspro_submit_renders_select_script_and_runs_qsub(sched, tmp_path):
    """Stand-in qsub (no PBS server here): the script carries the select chunk, walltime, output
    paths, scheduler_options, worker_init and the launcher's text; qsub gets -q/-A; its answer
    is the job id, recorded with the output paths and the script's digest."""
    sched.answer("qsub", stdout=sample("pbspro_qsub.out"))
    provider = ready(PBSProProvider(account="proj42", queue="debug", scheduler_options="#PBS -l filesystems=home",
                                    select_options="ngpus=4", worker_init="module load conda", nodes_per_block=2,
                                    cpus_per_node=64, walltime="01:30:00", launcher=WrappedLauncher("time")),
                     tmp_path)
    job_id = provider.submit("process_worker_pool.py", tasks_per_node=4)

    assert job_id == "2154.edtb-01.mcp.alcf.anl.gov"
    [[command, *args, script_path]] = sched.calls
    assert [command, *args] == ["qsub", "-q", "debug", "-A", "proj42"]
    text, job_name = submitted_script(script_path, "")
    assert job_name.startswith("parsl.")
    assert text == f"""#!/bin/bash

#PBS -S /bin/bash
#PBS -N {job_name}
#PBS -m n
#PBS -l walltime=01:30:00
#PBS -l select=2:ncpus=64:ngpus=4
#PBS -o {script_path}.stdout
#PBS -e {script_path}.stderr
#PBS -l filesystems=home

module load conda

export JOBNAME="{job_name}"

time process_worker_pool.py

"""
    record = provider.resources[job_id]
    assert record["status"].state is JobState.PENDING
    assert (record["job_stdout_path"], record["job_stderr_path"]) == (script_path + ".stdout", script_path + ".stderr")
    assert record["script_sha256"] == hashlib.sha256(text.encode()).hexdigest()


def test_torque_submit_renders_nodes_ppn_script_and_runs_qsub(sched, tmp_path):
    """Stand-in qsub (no Torque server here): scheduler_options come first, then nodes=N:ppn=T,
    walltime and the output files beside the script; the default AprunLauncher's text is given
    the script's directory on the scheduler's host."""
    sched.answer("qsub", stdout=sample("torque_qsub.out"))
    provider = ready(TorqueProvider(account="proj42", queue="medium", scheduler_options="#PBS -l feature=knl",
                                    worker_init="source ~/env/bin/activate", nodes_per_block=2,
                                    walltime="00:45:00"), tmp_path)
    job_id = provider.submit("worker.sh", tasks_per_node=8)

    assert job_id == "6401.gb-ce-kun.els.sara.nl"
    [[command, *args, script_path]] = sched.calls
    assert [command, *args] == ["qsub", "-q", "medium", "-A", "proj42"]
    text, job_name = submitted_script(script_path, ".submit")
    assert job_name.startswith("parsl.parsl.torque.")  # Parsl's naming: "parsl." + the job_name given
    script_dir = os.path.dirname(script_path)
    launcher_text = AprunLauncher()("worker.sh", 8, 2, script_dir)
    assert "aprun -n 16 -N 8" in launcher_text
    assert text == f"""#!/bin/bash

#PBS -l feature=knl
#PBS -S /bin/bash
#PBS -N {job_name}
#PBS -m n
#PBS -l walltime=00:45:00
#PBS -l nodes=2:ppn=8
#PBS -o {script_dir}/{job_name}.submit.stdout
#PBS -e {script_dir}/{job_name}.submit.stderr

source ~/env/bin/activate

export JOBNAME="{job_name}"

{launcher_text}

"""
    assert provider.resources[job_id]["job_stdout_path"] == script_path + ".stdout"


def test_lsf_submit_renders_bsub_script_with_node_request(sched, tmp_path):
    """Stand-in bsub (no LSF here): walltime in minutes, -J, output files, the user's options
    then -P, -q and -nnodes; bsub's "Job <id> is submitted" answer gives the job id."""
    sched.answer("bsub", stdout=sample("lsf_bsub.out"))
    provider = ready(LSFProvider(nodes_per_block=3, walltime="02:05:00", scheduler_options="#BSUB -alloc_flags smt4",
                                 worker_init="module load gcc", project="CSC123", queue="batch",
                                 launcher=WrappedLauncher("env")), tmp_path)
    job_id = provider.submit("worker.sh", tasks_per_node=1)

    assert job_id == "9148559"
    [[command, script_path]] = sched.calls
    assert command == "bsub"
    text, job_name = submitted_script(script_path, ".submit")
    assert job_name.startswith("parsl.lsf.")
    script_dir = os.path.dirname(script_path)
    assert text == f"""#!/bin/bash

#BSUB -W 125
#BSUB -J {job_name}
#BSUB -o {script_dir}/{job_name}.submit.stdout
#BSUB -e {script_dir}/{job_name}.submit.stderr
#BSUB -alloc_flags smt4
#BSUB -P CSC123
#BSUB -q batch
#BSUB -nnodes 3


module load gcc

export JOBNAME="{job_name}"

env worker.sh
"""


def test_lsf_by_cores_asks_for_cores_and_redirects_the_script(sched, tmp_path):
    """Stand-in bsub (no LSF here): with request_by_nodes=False the script asks for cores and a
    ptile, nodes_per_block is derived for the strategy, and bsub_redirection feeds the script
    on standard input ("bsub < script")."""
    sched.answer("bsub", stdout=sample("lsf_bsub.out"))
    provider = ready(LSFProvider(cores_per_block=80, cores_per_node=32, request_by_nodes=False,
                                 bsub_redirection=True, launcher=WrappedLauncher("env")), tmp_path)
    assert provider.nodes_per_block == 3
    provider.submit("worker.sh", tasks_per_node=1)

    assert sched.calls == [["bsub"]]  # the script came on stdin, not as an argument
    script = sched.stdin("bsub")
    assert '#BSUB -n 80\n#BSUB -R "span[ptile=32]"\n' in script
    assert "-nnodes" not in script


def test_lsf_by_cores_without_core_counts_is_a_configuration_error():
    """No scheduler involved: the core request needs both counts (Parsl asserts)."""
    with pytest.raises(ConfigurationError, match="cores_per_block"):
        LSFProvider(request_by_nodes=False, cores_per_block=8)


def test_condor_submit_writes_job_script_and_submit_description(sched, tmp_path):
    """Stand-in condor_submit (no HTCondor pool here): the job script holds worker_init (with
    PARSL_CORES/PARSL_MEMORY_GB) and the launcher's text; the submit description sends it with
    the extra input files, quotes the environment as HTCondor wants, and asks for cores and
    memory; "1 job(s) submitted to cluster C." gives the job id C.0."""
    sched.answer("condor_submit", stdout=sample("condor_submit.out"))
    provider = ready(CondorProvider(nodes_per_block=1, cores_per_slot=4, mem_per_slot=2.0,
                                    environment={"GREETING": "it's \"fine\""}, project="proj42",
                                    scheduler_options="+SingularityImage = \"img.sif\"",
                                    transfer_input_files=["/data/in.txt"], worker_init="source env.sh",
                                    requirements="OpSys == \"LINUX\"", launcher=WrappedLauncher("env")), tmp_path)
    job_id = provider.submit("worker.sh", tasks_per_node=1)

    assert job_id == "118908.0"
    [[command, submit_path]] = sched.calls
    assert command == "condor_submit"
    text, job_name = submitted_script(submit_path, ".submit")
    script_dir = os.path.dirname(submit_path)
    job_script = f"{script_dir}/{job_name}.script"
    assert Path(job_script).read_text() == ("source env.sh\nexport PARSL_MEMORY_GB=2.0\nexport PARSL_CORES=4\n\n"
                                            "env worker.sh\n")
    assert text == f"""
universe                = vanilla
should_transfer_files   = YES
when_to_transfer_output = ON_EXIT_OR_EVICT
Transfer_Executable     = false
transfer_input_files    = {job_script},/data/in.txt
machine_count           = 1
output                  = {script_dir}/{job_name}.stdout
error                   = {script_dir}/{job_name}.stderr
log                     = {script_dir}/{job_name}.log
executable              = /bin/bash
arguments               = {job_name}.script
requirements            = OpSys == "LINUX"
+projectname            = proj42
leave_in_queue          = TRUE
environment             = "GREETING='it''s ""fine""' JOBNAME='{job_name}'"
+SingularityImage = "img.sif"
RequestMemory = 2048.0
RequestCpus = 4


queue

"""
    record = provider.resources[job_id]
    assert record["job_stdout_path"] == f"{script_dir}/{job_name}.stdout"
    assert record["job_script_sha256"] == hashlib.sha256(Path(job_script).read_bytes()).hexdigest()
    assert record["submit_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert record["script_sha256"] == hashlib.sha256(text.encode() + Path(job_script).read_bytes()).hexdigest()
    assert record["cluster_job_ids"] == [job_id]
    assert provider.environment == {"GREETING": "it's \"fine\""}  # the user's dict is not rewritten


def test_cobalt_submit_puts_resources_on_the_command_line(sched, tmp_path):
    """Stand-in qsub (Cobalt's; no Cobalt server here): nodes, minutes, queue, account and the
    output prefix go on qsub's command line; the script has scheduler_options, worker_init, the
    node file listing and the launcher's text; the id is qsub's last line, after Theta's
    routing notices."""
    sched.answer("qsub", stdout=sample("cobalt_qsub.out"))
    provider = ready(CobaltProvider(nodes_per_block=4, walltime="01:00:00", account="Catalyst",
                                    queue="debug-cache-quad",
                                    scheduler_options="#COBALT --attrs mcdram=cache:numa=quad",
                                    worker_init="module load miniconda-3", launcher=WrappedLauncher("env")), tmp_path)
    job_id = provider.submit("worker.sh", tasks_per_node=1)

    assert job_id == "348463"
    [[*args, prefix, script_path]] = sched.calls
    assert args == ["qsub", "-n", "4", "-t", "60", "-q", "debug-cache-quad", "-A", "Catalyst", "-O"]
    assert prefix == script_path
    text, job_name = submitted_script(script_path, ".submit")
    assert text == f"""#!/bin/bash -e
#COBALT --attrs mcdram=cache:numa=quad

module load miniconda-3

echo "Starting Cobalt job script"

echo "----Cobalt Nodefile: -----"
cat $COBALT_NODEFILE
echo "--------------------------"

export JOBNAME="{job_name}"

env worker.sh

echo "End of Cobalt job"
"""
    assert provider.resources[job_id]["job_stdout_path"] == script_path + ".output"


class _HostDirChannel(LocalChannel):
    """A channel whose 'host' is another directory of this machine: commands run here, but
    scripts are copied to ``script_dir`` as they would be to a login node."""

    @property
    def is_local(self) -> bool:
        return False


SUBMIT_ANSWERS = {
    "slurm": (SlurmProvider, "sbatch", "Submitted batch job 77\n"),
    "torque": (TorqueProvider, "qsub", sample("torque_qsub.out")),
    "pbspro": (PBSProProvider, "qsub", sample("pbspro_qsub.out")),
    "lsf": (LSFProvider, "bsub", sample("lsf_bsub.out")),
    "cobalt": (CobaltProvider, "qsub", sample("cobalt_qsub.out")),
    "condor": (CondorProvider, "condor_submit", sample("condor_submit.out")),
    "gridengine": (GridEngineProvider, "qsub", "77\n"),  # qsub -terse: the job id alone
}
"""Per provider: its class, its submit command and an answer naming one job. Slurm's and Grid
Engine's are the answers their real servers give in tests/test_providers_slurm.py and
tests/test_providers_gridengine.py."""


def remote(cls, tmp_path, **kwargs):
    """``cls`` ready to submit through a channel whose host directory is ``tmp_path/on_host``."""
    return ready(cls(channel=_HostDirChannel(script_dir=str(tmp_path / "on_host")), **kwargs), tmp_path)


@pytest.mark.parametrize("case", sorted(SUBMIT_ANSWERS))
def test_scripts_and_output_paths_are_the_scheduler_hosts(sched, tmp_path, case):
    """Stand-in submit command with a channel whose host directory differs from script_dir (no
    remote host here), and SrunLauncher, whose text names the directory its command file goes
    to: every file put on the host names the host's directory and never the local run
    directory; the submit command gets the host's copy; the local copies stay; the recorded
    output paths are the host's, and the status names no file this process would open."""
    cls, command, answer = SUBMIT_ANSWERS[case]
    sched.answer(command, stdout=answer)
    host_dir = tmp_path / "on_host"
    provider = remote(cls, tmp_path, launcher=SrunLauncher())
    job_id = provider.submit("worker.sh", tasks_per_node=1)

    [[_, *_, submitted]] = sched.calls
    assert os.path.dirname(submitted) == str(host_dir)
    pushed = sorted(host_dir.iterdir())
    assert pushed and all(path.read_text() == (Path(provider.script_dir) / path.name).read_text() for path in pushed)
    assert all(provider.script_dir not in path.read_text() for path in pushed)
    assert any(f'SCRIPT_DIR="{host_dir}"' in path.read_text() for path in pushed)  # the launcher's command file
    record = provider.resources[job_id]
    assert record["job_stdout_path"].startswith(f"{host_dir}/") and record["job_stderr_path"].startswith(f"{host_dir}/")
    assert (record["status"].stdout_path, record["status"].stderr_path) == (None, None)


def test_a_failed_remote_block_s_output_is_pulled_into_the_local_script_dir(sched, tmp_path):
    """Stand-in bsub and bjobs (no LSF here), channel whose host is another directory: when the
    block fails, both output files are copied from the host into script_dir and the status
    names the copies, which the executor's error handler can read; the record keeps the host's
    paths."""
    sched.answer("bsub", stdout=sample("lsf_bsub.out"))
    provider = remote(LSFProvider, tmp_path, launcher=WrappedLauncher("env"))
    job_id = provider.submit("worker.sh", tasks_per_node=1)
    record = provider.resources[job_id]
    Path(record["job_stdout_path"]).write_text("worker pool starting\n")  # what the job wrote on the host
    Path(record["job_stderr_path"]).write_text("ModuleNotFoundError: No module named 'parsl_repro'\n")

    sched.answer("bjobs", stdout=f"{job_id} RUN\n")
    assert provider.status([job_id])[0].stdout_path is None  # running: nothing to read yet
    sched.answer("bjobs", stdout=f"{job_id} EXIT\n")
    [status] = provider.status([job_id])

    assert status.state is JobState.FAILED
    assert os.path.dirname(status.stdout_path) == provider.script_dir
    assert os.path.dirname(status.stderr_path) == provider.script_dir
    assert status.stdout == "worker pool starting\n" and "ModuleNotFoundError" in status.stderr_summary
    assert record["job_stdout_path"].startswith(str(tmp_path / "on_host"))


@pytest.mark.parametrize("lsf_state, state", [("DONE", JobState.COMPLETED), ("EXIT", JobState.FAILED)])
def test_a_remote_block_s_output_is_not_named_unless_pulled(sched, tmp_path, caplog, lsf_state, state):
    """Stand-in bsub/bjobs, channel whose host is another directory: a completed block's output
    is not copied, and a failed block that wrote no output (it never started) gets no paths;
    neither case names a host path."""
    sched.answer("bsub", stdout=sample("lsf_bsub.out"))
    provider = remote(LSFProvider, tmp_path, launcher=WrappedLauncher("env"))
    job_id = provider.submit("worker.sh", tasks_per_node=1)
    sched.answer("bjobs", stdout=f"{job_id} {lsf_state}\n")
    with caplog.at_level(logging.DEBUG, logger="parsl_repro.providers.cluster_provider"):
        [status] = provider.status([job_id])
    assert status.state is state
    assert (status.stdout_path, status.stderr_path) == (None, None)
    assert not list(Path(provider.script_dir).glob("*.stdout"))
    assert any("Could not copy job output" in r.getMessage() for r in caplog.records) == (state is JobState.FAILED)


def test_condor_sends_input_files_through_a_remote_channel(sched, tmp_path):
    """Stand-in condor_submit, channel whose host is another directory: each local input file is
    copied to a directory of the block's on the host, and the submit description names those
    copies; a URL is left for HTCondor to fetch."""
    sched.answer("condor_submit", stdout=sample("condor_submit.out"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "in.txt").write_text("input\n")
    provider = remote(CondorProvider, tmp_path, transfer_input_files=[str(tmp_path / "data" / "in.txt"),
                                                                      "https://example.org/table.csv"])
    provider.submit("worker.sh", tasks_per_node=1)

    [[_, submitted]] = sched.calls
    [listed] = [line for line in Path(submitted).read_text().splitlines() if line.startswith("transfer_input_files")]
    job_script, input_copy, url = listed.split("=", 1)[1].strip().split(",")
    assert job_script.startswith(str(tmp_path / "on_host") + "/") and url == "https://example.org/table.csv"
    assert os.path.dirname(os.path.dirname(input_copy)) == str(tmp_path / "on_host")
    assert Path(input_copy).read_text() == "input\n"


def test_condor_refuses_a_directory_input_through_a_remote_channel(sched, tmp_path):
    """No scheduler involved: a channel copies files only, so a directory in
    transfer_input_files cannot reach a remote host; the error names it before anything is
    submitted."""
    sched.answer("condor_submit", stdout=sample("condor_submit.out"))
    provider = remote(CondorProvider, tmp_path, transfer_input_files=[str(tmp_path)])
    with pytest.raises(SubmitException, match="is not a file on this machine"):
        provider.submit("worker.sh", tasks_per_node=1)
    assert sched.calls == [] and provider.resources == {}


# --- states --------------------------------------------------------------------------------------

TORQUE_STATES = {f"64{n:02d}.gb-ce-kun.els.sara.nl": state for n, state in enumerate(
    [JobState.RUNNING, JobState.RUNNING, JobState.COMPLETED, JobState.COMPLETED, JobState.COMPLETED,
     JobState.COMPLETED, JobState.HELD, JobState.HELD, JobState.HELD, JobState.PENDING, JobState.PENDING,
     JobState.PENDING], start=1)}
PBSPRO_STATES = {f"{n}.edtb-01.mcp.alcf.anl.gov": state for n, state in zip(range(2154, 2166), [
    JobState.COMPLETED, JobState.COMPLETED, JobState.RUNNING, JobState.RUNNING, JobState.PENDING, JobState.PENDING,
    JobState.PENDING, JobState.HELD, JobState.HELD, JobState.HELD, JobState.COMPLETED, JobState.COMPLETED],
    strict=True)}
CONDOR_STATES = {"34524642.0": JobState.RUNNING, "34524643.0": JobState.PENDING, "34524644.0": JobState.CANCELLED,
                 "34524645.0": JobState.COMPLETED, "34524646.0": JobState.FAILED, "34524647.0": JobState.FAILED}
LSF_STATES = {"9148559": JobState.RUNNING, "9148560": JobState.PENDING, "9148561": JobState.COMPLETED,
              "9148562": JobState.FAILED, "9148563": JobState.CANCELLED, "9148564": JobState.CANCELLED,
              "9148565": JobState.CANCELLED}
COBALT_STATES = {"348463": JobState.PENDING, "348464": JobState.PENDING, "348465": JobState.RUNNING,
                 "348466": JobState.COMPLETED, "348467": JobState.COMPLETED}
GRIDENGINE_STATES = {"1": JobState.RUNNING, "2": JobState.RUNNING, "3": JobState.PENDING}

STATUS_CASES = {
    "torque": (TorqueProvider, "qstat", "torque_qstat.out", TORQUE_STATES, lambda ids: ["qstat", *ids]),
    "pbspro": (PBSProProvider, "qstat", "pbspro_qstat.json", PBSPRO_STATES,
               lambda ids: ["qstat", "-x", "-f", "-F", "json", *ids]),
    "condor": (CondorProvider, "condor_q", "condor_q.out", CONDOR_STATES,
               lambda ids: ["condor_q", *ids, "-af:jr", "JobStatus"]),
    "lsf": (LSFProvider, "bjobs", "lsf_bjobs.out", LSF_STATES,
            lambda ids: ["bjobs", "-noheader", "-o", "jobid stat", *ids]),
    "cobalt": (CobaltProvider, "qstat", "cobalt_qstat.out", COBALT_STATES,
               lambda ids: ["qstat", "-u", os.environ["USER"]]),
    "gridengine": (GridEngineProvider, "qstat", "gridengine_qstat.xml", GRIDENGINE_STATES,
                   lambda ids: ["qstat", "-xml"]),
}


def recorded(provider, job_ids):
    """The provider with ``job_ids`` recorded as just-submitted (PENDING) blocks."""
    for job_id in job_ids:
        provider._record_job(job_id, None, f"/out/{job_id}.stdout", f"/out/{job_id}.stderr")
    return provider


@pytest.mark.parametrize("case", sorted(STATUS_CASES))
def test_every_scheduler_state_maps_through_the_table(sched, monkeypatch, case):
    """Stand-in status command printing captured output with one job in each of the scheduler's
    states (no scheduler here): each job gets its state from Parsl's table, with its output
    paths, from one query naming the active jobs."""
    monkeypatch.setenv("USER", "user1")
    cls, command, answer, expected, argv = STATUS_CASES[case]
    sched.answer(command, stdout=sample(answer))
    provider = recorded(cls(), list(expected))
    statuses = provider.status(list(expected))

    assert {job_id: s.state for job_id, s in zip(expected, statuses, strict=True)} == expected
    assert statuses[0].stdout_path == f"/out/{next(iter(expected))}.stdout"
    assert sched.calls == [argv(list(expected))]


def test_grid_engine_transferring_state_t_is_running_not_failed(sched):
    """Captured ``qstat -xml`` of the test cell, one job's state set to ``t`` (Grid Engine shows
    it only for a moment while starting the job, so the real-server test cannot be sure to see
    it): the parser reads it, and the block is RUNNING, not FAILED (terminal, and lost)."""
    assert qstat_xml_states(sample("gridengine_qstat.xml")) == {"1": "r", "2": "t", "3": "qw"}
    sched.answer("qstat", stdout=sample("gridengine_qstat.xml"))
    provider = recorded(GridEngineProvider(), ["2", "4"])
    transferring, ended = provider.status(["2", "4"])
    assert transferring.state is JobState.RUNNING and not transferring.terminal
    assert ended.state is JobState.COMPLETED and "no longer lists" in ended.message


def test_terminal_jobs_are_not_asked_about_again(sched):
    """Stand-in bjobs (no LSF here): once a job is terminal, the next poll leaves it out."""
    sched.answer("bjobs", stdout=sample("lsf_bjobs.out"))
    provider = recorded(LSFProvider(), ["9148559", "9148561"])
    provider.status(["9148559", "9148561"])
    provider.status(["9148559", "9148561"])
    assert sched.calls[1] == ["bjobs", "-noheader", "-o", "jobid stat", "9148559"]


def test_pbspro_keeps_the_exit_status_of_finished_jobs(sched):
    """Stand-in qstat -x -F json (no PBS here): a finished job's Exit_status and comment travel
    with its COMPLETED state (271: ended by a signal, e.g. the walltime)."""
    sched.answer("qstat", stdout=sample("pbspro_qstat.json"))
    provider = recorded(PBSProProvider(), ["2154.edtb-01.mcp.alcf.anl.gov", "2155.edtb-01.mcp.alcf.anl.gov"])
    ok, killed = provider.status(["2154.edtb-01.mcp.alcf.anl.gov", "2155.edtb-01.mcp.alcf.anl.gov"])
    assert (ok.exit_code, killed.exit_code) == (0, 271)
    assert "finished" in ok.message


@pytest.mark.parametrize("cls, command, stdout, stderr, forgotten, listed", [
    (TorqueProvider, "qstat", sample("torque_qstat.out"), sample("torque_qstat_unknown.err"),
     "6413.gb-ui-kun.els.sara.nl", "6401.gb-ce-kun.els.sara.nl"),
    (PBSProProvider, "qstat", sample("pbspro_qstat.json"), "qstat: Unknown Job Id 2166.edtb-01.mcp.alcf.anl.gov\n",
     "2166.edtb-01.mcp.alcf.anl.gov", "2156.edtb-01.mcp.alcf.anl.gov"),
    (LSFProvider, "bjobs", sample("lsf_bjobs.out"), sample("lsf_bjobs_unknown.err"), "9148566", "9148559"),
])
def test_a_job_the_scheduler_forgot_has_completed(sched, cls, command, stdout, stderr, forgotten, listed):
    """Stand-in status command that exits non-zero because one job asked about is unknown, as
    the real ones do once a job has left the server (no scheduler here): that job is COMPLETED,
    the others are read from the output as usual."""
    sched.answer(command, stdout=stdout, stderr=stderr, exit_code=153 if command == "qstat" else 255)
    provider = recorded(cls(), [forgotten, listed])
    gone, running = provider.status([forgotten, listed])
    assert gone.state is JobState.COMPLETED and "no longer lists" in gone.message
    assert running.state is JobState.RUNNING


@pytest.mark.parametrize("case", sorted(STATUS_CASES))
def test_a_failed_status_query_keeps_the_states_and_warns(sched, monkeypatch, caplog, case):
    """Stand-in status command that cannot reach its server (no scheduler here): no state
    changes, and a warning quotes the command's error; the next poll asks again."""
    monkeypatch.setenv("USER", "user1")
    cls, command, answer, expected, _ = STATUS_CASES[case]
    sched.answer(command, stderr="Connection refused: cannot connect to server pbs01\n", exit_code=2)
    job_ids = list(expected)[:2]
    provider = recorded(cls(), job_ids)
    with caplog.at_level(logging.WARNING):
        statuses = provider.status(job_ids)
    assert [s.state for s in statuses] == [JobState.PENDING, JobState.PENDING]
    assert any("cannot connect to server pbs01" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)
    sched.answer(command, stdout=sample(answer))
    assert provider.status(job_ids)[0].state is expected[job_ids[0]]


@pytest.mark.parametrize("cls, command, stdout, job_id, shown", [
    (TorqueProvider, "qstat", "Job ID  Name  User  Time Use S Queue\n---- ---- ---- ---- - ----\n"
                              "7.srv  w  u  00:00:00 Z batch\n", "7.srv", "'Z'"),
    (PBSProProvider, "qstat", '{"Jobs": {"7.srv": {"job_state": "M"}}}', "7.srv", "'M'"),
    (CondorProvider, "condor_q", "7.0 7\n", "7.0", "'7'"),
    (LSFProvider, "bjobs", "7 ZOMBI\n", "7", "'ZOMBI'"),
    (CobaltProvider, "qstat", "JobID User WallTime Nodes State Location\n====\n7 u 00:10:00 1 user_hold None\n",
     "7", "'user_hold'"),
    (GridEngineProvider, "qstat", "<job_info><queue_info><job_list><JB_job_number>7</JB_job_number>"
                                  "<state>Rq</state></job_list></queue_info></job_info>", "7", "'rq'"),
])
def test_an_unknown_scheduler_state_is_unknown_with_a_warning(sched, caplog, cls, command, stdout, job_id, shown):
    """Stand-in status command reporting a state missing from the table (no scheduler here)."""
    sched.answer(command, stdout=stdout)
    provider = recorded(cls(), [job_id])
    with caplog.at_level(logging.WARNING):
        [status] = provider.status([job_id])
    assert status.state is JobState.UNKNOWN
    assert any(shown in r.getMessage() and job_id in r.getMessage() for r in caplog.records)


# --- cancel --------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls, job_ids, argv", [
    (TorqueProvider, ["6401.srv", "6402.srv"], [["qdel", "6401.srv", "6402.srv"]]),
    (PBSProProvider, ["2154.srv", "2155.srv"], [["qdel", "2154.srv", "2155.srv"]]),
    (CondorProvider, ["118908.0", "118909.0"], [["condor_rm", "118908.0", "118909.0"],
                                                ["condor_rm", "-forcex", "118908.0", "118909.0"]]),
    (LSFProvider, ["9148559", "9148560"], [["bkill", "9148559", "9148560"]]),
    (CobaltProvider, ["348463", "348464"], [["qdel", "348463", "348464"]]),
    (SlurmProvider, ["4001", "4002"], [["scancel", "4001", "4002"]]),
    (GridEngineProvider, ["5", "6"], [["qdel", "5", "6"]]),
])
def test_cancel_runs_the_schedulers_cancel_command(sched, cls, job_ids, argv):
    """Stand-in cancel command (no scheduler here): one call naming every job; accepted, the
    jobs are CANCELLED and keep their output paths; refused, cancel answers False and the
    states stay."""
    command = argv[0][0]
    sched.answer(command, exit_code=0)
    provider = recorded(cls(), job_ids)
    assert provider.cancel(job_ids) == [True, True]
    assert sched.calls == argv
    assert [provider.resources[j]["status"].state for j in job_ids] == [JobState.CANCELLED] * 2
    assert [provider.resources[j]["status"].stdout_path for j in job_ids] == [f"/out/{j}.stdout" for j in job_ids]

    refused = recorded(cls(), job_ids)
    sched.answer(command, stderr="qdel: Unauthorized Request\n", exit_code=159)
    assert refused.cancel(job_ids) == [False, False]
    assert [refused.resources[j]["status"].state for j in job_ids] == [JobState.PENDING] * 2


def test_cancelling_a_condor_block_removes_every_job_its_submission_queued(sched, tmp_path, caplog):
    """Stand-in condor_submit answering that scheduler_options queued three jobs (no HTCondor
    here): the block is one job id, a warning says so, and cancelling the block removes all
    three, so none outlives the run."""
    sched.answer("condor_submit", stdout="Submitting job(s)...\n3 job(s) submitted to cluster 5120.\n")
    provider = ready(CondorProvider(scheduler_options="queue 2"), tmp_path)
    with caplog.at_level(logging.WARNING):
        job_id = provider.submit("worker.sh", tasks_per_node=1)
    assert job_id == "5120.0" and list(provider.resources) == ["5120.0"]
    assert any("queued 3 jobs" in r.getMessage() for r in caplog.records)

    sched.answer("condor_rm")
    assert provider.cancel([job_id]) == [True]
    assert sched.calls[1:] == [["condor_rm", "5120.0", "5120.1", "5120.2"],
                               ["condor_rm", "-forcex", "5120.0", "5120.1", "5120.2"]]
    assert provider.resources[job_id]["status"].state is JobState.CANCELLED


# --- failures at submit --------------------------------------------------------------------------

@pytest.mark.parametrize("cls, command, stderr, exit_code", [
    (TorqueProvider, "qsub", "qsub: submit error (Unknown queue MSG=requested queue not found)\n", 1),
    (PBSProProvider, "qsub", "qsub: Unknown queue\n", 170),
    (CondorProvider, "condor_submit", "ERROR: Can't find address of local schedd\n", 1),
    (LSFProvider, "bsub", "debugq: No such queue. Job not submitted.\n", 255),
    (CobaltProvider, "qsub", "Command failed: queue debugq not found\n", 1),
    (SlurmProvider, "sbatch", "sbatch: error: Batch job submission failed: Invalid partition name specified\n", 1),
    (GridEngineProvider, "qsub", 'Unable to run job: Job was rejected because job requests unknown queue "debugq".\n'
                                 "Exiting.\n", 1),
])
def test_a_rejected_submission_raises_with_the_schedulers_message(sched, tmp_path, cls, command, stderr, exit_code):
    """Stand-in submit command that refuses the job as the real one does for an unknown queue
    (no scheduler here): SubmitException carries its message, stderr and exit code."""
    sched.answer(command, stderr=stderr, exit_code=exit_code)
    provider = ready(cls(), tmp_path)
    with pytest.raises(SubmitException) as raised:
        provider.submit("worker.sh", tasks_per_node=1)
    assert raised.value.retcode == exit_code
    assert raised.value.stderr == stderr
    assert stderr.strip() in str(raised.value)
    assert provider.resources == {}


@pytest.mark.parametrize("cls, command, stdout", [
    (TorqueProvider, "qsub", ""),
    (CondorProvider, "condor_submit", "Submitting job(s).\n"),
    (LSFProvider, "bsub", "Request aborted by esub.\n"),
    (CobaltProvider, "qsub", "Job routed to queue \"debug-cache-quad\".\n"),
    (SlurmProvider, "sbatch", "sbatch: Submitted to the void\n"),
    (GridEngineProvider, "qsub", ""),
])
def test_a_submission_answer_without_a_job_id_raises(sched, tmp_path, cls, command, stdout):
    """Stand-in submit command that exits 0 but names no job (no scheduler here)."""
    sched.answer(command, stdout=stdout)
    provider = ready(cls(), tmp_path)
    with pytest.raises(SubmitException, match="job") as raised:
        provider.submit("worker.sh", tasks_per_node=1)
    assert raised.value.retcode == 0 and provider.resources == {}


@pytest.mark.parametrize("cls, command", [
    (TorqueProvider, "qsub"), (PBSProProvider, "qsub"), (CondorProvider, "condor_submit"), (LSFProvider, "bsub"),
    (CobaltProvider, "qsub"), (SlurmProvider, "sbatch"), (GridEngineProvider, "qsub"),
])
def test_a_missing_scheduler_command_is_a_clear_submit_error(tmp_path, monkeypatch, cls, command):
    """An empty directory as the whole PATH stands in for a machine without the scheduler's
    tools: the error names the command and says where to run instead."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    provider = ready(cls(), tmp_path)
    with pytest.raises(SubmitException, match=f"{command} was not found on localhost") as raised:
        provider.submit("worker.sh", tasks_per_node=1)
    assert raised.value.retcode == 127 and f"the {cls.scheduler_name} commands are on PATH" in str(raised.value)


def test_a_submit_command_that_hangs_is_a_submit_error_naming_the_timeout(tmp_path):
    """execute_wait's answer for a command killed at cmd_timeout (exit code -1), given by a mock
    (no scheduler here): the error says it timed out, not that the command failed."""
    provider = ready(TorqueProvider(cmd_timeout=5), tmp_path)
    provider.execute_wait = mock.Mock(return_value=(-1, "", ""))
    with pytest.raises(SubmitException, match="did not finish within cmd_timeout=5 s"):
        provider.submit("worker.sh", tasks_per_node=1)


@pytest.mark.parametrize("cls", [TorqueProvider, PBSProProvider, CondorProvider, LSFProvider, CobaltProvider,
                                 SlurmProvider, GridEngineProvider])
@pytest.mark.parametrize("walltime", ["90 minutes", "1h"])
def test_a_malformed_walltime_fails_at_construction(cls, walltime):
    """No scheduler involved: the walltime is checked when the provider is built."""
    with pytest.raises(ConfigurationError, match="walltime"):
        cls(walltime=walltime)


@pytest.mark.parametrize("cls", [TorqueProvider, PBSProProvider, LSFProvider, CobaltProvider])
def test_walltimes_these_schedulers_would_misread_are_refused(cls):
    """No scheduler involved: Slurm's day form and a bare number are not HH:MM:SS, which is the
    only form PBS, Torque, LSF (in minutes) and Cobalt all read as meant."""
    for walltime in ("1-00:00:00", "30"):
        with pytest.raises(ConfigurationError, match=f"{cls.__name__}: field 'walltime'"):
            cls(walltime=walltime)


def test_parameters_and_defaults_are_parsls():
    """No scheduler involved: labels, launchers, polling interval and the defaults users rely on."""
    assert [(p.label, type(p.launcher).__name__, p.status_polling_interval, p.cmd_timeout, p.walltime)
            for p in (PBSProProvider(), TorqueProvider(), CondorProvider(), LSFProvider(), CobaltProvider())] == [
        ("pbspro", "SingleNodeLauncher", 60, 120, "00:20:00"), ("torque", "AprunLauncher", 60, 120, "00:20:00"),
        ("condor", "SingleNodeLauncher", 60, 60, "00:10:00"), ("LSF", "SingleNodeLauncher", 60, 120, "00:10:00"),
        ("cobalt", "AprunLauncher", 60, 10, "00:10:00")]
    assert CobaltProvider().init_blocks == 0 and isinstance(PBSProProvider(), TorqueProvider)
    assert PBSProProvider("acct", "q").queue == "q"  # positional order: account, queue, ...


# --- Parsl's own provider tests, against ours ----------------------------------------------------

def test_parsl_pbspro_template_basic(tmp_path):
    """Parsl's parsl/tests/test_providers/test_pbspro_template.py, unchanged in substance: with
    execute_wait mocked to answer a job id, submit returns it and records the output paths."""
    provider = PBSProProvider(queue="debug")
    provider.script_dir = tmp_path
    job_id = "57001"
    provider.execute_wait = mock.Mock(spec=PBSProProvider.execute_wait)
    provider.execute_wait.return_value = (0, job_id, "")
    result_job_id = provider.submit("test", tasks_per_node=1)
    assert job_id == result_job_id
    provider.execute_wait.assert_called()
    assert job_id in provider.resources
    job_info = provider.resources[job_id]
    assert "job_stdout_path" in job_info
    assert "job_stderr_path" in job_info
