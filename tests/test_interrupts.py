"""A run interrupted is not a run failed: ctrl-C (SIGINT to the terminal's process group) or
SIGTERM ends a run as ``interrupted``, its unfinished tasks as ``cancelled`` (with the cause, not
counted as failures), and a run resumed with ``get_last_checkpoint()`` redoes none of the tasks
that finished before the interrupt."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

WORKFLOW = """
    import os
    import sys
    import parsl_repro as parsl
    from parsl_repro import python_app
    from parsl_repro.config import Config
    from parsl_repro.executors import HighThroughputExecutor, ThreadPoolExecutor
    from parsl_repro.providers import LocalProvider
    from parsl_repro.utils import get_last_checkpoint

    @python_app(cache=True)
    def step(i):
        import time
        time.sleep(0.1)
        with open(f"done/{i}", "w") as f:
            f.write(str(time.time()))
        with open("calls.log", "a") as f:
            f.write(f"{i}\\n")
        return i * i

    if sys.argv[1] == "htex":
        executor = HighThroughputExecutor(label="htex", max_workers_per_node=2, heartbeat_period=1,
                                          provider=LocalProvider(init_blocks=1, max_blocks=1))
    else:
        executor = ThreadPoolExecutor(label="threads", max_threads=2)
    os.makedirs("done", exist_ok=True)
    with parsl.load(Config(executors=[executor], checkpoint_files=get_last_checkpoint())):
        print(sum(f.result() for f in [step(i) for i in range(60)]))
"""


def _start(root: Path, executor: str) -> subprocess.Popen:
    # a session of its own, like a job started from a terminal: its process group is the
    # script's, and the group is what a ctrl-C at the terminal signals
    return subprocess.Popen([sys.executable, "wf.py", executor], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for_calls(root: Path, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = root / "calls.log"
        if log.exists() and len(log.read_text().split()) >= count:
            return
        time.sleep(0.02)
    pytest.fail(f"fewer than {count} tasks finished in {timeout} s")


def _cli(root: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "parsl_repro.cli", *args], cwd=root, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("executor, sig", [("htex", signal.SIGINT), ("threads", signal.SIGINT),
                                           ("threads", signal.SIGTERM), ("htex", signal.SIGTERM)],
                         ids=["htex-ctrl-c", "threads-ctrl-c", "threads-sigterm", "htex-sigterm"])
def test_an_interrupted_run_is_recorded_as_interrupted_and_resumes(tmp_path, executor, sig):
    (tmp_path / "wf.py").write_text(textwrap.dedent(WORKFLOW))
    proc = _start(tmp_path, executor)
    _wait_for_calls(tmp_path, 8)
    if sig == signal.SIGINT:
        os.killpg(proc.pid, signal.SIGINT)  # what ctrl-C at the terminal does: the whole group
    else:
        proc.send_signal(signal.SIGTERM)  # what `kill PID`, a batch system or a supervisor does
    interrupted_at = time.time()
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the interrupted script did not exit")
    # an uncaught KeyboardInterrupt ends Python by SIGINT (a shell shows 130); SIGTERM by SystemExit(143)
    assert proc.returncode == (-signal.SIGINT if sig == signal.SIGINT else 128 + signal.SIGTERM), err
    assert time.time() - interrupted_at < 30, "an interrupted run must end promptly"
    assert "ended unexpectedly" not in err, "the provenance writer must outlive a ctrl-C: the run still records"
    assert _left_behind(tmp_path) == [], "a process of the run was left behind"

    [run] = json.loads(_cli(tmp_path, "runs", "--json"))
    assert run["outcome"] == "interrupted" and run["tasks_failed_count"] == 0
    tasks = json.loads(_cli(tmp_path, "tasks", "--json"))
    states = {t["task_status_name"] for t in tasks}
    assert states <= {"exec_done", "cancelled"} and "cancelled" in states, states
    finished = {t["task_id"] for t in tasks if t["task_status_name"] == "exec_done"}
    assert run["tasks_completed_count"] == len(finished) >= 8
    assert not [t for t in tasks if t["error"]], "a cancelled task has no error: it did not fail"
    cancelled = [t for t in tasks if t["task_status_name"] == "cancelled"]
    story = _story(tmp_path, run["run_id"], cancelled[-1]["task_id"])
    assert story[-1]["task_status_name"] == "cancelled"
    assert story[-1]["cause"].startswith("run ended") and story[-1]["detail"] == (
        f"the run was interrupted ({signal.Signals(sig).name})")
    progress = next(line for line in _cli(tmp_path, "show").splitlines() if line.startswith("progress"))
    assert progress.split(None, 1)[1] == f"{len(finished)} of 60 tasks finished, {len(cancelled)} cancelled"
    failed = json.loads(_cli(tmp_path, "tasks", "--json", "--state", "failed"))
    assert failed == []

    on_disk_before = {int(p.name) for p in (tmp_path / "done").iterdir()}
    assert finished <= on_disk_before
    first_calls = (tmp_path / "calls.log").read_text().split()
    os.unlink(tmp_path / "calls.log")
    resumed = subprocess.run([sys.executable, "wf.py", executor], cwd=tmp_path, capture_output=True, text=True,
                             timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == str(sum(i * i for i in range(60)))
    rerun = set(map(int, (tmp_path / "calls.log").read_text().split()))
    assert not rerun & finished, "a task that finished before the interrupt ran again"
    assert rerun | set(map(int, first_calls)) == set(range(60))
    newest, interrupted = json.loads(_cli(tmp_path, "runs", "--json"))
    assert newest["outcome"] == "completed" and interrupted["outcome"] == "interrupted"
    assert json.loads(_cli(tmp_path, "show", "--json"))["parent_run_id"] == interrupted["run_id"]


def _left_behind(root: Path, patience: float = 15) -> list[str]:
    """Command lines of processes started for the run in ``root`` still alive after ``patience`` s."""
    deadline = time.monotonic() + patience
    while True:
        left = []
        for process in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if str(root) in cmdline and process.pid != os.getpid():
                left.append(cmdline)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def _story(root: Path, run_id: str, task_id: int) -> list[dict]:
    code = ("import json, sys; from parsl_repro.monitoring import queries; "
            "from parsl_repro.monitoring.engine import default_url, make_engine; "
            "print(json.dumps(queries.task_story(make_engine(default_url('runinfo'), writer=False), "
            "sys.argv[1], int(sys.argv[2])), default=str))")
    done = subprocess.run([sys.executable, "-c", code, run_id, str(task_id)], cwd=root, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_cleanup_before_tasks_finish_cancels_them_instead_of_failing_them(tmp_path, monkeypatch, no_leaks):
    """A script that cleans up with tasks still waiting (no interrupt): they never ran, so they
    are cancelled with that cause and the run is ``incomplete``, not failed."""
    import threading

    import parsl_repro
    from parsl_repro import python_app
    from parsl_repro.config import Config
    from parsl_repro.dataflow.errors import TaskCancelled
    from parsl_repro.monitoring import queries
    from parsl_repro.monitoring.engine import default_url, make_engine

    monkeypatch.chdir(tmp_path)
    gate = threading.Event()

    @python_app
    def wait_for_gate():
        gate.wait(5)
        return 1

    @python_app
    def after(x):
        return x + 1

    kernel = parsl_repro.load(Config(run_dir=str(tmp_path / "runinfo")))
    first = wait_for_gate()
    second = after(first)
    threading.Timer(0.3, gate.set).start()
    kernel.cleanup()  # waits for the running task; its dependent must not start any more
    assert first.result() == 1
    with pytest.raises(TaskCancelled, match="the run was cleaned up before the task finished"):
        second.result()
    engine = make_engine(default_url(str(tmp_path / "runinfo")), writer=False)
    [run] = queries.list_runs(engine)
    assert run["outcome"] == "incomplete" and run["tasks_failed_count"] == 0
    assert [t["task_status_name"] for t in queries.list_tasks(engine, run["run_id"])] == ["exec_done", "cancelled"]
    engine.dispose()
