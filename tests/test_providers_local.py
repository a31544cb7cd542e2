"""LocalProvider against real bash processes: scripts, outputs, exit codes, cancellation of the
whole process tree, and its configuration checks; and the ClusterProvider base that scheduler
providers build on."""
from __future__ import annotations

import os
import signal
import time

import pytest

from parsl_repro.errors import ConfigurationError
from parsl_repro.jobs.states import JobState, JobStatus
from parsl_repro.launchers import SimpleLauncher, SingleNodeLauncher
from parsl_repro.launchers.errors import BadLauncher
from parsl_repro.providers import ClusterProvider, LocalProvider
from parsl_repro.providers.errors import SchedulerMissingArgs, ScriptPathError
from parsl_repro.typecheck import TypeCheckError


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the command name: state, ppid, pgrp; zombies are already dead
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


@pytest.fixture
def provider(tmp_path):
    """A LocalProvider writing to tmp_path; every block it started is gone after the test."""
    p = LocalProvider(launcher=SingleNodeLauncher(debug=False))
    p.script_dir = str(tmp_path / "submit_scripts")
    yield p
    deadline = time.monotonic() + 5
    left = []
    for record in p.resources.values():
        pgid = record["remote_pid"]
        while group_members(pgid) and time.monotonic() < deadline:
            p.status([record["job_id"]])
            time.sleep(0.05)
        if group_members(pgid):
            left.append(pgid)
            os.killpg(pgid, signal.SIGKILL)
    assert not left, f"block process groups left running: {left}"


def wait_terminal(p: LocalProvider, job_id: str, timeout: float = 10) -> JobStatus:
    deadline = time.monotonic() + timeout
    status = p.status([job_id])[0]
    while not status.terminal:
        assert time.monotonic() < deadline, f"job {job_id} still {status} after {timeout} s"
        time.sleep(0.05)
        status = p.status([job_id])[0]
    return status


def run(p: LocalProvider, command: str, tasks_per_node: int = 1) -> JobStatus:
    return wait_terminal(p, p.submit(command, tasks_per_node))


def test_defaults_match_parsl():
    p = LocalProvider()
    assert (p.nodes_per_block, p.init_blocks, p.min_blocks, p.max_blocks) == (1, 1, 0, 1)
    assert (p.worker_init, p.cmd_timeout, p.parallelism, p.move_files) == ("", 30, 1, None)
    assert isinstance(p.launcher, SingleNodeLauncher)
    assert p.label == "local"
    assert p.status_polling_interval == 5
    assert p.script_dir is None and p.resources == {}
    assert p.cores_per_node is None and p.mem_per_node is None
    assert repr(p).startswith("LocalProvider(") and "max_blocks=1" in repr(p)


def test_successful_block_is_completed_with_its_output(provider):
    status = run(provider, "/bin/echo -n magic")
    assert status.state == JobState.COMPLETED and status.terminal
    assert status.exit_code == 0 and status.message is None
    assert status.stdout == "magic"
    assert status.stderr == ""


def test_stderr_goes_to_the_err_file_beside_the_script(provider):
    status = run(provider, "/bin/echo -n magic 1>&2")
    assert status.state == JobState.COMPLETED
    assert status.stdout == "" and status.stderr == "magic"
    assert status.stderr_path.startswith(provider.script_dir)
    assert status.stderr_path.endswith(".sh.err") and os.path.exists(status.stderr_path[:-4])


def test_failing_block_is_failed_with_its_exit_code(provider):
    provider.launcher = SimpleLauncher(debug=False)
    status = run(provider, "echo oops >&2; exit 7")
    assert status.state == JobState.FAILED
    assert status.exit_code == 7
    assert status.stderr_summary == "oops\n"


def test_worker_init_and_jobname_come_before_the_command(provider):
    provider.worker_init = "export GREETING=hello"
    provider.launcher = SimpleLauncher(debug=False)
    job_id = provider.submit('echo "$GREETING $JOBNAME"', 1, job_name="myblock")
    status = wait_terminal(provider, job_id)
    greeting, jobname = status.stdout.split()
    assert greeting == "hello"
    assert jobname.startswith("myblock.")
    assert os.path.basename(provider.resources[job_id]["script_path"]) == jobname + ".sh"


def test_tasks_per_node_starts_that_many_copies(provider):
    status = run(provider, 'echo "copy $1"', tasks_per_node=3)
    assert status.state == JobState.COMPLETED
    assert sorted(status.stdout.splitlines()) == ["copy 1", "copy 2", "copy 3"]


def test_running_block_is_running_until_it_exits(provider):
    job_id = provider.submit("sleep 0.5", 1)
    assert provider.status([job_id])[0].state == JobState.RUNNING
    assert wait_terminal(provider, job_id).state == JobState.COMPLETED


def test_cancel_ends_every_process_of_the_block(provider):
    # two copies, each starting a grandchild: the tree is bash -> subshells -> sleeps
    job_id = provider.submit("sleep 60 & sleep 61; wait", 2)
    pgid = provider.resources[job_id]["remote_pid"]
    deadline = time.monotonic() + 5
    while len(group_members(pgid)) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(group_members(pgid)) >= 5, "the block's processes did not all start"

    assert provider.cancel([job_id]) == [True]
    assert not os.path.exists(f"/proc/{pgid}"), "cancel should reap the block's script (no zombie)"
    status = wait_terminal(provider, job_id)
    assert status.state == JobState.CANCELLED and status.message is None
    deadline = time.monotonic() + 5
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_members(pgid) == []


def test_cancel_of_an_ended_block_succeeds(provider):
    job_id = provider.submit("true", 1)
    wait_terminal(provider, job_id)
    assert provider.cancel([job_id]) == [True]
    assert provider.status([job_id])[0].state == JobState.COMPLETED


def test_block_killed_from_outside_is_cancelled_with_the_signal_named(provider):
    job_id = provider.submit("sleep 60", 1)
    os.killpg(int(job_id), signal.SIGKILL)
    status = wait_terminal(provider, job_id)
    assert status.state == JobState.CANCELLED
    assert "SIGKILL" in status.message


def test_status_answers_in_the_order_asked(provider):
    provider.launcher = SimpleLauncher(debug=False)
    ok = provider.submit("exit 0", 1)
    bad = provider.submit("exit 1", 1)
    wait_terminal(provider, ok)
    wait_terminal(provider, bad)
    assert [s.state for s in provider.status([bad, ok, bad])] == [JobState.FAILED, JobState.COMPLETED,
                                                                   JobState.FAILED]
    assert provider.status([]) == []


def test_submit_without_script_dir_says_how_to_fix_it():
    p = LocalProvider()
    with pytest.raises(ScriptPathError, match="script_dir is not set"):
        p.submit("true", 1)


def test_submit_into_a_file_raises_script_path_error(tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    p = LocalProvider()
    p.script_dir = str(blocker)
    with pytest.raises(ScriptPathError) as info:
        p.submit("true", 1)
    assert str(blocker) in str(info.value)
    assert p.resources == {}


def test_wrong_types_and_negative_counts_are_refused():
    with pytest.raises(TypeCheckError, match="max_blocks"):
        LocalProvider(max_blocks="2")
    with pytest.raises(ConfigurationError, match="min_blocks"):
        LocalProvider(min_blocks=-1)
    with pytest.raises((BadLauncher, TypeCheckError)):
        LocalProvider(launcher=SingleNodeLauncher)
    assert LocalProvider(parallelism=0.5).parallelism == 0.5


# --- ClusterProvider: the base a scheduler provider builds on ------------------------------------------------
class ShellClusterProvider(ClusterProvider):
    """A toy 'scheduler': submit runs the rendered script to completion with execute_wait."""

    TEMPLATE = "#!/bin/bash\n# job ${jobname} on ${nodes} nodes\n${user_script}\n"

    def __init__(self, launcher=None) -> None:
        super().__init__("toy", 1, 0, 0, 1, 1.0, "00:01:00", launcher or SimpleLauncher(debug=False),
                         cmd_timeout=5)
        self.status_queries = 0

    def submit(self, command, tasks_per_node, job_name="parsl.toy"):
        script_path = os.path.join(self.script_dir, job_name + ".submit")
        self._write_submit_script(self.TEMPLATE, script_path, job_name,
                                  {"nodes": self.nodes_per_block,
                                   "user_script": self.launcher(command, tasks_per_node, self.nodes_per_block)})
        code, out, err = self.execute_wait(f"bash {script_path}")
        job_id = str(len(self.resources))
        self.resources[job_id] = {"job_id": job_id, "status": JobStatus(JobState.PENDING), "code": code,
                                  "out": out}
        return job_id

    def _status(self):
        self.status_queries += 1
        for record in self.resources.values():
            state = JobState.COMPLETED if record["code"] == 0 else JobState.FAILED
            record["status"] = JobStatus(state, exit_code=record["code"])

    def cancel(self, job_ids):
        return [True for _ in job_ids]

    @property
    def status_polling_interval(self):
        return 60


def test_cluster_provider_renders_template_and_answers_status_from_resources(tmp_path):
    p = ShellClusterProvider()
    p.script_dir = str(tmp_path)
    job_id = p.submit("echo from-the-job", 1, job_name="j1")
    assert (tmp_path / "j1.submit").read_text() == "#!/bin/bash\n# job j1 on 1 nodes\necho from-the-job\n"
    assert p.resources[job_id]["out"] == "from-the-job\n"
    assert p.status([]) == [] and p.status_queries == 0  # nothing asked, scheduler not queried
    (status,) = p.status([job_id])
    assert status.state == JobState.COMPLETED and p.status_queries == 1
    assert p.label == "toy" and p.walltime == "00:01:00"


def test_cluster_provider_names_a_missing_template_value(tmp_path):
    p = ShellClusterProvider()
    p.script_dir = str(tmp_path)
    p.TEMPLATE = "${user_script} ${account}"
    with pytest.raises(SchedulerMissingArgs, match="account"):
        p.submit("true", 1)


def test_cluster_provider_execute_wait_is_bounded_by_cmd_timeout():
    p = ShellClusterProvider()
    start = time.monotonic()
    code, _, _ = p.execute_wait("sleep 5", timeout=0.2)
    assert code == -1 and time.monotonic() - start < 3
    assert p.execute_wait("echo hi; exit 4") == (4, "hi\n", "")


def test_cluster_provider_refuses_a_launcher_class():
    with pytest.raises(BadLauncher):
        ShellClusterProvider(launcher=SimpleLauncher)
