"""``parsl-repro replay``: real runs recorded by scripts, replayed by the command as a user runs it.

The workflow has python, bash and join apps, a helper function and a module constant the app
reads, relative input, output and stdout paths, and a file passed from a bash app to a python app.
It is recorded on threads and on HTEX (LocalProvider), and replayed on threads and on HTEX (a
config file), with ``--verify``. Then what goes wrong: a task that writes the time (different, the
output named, exit 1) beside one marked ``deterministic=False`` (reported apart); an input changed
after the run (reported before anything runs); an app whose closure holds a generator (cannot be
rebuilt; its dependant still replays); a run id that does not exist; a config file that fails on
its line 3; Ctrl-C during a replay.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.engine import default_url, make_engine

WORKFLOW = """
    import sys

    import parsl_repro as parsl
    from parsl_repro import File, bash_app, join_app, python_app
    from parsl_repro.config import Config
    from parsl_repro.executors import HighThroughputExecutor, ThreadPoolExecutor
    from parsl_repro.providers import LocalProvider

    OFFSET = 7


    def helper(x):
        return x * 3 + OFFSET


    @python_app
    def square(x):
        return helper(x) ** 2


    @bash_app
    def count(inputs=(), outputs=(), stdout="logs/count.out"):
        return f"wc -l < {inputs[0]} > {outputs[0]}; echo counted {inputs[0]}"


    @python_app
    def scale(factor, inputs=(), outputs=()):
        n = int(open(inputs[0]).read())
        with open(outputs[0], "w") as f:
            f.write(f"{n * factor}\\n")
        return n * factor


    @python_app
    def add(a, b):
        return a + b


    @join_app
    def both(x):
        return add(square(x), square(x + 1))


    if sys.argv[1:] == ["htex"]:
        executor = HighThroughputExecutor(label="htex", max_workers_per_node=2, heartbeat_period=1,
                                          provider=LocalProvider(init_blocks=1, min_blocks=0, max_blocks=1))
    else:
        executor = ThreadPoolExecutor(label="threads", max_threads=4)
    with parsl.load(Config(executors=[executor])):
        counted = count(inputs=[File("in.txt")], outputs=[File("out/n.txt")])
        scaled = scale(10, inputs=[counted.outputs[0]], outputs=[File("out/scaled.txt")])
        total = add(square(2), scaled)
        print(total.result(), both(4).result())
"""

HTEX_CONFIG = """
    from parsl_repro.config import Config
    from parsl_repro.executors import HighThroughputExecutor
    from parsl_repro.providers import LocalProvider

    config = Config(executors=[HighThroughputExecutor(
        label="htex", max_workers_per_node=2, heartbeat_period=1,
        provider=LocalProvider(init_blocks=1, min_blocks=0, max_blocks=1))])
"""

NOISY = """
    import parsl_repro as parsl
    from parsl_repro import File, python_app


    @python_app
    def stamp(outputs=()):
        import time
        with open(outputs[0], "w") as f:
            f.write("header\\n")
            f.write(f"{time.time_ns()}\\n")
        return "written"


    @python_app(deterministic=False)
    def sample(seed):
        import random
        return random.random() + seed


    @python_app
    def steady(x):
        return x + 1


    with parsl.load():
        print(stamp(outputs=[File("stamp.txt")]).result(), sample(1).result(), steady(1).result())
"""

LOCKED = """
    import parsl_repro as parsl
    from parsl_repro import python_app


    def make_guarded():
        counter = (n for n in range(10**6))  # a generator: neither pickle nor dill can serialize one

        @python_app
        def guarded(x):
            return x + 1 + 0 * next(counter)
        return guarded


    guarded = make_guarded()


    @python_app
    def double(x):
        return 2 * x


    with parsl.load():
        print(double(guarded(1)).result())
"""

SLOW = """
    import parsl_repro as parsl
    from parsl_repro import python_app


    @python_app
    def nap(seconds):
        import time
        time.sleep(seconds)
        return seconds


    with parsl.load():
        print([f.result() for f in [nap(2), nap(2), nap(2), nap(2), nap(2)]])
"""


def run_script(root: Path, name: str, source: str, *args: str) -> None:
    (root / name).write_text(textwrap.dedent(source))
    done = subprocess.run([sys.executable, name, *args], cwd=root, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"


def cli(root: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parsl_repro.cli", *args], cwd=root, capture_output=True,
                          text=True, timeout=timeout)


def replay_json(root: Path, *args: str) -> tuple[int, dict, str]:
    done = cli(root, "replay", "--json", *args)
    assert done.stdout.strip(), f"no report:\n{done.stderr}"
    return done.returncode, json.loads(done.stdout), done.stderr


def runs(root: Path) -> list:
    engine = make_engine(default_url(str(root / "runinfo")), writer=False)
    with engine.connect() as conn:
        found = list(conn.execute(select(m.Workflow.__table__).order_by(m.Workflow.time_began)))
    engine.dispose()
    return found


def executors_of(root: Path, run_id: str) -> set[str]:
    engine = make_engine(default_url(str(root / "runinfo")), writer=False)
    with engine.connect() as conn:
        found = set(conn.execute(select(m.Try.task_executor).where(m.Try.run_id == run_id)).scalars())
    engine.dispose()
    return found


def task_count(root: Path, run_id: str) -> int:
    engine = make_engine(default_url(str(root / "runinfo")), writer=False)
    with engine.connect() as conn:
        found = len(list(conn.execute(select(m.Task.task_id).where(m.Task.run_id == run_id))))
    engine.dispose()
    return found


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verdicts(report: dict) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for task in report["tasks"]:
        found.setdefault(task["app"], []).append(task["verdict"])
    return found


def recorded_workflow(root: Path, executor: str) -> str:
    (root / "out").mkdir(parents=True)  # the replay makes it in its own directory
    (root / "in.txt").write_text("a\nb\nc\n")
    run_script(root, "wf.py", WORKFLOW, executor)
    return runs(root)[-1].run_id


@pytest.fixture(scope="module")
def on_threads(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("replay") / "threads"
    return root, recorded_workflow(root, "threads")


@pytest.fixture(scope="module")
def on_htex(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("replay") / "htex"
    return root, recorded_workflow(root, "htex")


EVERY_APP = {"count": ["identical"], "scale": ["identical"], "add": ["identical"] * 2,
             "square": ["identical"] * 3, "both": ["identical"]}


# --- replays that reproduce -------------------------------------------------------------------------
@pytest.mark.slow
def test_a_threads_run_replays_identically_in_a_directory_of_its_own(on_threads):
    root, run_id = on_threads
    originals = {name: sha(root / name) for name in ("out/n.txt", "out/scaled.txt", "logs/count.out")}
    mtimes = {name: (root / name).stat().st_mtime_ns for name in originals}
    status, report, said = replay_json(root, run_id, "--verify")
    assert status == 0, said
    assert verdicts(report) == EVERY_APP
    assert report["counts"]["identical"] == 8 and report["input_problems"] == []
    directory = Path(report["directory"])
    assert directory.parent == root / "runinfo" and directory.name.startswith("replay-")
    assert f"writing in {directory}" in said
    # the files were written again in the replay's directory, the same bytes; the originals untouched
    for name, digest in originals.items():
        assert sha(directory / name) == digest
        assert (root / name).stat().st_mtime_ns == mtimes[name]
    replayed = runs(root)[-1]
    # the join app launched its tasks again itself: the replay has as many tasks as the run, no more
    assert task_count(root, replayed.run_id) == task_count(root, run_id) == 8
    assert replayed.run_id == report["replay_run_id"]
    assert replayed.replay_of == run_id and replayed.parent_run_id == run_id
    assert replayed.workflow_name == "replay of wf.py" and replayed.outcome == "completed"


@pytest.mark.slow
def test_a_threads_run_replays_on_htex_from_a_config_file(on_threads):
    root, run_id = on_threads
    (root / "htex_config.py").write_text(textwrap.dedent(HTEX_CONFIG))
    status, report, said = replay_json(root, run_id, "--verify", "--config", "htex_config.py")
    assert status == 0, said
    assert verdicts(report) == EVERY_APP
    assert executors_of(root, report["replay_run_id"]) == {"htex", "_parsl_internal"}  # the join on internal


@pytest.mark.slow
def test_an_htex_run_replays_on_threads_and_on_htex(on_htex):
    root, run_id = on_htex
    status, report, said = replay_json(root, run_id, "--verify", "--jobs", "2")
    assert status == 0, said
    assert verdicts(report) == EVERY_APP
    assert executors_of(root, report["replay_run_id"]) == {"threads", "_parsl_internal"}
    (root / "htex_config.py").write_text(textwrap.dedent(HTEX_CONFIG))
    status, report, said = replay_json(root, run_id, "--verify", "--config", "htex_config.py")
    assert status == 0, said
    assert verdicts(report) == EVERY_APP


@pytest.mark.slow
def test_the_text_report_names_each_app_and_the_directory(on_threads):
    root, run_id = on_threads
    done = cli(root, "replay", run_id[:8], "--verify", "--only", "square")
    assert done.returncode == 0, done.stderr
    lines = {line.split("\t")[0]: line.split("\t") for line in done.stdout.splitlines()}
    assert lines["app"] == ["app", "tasks", "identical", "skipped"]
    assert lines["square"] == ["square", "3", "3", ""] and lines["count"] == ["count", "1", "", "1"]
    assert "8 identical" not in done.stderr and "3 identical, 5 skipped" in done.stderr


# --- what does not reproduce -------------------------------------------------------------------------
@pytest.mark.slow
def test_a_nondeterministic_task_is_reported_different_with_its_output_named(tmp_path):
    run_script(tmp_path, "noisy.py", NOISY)
    status, report, said = replay_json(tmp_path, "last", "--verify")
    assert status == 1, said
    by_app = {t["app"]: t for t in report["tasks"]}
    stamp = by_app["stamp"]
    assert stamp["verdict"] == "different"
    output = str(tmp_path / "stamp.txt")
    assert [d["what"] for d in stamp["differences"]] == [f"output {output}"]
    assert stamp["differences"][0]["recorded"] == sha(tmp_path / "stamp.txt")
    lines = stamp["differences"][0]["lines"]
    assert lines[:2] == ["--- recorded", "+++ replayed"] and lines[3].startswith("-") and lines[4].startswith("+")
    assert "header" not in "".join(lines)  # only the line that differs
    # marked deterministic=False: reported apart, not a failure
    assert by_app["sample"]["verdict"] == "nondeterministic"
    assert [d["what"] for d in by_app["sample"]["differences"]] == ["result"]
    assert by_app["steady"]["verdict"] == "identical"
    text = cli(tmp_path, "replay", report["original"], "--verify")  # "last" is now the replay
    assert text.returncode == 1
    assert f"task 0 (stamp): different: output {output} differ" in text.stdout
    assert "task 1 (sample): nondeterministic" in text.stdout


@pytest.mark.slow
def test_a_changed_input_is_reported_before_anything_runs(tmp_path):
    root = tmp_path / "changed"
    run_id = recorded_workflow(root, "threads")
    (root / "in.txt").write_text("a\nb\nc\nd\n")
    status, report, said = replay_json(root, run_id, "--verify")
    assert status == 1
    problem = f"input {root / 'in.txt'} changed since the run"
    assert problem in report["input_problems"][0]
    assert said.index(problem) < said.index("replaying")  # said before the replay started
    by_app = {t["app"]: t for t in report["tasks"] if t["app"] in ("count", "scale")}
    assert by_app["count"]["verdict"] == "not replayable" and problem in by_app["count"]["reason"]
    # scale reads count's recorded output where the run left it, unchanged: it still replays
    assert by_app["scale"]["verdict"] == "identical"
    assert report["counts"]["identical"] == 7


@pytest.mark.slow
def test_a_task_whose_code_cannot_be_rebuilt_is_reported_and_its_dependant_replays(tmp_path):
    run_script(tmp_path, "locked.py", LOCKED)
    status, report, said = replay_json(tmp_path, "last", "--verify")
    assert status == 1, said
    guarded, double = report["tasks"]
    assert guarded["verdict"] == "not replayable"
    assert "closure value counter is a generator that cannot be serialized" in guarded["reason"]
    assert double["verdict"] == "identical" and double["replay_task_id"] == 0


# --- bad input ----------------------------------------------------------------------------------------
def test_a_run_that_does_not_exist_is_refused(on_threads):
    root, _run_id = on_threads
    done = cli(root, "replay", "no-such-run")
    assert done.returncode == 2
    assert "No run matches 'no-such-run'" in done.stderr


def test_a_config_file_that_fails_names_its_file_and_line(on_threads):
    root, run_id = on_threads
    (root / "broken.py").write_text("from parsl_repro.config import Config\n\nconfig = Config(executors=[nope])\n")
    done = cli(root, "replay", run_id, "--config", "broken.py")
    assert done.returncode == 2
    assert "The config file broken.py failed to load: broken.py, line 3: NameError: name 'nope' is not defined" \
        in done.stderr
    (root / "empty.py").write_text("x = 1\n")
    done = cli(root, "replay", run_id, "--config", "empty.py")
    assert done.returncode == 2 and "must define `config`" in done.stderr


@pytest.mark.slow
def test_ctrl_c_records_the_replay_as_interrupted(tmp_path):
    run_script(tmp_path, "slow.py", SLOW)
    proc = subprocess.Popen([sys.executable, "-m", "parsl_repro.cli", "replay", "--jobs", "1", "--json"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    line = ""
    while "replaying" not in line and time.monotonic() - started < 60:
        line = proc.stderr.readline()
    assert "replaying 5 of 5 tasks" in line
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    report = json.loads(out)
    assert report["interrupted"] is True
    assert report["counts"]["not run"] >= 3  # one thread: most naps had not begun
    replayed = runs(tmp_path)[-1]
    assert replayed.run_id == report["replay_run_id"] and replayed.outcome == "interrupted"
    assert os.path.isdir(report["directory"])


# --- what the replay must never do, and must not mistake ------------------------------------------
GUARDED = """
    import os
    import sys

    import parsl_repro as parsl
    from parsl_repro import File, bash_app, join_app, python_app

    KEPT = os.path.abspath("kept")  # absolute paths, outside anything the replay maps by itself
    SCALE = 10


    @python_app
    def breaks(outputs=()):
        with open(outputs[0], "w") as f:
            f.write("partial")
        raise ValueError("on purpose")


    @bash_app
    def logged(outputs=(), stderr=os.path.join(KEPT, "logged.err")):
        return f"echo done > {outputs[0]}"


    @bash_app
    def child(n, outputs=()):
        return f"echo {n} > {outputs[0]}"


    @join_app
    def parent(n):
        return child(n, outputs=[File(os.path.join(KEPT, "child.txt"))])


    @python_app
    def scale(x):
        return x * SCALE


    with parsl.load():
        breaks(outputs=[File(os.path.join(KEPT, "broken.txt"))]).exception()
        logged(outputs=[File(os.path.join(KEPT, "logged.txt"))]).result()
        parent(5).result()
        first = scale(1).result()
        SCALE = 100  # rebound between two calls: two versions of scale's code, each recorded as it ran
        print(first, scale(1).result())
"""


@pytest.mark.slow
def test_a_replay_never_writes_over_the_runs_files_and_maps_paths_back_before_comparing(tmp_path):
    """Declared outputs of a task that failed (so no write was recorded), outputs a replayed join
    app's code builds, and a bash app's stderr, which repeats its command line with the replay's
    paths: none touches the originals, and all verify identical. A global rebound between two calls
    replays as each call ran it."""
    (tmp_path / "kept").mkdir()
    run_script(tmp_path, "guarded.py", GUARDED)
    originals = {name: "precious\n" for name in ("broken.txt", "child.txt", "logged.txt", "logged.err")}
    for name, text in originals.items():
        (tmp_path / "kept" / name).write_text(text)
    status, report, said = replay_json(tmp_path, "last", "--verify")
    by_app = verdicts(report)
    assert by_app == {"breaks": ["identical"], "logged": ["identical"], "parent": ["identical"],
                      "child": ["identical"], "scale": ["identical", "identical"]}, said
    assert status == 0
    for name, text in originals.items():
        assert (tmp_path / "kept" / name).read_text() == text, f"{name} was written over"
    moved = Path(report["directory"]) / "kept"
    assert (moved / "broken.txt").read_text() == "partial" and (moved / "child.txt").read_text() == "5\n"
