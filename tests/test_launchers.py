"""Launchers render bash that starts the right number of worker copies.

The local launchers' scripts are run with bash (and real GNU parallel); the scheduler launchers'
scripts are run against stub srun/aprun/jsrun/mpiexec/mpirun programs that record exactly how
they were called and then run the command file they were handed.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from parsl_repro.launchers import (
    AprunLauncher,
    GnuParallelLauncher,
    JsrunLauncher,
    MpiExecLauncher,
    MpiRunLauncher,
    SimpleLauncher,
    SingleNodeLauncher,
    SrunLauncher,
    SrunMPILauncher,
    WrappedLauncher,
)
from parsl_repro.launchers.base import Launcher
from parsl_repro.launchers.errors import BadLauncher
from parsl_repro.typecheck import ConfigurationTypeError

ALL_LAUNCHERS = [
    SimpleLauncher(), SingleNodeLauncher(), GnuParallelLauncher(), MpiExecLauncher(), MpiRunLauncher(),
    SrunLauncher(), SrunMPILauncher(), AprunLauncher(), JsrunLauncher(), WrappedLauncher("time"),
]

STUB = """#!/bin/bash
# Records its name and arguments, one per line, then runs the command file it was handed.
record=$(mktemp -p "$STUB_CALLS" call.XXXXXX)
printf '%s\\n' "$(basename "$0")" "$@" > "$record"
exec bash "${@: -1}"
"""

PARALLEL_STUB = """#!/bin/bash
# Records its arguments, then runs each command line read from stdin, one after another.
record=$(mktemp -p "$STUB_CALLS" call.XXXXXX)
printf '%s\\n' "$(basename "$0")" "$@" > "$record"
while IFS= read -r line; do bash -c "$line"; done
"""


def run_bash(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=20)


def host_cores() -> str:
    return subprocess.run(["getconf", "_NPROCESSORS_ONLN"], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def stubs(tmp_path):
    """A PATH with stub schedulers first, and a function returning the calls they recorded."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    calls.mkdir()
    for name in ["srun", "aprun", "jsrun", "mpiexec", "mpirun", "parallel"]:
        stub = bin_dir / name
        stub.write_text(PARALLEL_STUB if name == "parallel" else STUB)
        stub.chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_CALLS": str(calls),
           "JOBNAME": "job", "SLURM_JOB_NAME": "job"}

    def recorded() -> list[list[str]]:
        return sorted(p.read_text().splitlines() for p in calls.iterdir())
    return env, recorded


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


# --- SingleNodeLauncher ------------------------------------------------------------------------

def test_single_node_launcher_runs_every_copy_at_once_with_cores_and_its_number(tmp_path):
    # Each copy waits (up to 5 s) until all copies have started, and fails otherwise: copies run
    # one after another would never all have started.
    command = """touch "started.$1"
for i in $(seq 100); do
    [ "$(ls started.* | wc -l)" -ge "$WORKERCOUNT" ] && break
    sleep 0.05
done
[ "$(ls started.* | wc -l)" -ge "$WORKERCOUNT" ]
echo "$1 $CORES $WORKERCOUNT" > "worker.$1"
"""
    script = SingleNodeLauncher(fail_on_any=True)(command, tasks_per_node=2, nodes_per_block=2)
    result = run_bash(script, tmp_path)

    assert result.returncode == 0, result.stderr
    cores = host_cores()
    assert sorted(p.name for p in tmp_path.glob("worker.*")) == ["worker.1", "worker.2", "worker.3", "worker.4"]
    for n in range(1, 5):
        assert (tmp_path / f"worker.{n}").read_text() == f"{n} {cores} 4\n"
    assert f"Found cores : {cores}" in result.stdout
    assert result.stdout.count("Launching worker:") == 4


@pytest.mark.parametrize("fail_on_any, failing_copies, expected_status", [
    (False, 0, 0),
    (False, 1, 0),
    (False, 3, 1),
    (True, 0, 0),
    (True, 1, 1),
])
def test_single_node_launcher_exit_status_waits_for_all_and_follows_fail_on_any(
        tmp_path, fail_on_any, failing_copies, expected_status):
    # The failing copies end at once; the others finish later, and must still be waited for.
    command = f"""if [ "$1" -le {failing_copies} ]; then exit 7; fi
sleep 0.3
touch "done.$1"
"""
    script = SingleNodeLauncher(fail_on_any=fail_on_any)(command, tasks_per_node=3, nodes_per_block=1)
    result = run_bash(script, tmp_path)

    assert result.returncode == expected_status, result.stderr
    assert sorted(p.name for p in tmp_path.glob("done.*")) == [f"done.{n}" for n in range(failing_copies + 1, 4)]
    assert "All workers done" in result.stdout


def test_single_node_launcher_without_debug_prints_nothing_and_exits_zero(tmp_path):
    script = SingleNodeLauncher(debug=False)("touch ran.$1", tasks_per_node=2, nodes_per_block=1)
    result = run_bash(script, tmp_path)

    assert (result.returncode, result.stdout) == (0, "")
    assert sorted(p.name for p in tmp_path.glob("ran.*")) == ["ran.1", "ran.2"]
    assert "echo" not in script


# --- SimpleLauncher and WrappedLauncher ---------------------------------------------------------

def test_simple_launcher_returns_the_command_unchanged_and_it_runs_once(tmp_path):
    command = "echo ran >> out.txt"
    script = SimpleLauncher()(command, tasks_per_node=4, nodes_per_block=1)
    assert script == command

    assert run_bash(script, tmp_path).returncode == 0
    assert lines_of(tmp_path / "out.txt") == ["ran"]


def test_simple_launcher_warns_that_extra_nodes_get_no_copy(caplog):
    with caplog.at_level(logging.WARNING, logger="parsl_repro.launchers.launchers"):
        assert SimpleLauncher()("worker", tasks_per_node=1, nodes_per_block=1) == "worker"
        assert caplog.records == []
        assert SimpleLauncher()("worker", tasks_per_node=1, nodes_per_block=3) == "worker"
    assert "3 nodes per block" in caplog.text


def test_wrapped_launcher_prepends_and_runs_the_command_under_the_prefix(tmp_path, caplog):
    launcher = WrappedLauncher("env GREETING=hello")
    script = launcher("""sh -c 'echo "$GREETING" > out.txt'""", tasks_per_node=1, nodes_per_block=1)
    assert script == """env GREETING=hello sh -c 'echo "$GREETING" > out.txt'"""

    assert run_bash(script, tmp_path).returncode == 0
    assert lines_of(tmp_path / "out.txt") == ["hello"]

    with caplog.at_level(logging.WARNING):
        launcher("worker", tasks_per_node=2, nodes_per_block=2)
    assert "tasks per node" in caplog.text and "nodes per block" in caplog.text


# --- GnuParallelLauncher ------------------------------------------------------------------------

@pytest.fixture
def gnu_parallel_home(tmp_path):
    """A HOME where ``parallel --record-env`` has been run, as ``--env _`` requires."""
    if shutil.which("parallel") is None:  # installed on demand, as the CI machine starts bare
        script = Path(__file__).resolve().parent.parent / "scripts" / "system-packages.sh"
        subprocess.run(["bash", str(script), "parallel:parallel"], check=True, timeout=600)
    home = tmp_path / "home"
    (home / ".parallel").mkdir(parents=True)
    subprocess.run(["parallel", "--record-env"], env={**os.environ, "HOME": str(home)},
                   stdin=subprocess.DEVNULL, check=True, capture_output=True, timeout=20)
    return home


def test_gnu_parallel_launcher_runs_every_copy_with_real_parallel(tmp_path, gnu_parallel_home):
    # ':' is GNU parallel's name for this machine without SSH; a real PBS node file lists hosts.
    nodefile = tmp_path / "nodefile"
    nodefile.write_text(":\n:\n")
    script_dir = tmp_path / "scripts"
    script_dir.mkdir()
    (tmp_path / "runs").mkdir()
    # Escaped so that the copies, not the job script writing the command file, expand them.
    command = r'echo "\$CORES" > "\$(mktemp -p runs copy.XXXXXX)"'

    script = GnuParallelLauncher()(command, tasks_per_node=2, nodes_per_block=2, script_dir=str(script_dir))
    result = run_bash(script, tmp_path, HOME=str(gnu_parallel_home), JOBNAME="job", PBS_NODEFILE=str(nodefile))

    assert result.returncode == 0, result.stderr
    copies = list((tmp_path / "runs").iterdir())
    assert len(copies) == 4
    assert {p.read_text() for p in copies} == {host_cores() + "\n"}
    assert lines_of(tmp_path / "job.nodes") == [":"]
    assert lines_of(script_dir / "cmd_job.sh") == [r'echo "$CORES" > "$(mktemp -p runs copy.XXXXXX)"']
    assert lines_of(script_dir / "cmd_job.sh.parallel") == [f"sh {script_dir}/cmd_job.sh"] * 4
    joblog = [row.split("\t") for row in lines_of(tmp_path / "job.sh.parallel.log")[1:]]
    assert len(joblog) == 4 and {row[6] for row in joblog} == {"0"}


def test_gnu_parallel_launcher_without_node_file_logs_into_localhost(tmp_path, stubs):
    env, recorded = stubs
    script = GnuParallelLauncher()("echo ran >> out.txt", tasks_per_node=3, nodes_per_block=1)
    result = run_bash(script, tmp_path, **env)

    assert result.returncode == 0, result.stderr
    assert lines_of(tmp_path / "job.nodes") == ["localhost"]
    assert recorded() == [["parallel", "--env", "_", "--joblog", "job.sh.parallel.log",
                           "--sshloginfile", "job.nodes", "--jobs", "3"]]
    assert lines_of(tmp_path / "out.txt") == ["ran"] * 3


# --- Launchers that hand the command file to a scheduler's program ------------------------------

@pytest.mark.parametrize("launcher, expected_call", [
    (SrunLauncher(overrides="--cpu-bind=none --mem=0"),
     ["srun", "--ntasks", "6", "-l", "--cpu-bind=none", "--mem=0", "bash"]),
    (SrunLauncher(), ["srun", "--ntasks", "6", "-l", "bash"]),
    (AprunLauncher(overrides="-cc depth"), ["aprun", "-n", "6", "-N", "2", "-cc", "depth", "/bin/bash"]),
    (JsrunLauncher(overrides="-c 1"), ["jsrun", "-n", "6", "-r", "2", "-c", "1", "/bin/bash"]),
    (MpiExecLauncher(overrides="--oversubscribe"),
     ["mpiexec", "--bind-to", "none", "--oversubscribe", "-n", "6", "--hostfile", "job.nodes", "/usr/bin/sh"]),
    (MpiExecLauncher(bind_cmd="--cpu-bind"),
     ["mpiexec", "--cpu-bind", "none", "-n", "6", "--hostfile", "job.nodes", "/usr/bin/sh"]),
    (MpiRunLauncher(), ["mpirun", "-np", "6", "/bin/bash"]),
    (MpiRunLauncher(bash_location="/usr/bin/bash", overrides="--oversubscribe"),
     ["mpirun", "-np", "6", "--oversubscribe", "/usr/bin/bash"]),
])
def test_scheduler_launcher_calls_its_program_once_with_the_command_file(tmp_path, stubs, launcher, expected_call):
    env, recorded = stubs
    script_dir = tmp_path / "scripts"
    script_dir.mkdir()
    script = launcher("echo ran >> out.txt", tasks_per_node=2, nodes_per_block=3, script_dir=str(script_dir))
    result = run_bash(script, tmp_path, SLURM_CPUS_ON_NODE="4", SLURM_JOB_NUM_NODES="3", **env)

    assert result.returncode == 0, result.stderr
    command_file = script_dir / "cmd_job.sh"
    assert recorded() == [expected_call + [str(command_file)]]
    assert lines_of(command_file) == ["echo ran >> out.txt"]
    assert os.access(command_file, os.X_OK)
    assert lines_of(tmp_path / "out.txt") == ["ran"]


def test_mpiexec_launcher_host_file_lists_each_pbs_node_once(tmp_path, stubs):
    env, _ = stubs
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("node2\nnode1\nnode2\nnode1\n")
    script = MpiExecLauncher()("true", tasks_per_node=2, nodes_per_block=2)
    assert run_bash(script, tmp_path, PBS_NODEFILE=str(nodefile), **env).returncode == 0
    assert lines_of(tmp_path / "job.nodes") == ["node1", "node2"]


def test_srun_launcher_exports_slurm_cores_and_nodes_to_the_copies(tmp_path, stubs):
    env, _ = stubs
    # Escaped so the copy reads the exported variables at run time.
    script = SrunLauncher()(r'echo "\$CORES \$NODES" > out.txt', tasks_per_node=1, nodes_per_block=1)
    result = run_bash(script, tmp_path, SLURM_CPUS_ON_NODE="16", SLURM_JOB_NUM_NODES="2", **env)
    assert result.returncode == 0, result.stderr
    assert lines_of(tmp_path / "out.txt") == ["16 2"]
    assert "Found cores : 16" in result.stdout and "Found nodes : 2" in result.stdout


@pytest.mark.parametrize("copies, nodes, expected_calls", [
    # more copies than nodes: each srun gets an equal share of all cores (2 nodes * 4 cores / 4)
    (4, "2", [["srun", "--ntasks", "2", "-l", "--mem=0", "bash"]] * 4),
    # no more copies than nodes: each srun gets whole nodes to itself
    (2, "4", [["srun", "--exclusive", "--nodes", "2", "-l", "--mem=0", "bash"]] * 2),
])
def test_srun_mpi_launcher_starts_one_srun_per_copy(tmp_path, stubs, copies, nodes, expected_calls):
    env, recorded = stubs
    script = SrunMPILauncher(overrides="--mem=0")("echo ran >> out.txt", tasks_per_node=copies, nodes_per_block=1)
    result = run_bash(script, tmp_path, SLURM_CPUS_ON_NODE="4", SLURM_JOB_NUM_NODES=nodes, **env)

    assert result.returncode == 0, result.stderr
    assert recorded() == [call + ["cmd_job.sh"] for call in expected_calls]
    assert lines_of(tmp_path / "out.txt") == ["ran"] * copies


@pytest.mark.parametrize("launcher", [SrunLauncher(), AprunLauncher(), MpiRunLauncher()])
def test_missing_script_dir_puts_the_command_file_in_the_working_directory(tmp_path, stubs, launcher):
    env, recorded = stubs
    script = launcher("true", tasks_per_node=1, nodes_per_block=1, script_dir=str(tmp_path / "absent"))
    assert run_bash(script, tmp_path, SLURM_CPUS_ON_NODE="1", SLURM_JOB_NUM_NODES="1", **env).returncode == 0
    assert (tmp_path / "cmd_job.sh").exists()
    assert recorded()[0][-1] == "cmd_job.sh"


def test_script_dir_with_shell_characters_is_taken_literally(tmp_path, stubs):
    env, recorded = stubs
    script_dir = tmp_path / 'odd "dir" $HOME'
    script_dir.mkdir()
    script = SrunLauncher()("true", tasks_per_node=1, nodes_per_block=1, script_dir=str(script_dir))
    assert run_bash(script, tmp_path, SLURM_CPUS_ON_NODE="1", SLURM_JOB_NUM_NODES="1", **env).returncode == 0
    assert (script_dir / "cmd_job.sh").exists()


@pytest.mark.parametrize("launcher", [SrunLauncher(debug=False), AprunLauncher(debug=False),
                                      GnuParallelLauncher(debug=False), MpiExecLauncher(debug=False)])
def test_scheduler_launcher_without_debug_succeeds_silently(tmp_path, stubs, launcher):
    env, _ = stubs
    script = launcher("true", tasks_per_node=1, nodes_per_block=1)
    result = run_bash(script, tmp_path, SLURM_CPUS_ON_NODE="1", SLURM_JOB_NUM_NODES="1", **env)
    assert (result.returncode, result.stdout) == (0, "")


# --- Every launcher -----------------------------------------------------------------------------

@pytest.mark.parametrize("launcher", ALL_LAUNCHERS + [SingleNodeLauncher(debug=False, fail_on_any=True)],
                         ids=repr)
@pytest.mark.parametrize("command", ["echo test", "", "for i in 1 2; do\n  echo $i\ndone"])
def test_rendered_script_is_valid_bash(launcher, command):
    script = launcher(command, 2, 2, "/tmp")
    result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert result.returncode == 0, f"{result.stderr}\n{script}"


@pytest.mark.parametrize("launcher, expected", [
    (SingleNodeLauncher(), "SingleNodeLauncher(debug=True, fail_on_any=False)"),
    (SrunLauncher(overrides="--mem=0"), "SrunLauncher(debug=True, overrides='--mem=0')"),
    (WrappedLauncher("time", debug=False), "WrappedLauncher('time', debug=False)"),
    (MpiRunLauncher(), "MpiRunLauncher(bash_location='/bin/bash', debug=True, overrides='')"),
])
def test_repr_shows_every_parameter(launcher, expected):
    assert repr(launcher) == expected


def test_constructor_rejects_wrong_types_naming_the_field():
    with pytest.raises(ConfigurationTypeError, match="overrides"):
        SrunLauncher(overrides=["--mem=0"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="prepend"):
        WrappedLauncher(prepend=None)  # type: ignore[arg-type]


def test_launcher_base_is_abstract_and_subclasses_need_only_call():
    with pytest.raises(TypeError):
        Launcher()  # type: ignore[abstract]

    class Echo(Launcher):
        def __call__(self, command: str, tasks_per_node: int, nodes_per_block: int, script_dir: str = "") -> str:
            return f"echo {command}"

    assert Echo(debug=False)("x", 1, 1) == "echo x"
    assert Echo().debug is True


def test_bad_launcher_is_a_type_error_that_says_to_pass_an_instance():
    error = BadLauncher(SrunLauncher)
    assert isinstance(error, TypeError)
    assert "SrunLauncher()" in str(error)
    assert "SingleNodeLauncher()" in str(BadLauncher("srun"))


DOCS = Path(__file__).resolve().parent.parent / "docs" / "launchers.md"
DOC_EXAMPLES = re.findall(r"```python\n(.*?)\n```\n\n```bash\n(.*?)```", DOCS.read_text(), re.DOTALL)


def test_docs_show_an_example_for_every_launcher():
    shown = {expression.split("(", 1)[0] for expression, _ in DOC_EXAMPLES}
    assert shown == {type(launcher).__name__ for launcher in ALL_LAUNCHERS}


@pytest.mark.parametrize("expression, rendered", DOC_EXAMPLES, ids=[e.split("(", 1)[0] for e, _ in DOC_EXAMPLES])
def test_docs_examples_show_exactly_what_the_launcher_renders(expression, rendered):
    import parsl_repro.launchers as launchers

    assert eval(expression, vars(launchers)).rstrip("\n") == rendered.rstrip("\n")
