"""Never a wrong answer: Parsl's reuse rules by default, notes on what a memo key leaves out, and
``parsl-repro why`` / ``tasks`` that say what is true (including when nothing matches).

Each test reproduces what a user did, as scripts run in a fresh directory, then asks the store
and the command line what happened."""
from __future__ import annotations

import datetime
import json
import subprocess
import sys
import zoneinfo

import pytest

from tests.monitoring.conftest import ONE_TASK

PORTED = """
    import sys
    import parsl_repro as parsl
    from parsl_repro import bash_app, python_app
    from parsl_repro.config import Config

    @python_app(cache=True)
    def count_lines(path):
        with open(path) as f:
            return len(f.readlines())

    @bash_app(cache=True)
    def wc(stdout=None):
        return "wc -l < data.txt"

    config = Config(reuse_from_store=True) if "--reuse" in sys.argv else Config()
    with parsl.load(config):
        print(count_lines("data.txt").result(), count_lines("other.txt").result())
        wc(stdout=("wc.out", "w")).result()
        print(open("wc.out").read().strip())
"""


def _cli(ws, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os
    return subprocess.run([sys.executable, "-m", "parsl_repro.cli", *args], cwd=ws.root, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


@pytest.fixture
def ported(ws):
    ws.write("wf.py", PORTED)
    ws.write("data.txt", "a\nb\n")
    ws.write("other.txt", "x\n")
    return ws


def test_a_ported_script_recomputes_after_its_input_grew_as_parsl_does(ported):
    """The user's report: a path passed as a plain string and a bash app reading a file; the file
    grew from 2 to 4 lines. With neither checkpoint_files nor checkpoint_mode, Parsl's memo table
    starts empty, so both print 4; ours printed 2 twice (memo hits from the earlier run)."""
    assert ported.run().split() == ["2", "1", "2"]
    ported.write("data.txt", "a\nb\nc\nd\n")
    assert ported.run().split() == ["4", "1", "4"]
    tasks = json.loads(ported.cli("tasks", "--json"))
    assert {t["task_status_name"] for t in tasks} == {"exec_done"}
    sources = json.loads(ported.cli("show", "--json"))["memo_sources"]
    assert json.loads(sources) == {"enabled": True, "from_store": False, "runs": [], "files": [], "results": 0}
    why = json.loads(ported.cli("why", "--json", "--task", "0"))[0]
    first = json.loads(ported.cli("runs", "--json"))[-1]["run_id"]
    assert why["outcome"] == "miss" and why["compared_with"] == [first, 0]
    assert f"same memo key as run {first[:12]} task 0, but its results were not loaded" in why["summary"]
    assert "checkpoint_files=get_last_checkpoint() or Config(reuse_from_store=True)" in why["summary"]


def test_reuse_from_store_is_asked_for_and_then_a_path_argument_is_noted_and_warned_once(ported):
    """With Config(reuse_from_store=True) the earlier run's results are reused; a plain string
    naming a file is keyed by its name, so the grown file is a (stale) hit: said once per app in
    parsl.log, and by `why` for each such task, with what to do about it."""
    assert ported.run("wf.py", "--reuse").split() == ["2", "1", "2"]
    ported.write("data.txt", "a\nb\nc\nd\n")
    assert ported.run("wf.py", "--reuse").split()[:2] == ["2", "1"]  # asked for: reused, keyed by the path
    tasks = {t["task_id"]: t for t in json.loads(ported.cli("tasks", "--json"))}
    assert tasks[0]["task_status_name"] == tasks[1]["task_status_name"] == "memo_done"
    log = (ported.root / "runinfo" / "001" / "parsl.log").read_text()
    warnings = [line for line in log.splitlines() if "names an existing file" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0] and "count_lines" in warnings[0]
    default = json.loads(ported.cli("why", "--json"))  # hits with a note are listed by default
    by_task = {e["task_id"]: e for e in default}
    assert set(by_task) == {0, 1}
    assert by_task[0]["outcome"] == "hit"
    note = by_task[0]["notes"][0]
    assert note.startswith("argument 0 'data.txt' names an existing file, but the memo key covers the path")
    assert "pass File('data.txt') to key on its content" in note
    assert "argument 0 'other.txt'" in by_task[1]["notes"][0]
    plain = ported.cli("why", "--task", "0")
    assert "task 0 (count_lines): hit: reused the result of run" in plain
    assert "    note: argument 0 'data.txt' names an existing file" in plain


def test_identical_calls_in_flight_are_explained_by_naming_the_running_task(ws):
    ws.write("wf.py", """
        import time
        import parsl_repro as parsl
        from parsl_repro import python_app
        from parsl_repro.config import Config
        from parsl_repro.executors import ThreadPoolExecutor

        @python_app(cache=True)
        def slow_square(x):
            import time
            time.sleep(0.5)
            return x * x

        with parsl.load(Config(executors=[ThreadPoolExecutor(max_threads=4)])):
            first = [slow_square(3) for _ in range(4)]   # submitted together: all four run
            print([f.result() for f in first], slow_square(3).result())   # the fifth: a hit
    """)
    assert ws.run().strip() == "[9, 9, 9, 9] 9"
    states = [t["task_status_name"] for t in json.loads(ws.cli("tasks", "--json"))]
    assert states == ["exec_done"] * 4 + ["memo_done"]
    why = {e["task_id"]: e for e in json.loads(ws.cli("why", "--json"))}
    assert set(why) == {0, 1, 2, 3}
    assert why[0]["outcome"] == "first" and why[0]["summary"].startswith("nothing to reuse")
    for task_id in (1, 2, 3):
        assert why[task_id]["summary"].startswith(
            "an identical task of this run (task 0) was still running when this one was ready, so both ran")
        assert "not stored as reusable" not in why[task_id]["summary"]
    assert json.loads(ws.cli("why", "--json", "--task", "4"))[0]["summary"].startswith(
        "hit: reused the result of run")


FAN_OUT = """
    import sys
    import parsl_repro as parsl
    from parsl_repro import File, python_app
    from parsl_repro.config import Config

    @python_app(cache=True)
    def measure(inputs=()):
        return len(open(inputs[0]).read())

    with parsl.load(Config(reuse_from_store="--reuse" in sys.argv)):
        print([measure(inputs=[File(f"inp/in{i}.txt")]).result() for i in range(2)])
"""


@pytest.mark.parametrize("reuse", [False, True], ids=["default", "reuse_from_store"])
def test_a_first_run_is_never_explained_against_its_own_siblings(ws, reuse):
    """Task 1 of a first run used to be a "miss against task 0" of the same run ("inp/in0.txt is
    no longer an input"). Nothing earlier could be reused: say so."""
    ws.write("wf.py", FAN_OUT)
    (ws.root / "inp").mkdir()
    for i in range(2):
        ws.write(f"inp/in{i}.txt", "x" * (i + 1))
    assert ws.run("wf.py", *(["--reuse"] if reuse else [])).strip() == "[1, 2]"
    why = json.loads(ws.cli("why", "--json"))
    assert [e["outcome"] for e in why] == ["first", "first"]
    for e in why:
        assert e["compared_with"] is None and e["changed"] == []
        if reuse:
            assert e["summary"] == "first run of this app version: nothing to reuse"
        else:
            assert e["summary"].startswith("nothing to reuse: this run loaded no earlier results")
    if reuse:  # a second run with one input edited: the miss is explained against the first run
        ws.write("inp/in1.txt", "yyy")
        assert ws.run("wf.py", "--reuse").strip() == "[1, 3]"
        [e] = json.loads(ws.cli("why", "--json"))
        first = json.loads(ws.cli("runs", "--json"))[-1]["run_id"]
        assert e["task_id"] == 1 and e["compared_with"] == [first, 1]
        assert e["changed"] == ["input file inp/in1.txt: content changed"]


def test_why_and_tasks_say_when_nothing_matches(ws):
    ws.write("wf.py", """
        import parsl_repro as parsl
        from parsl_repro import python_app

        @python_app
        def plain(x):
            return x

        with parsl.load():
            print(sum(plain(i).result() for i in range(3)))
    """)
    assert ws.run().strip() == "3"
    run = json.loads(ws.cli("runs", "--json"))[0]["run_id"]
    assert ws.cli("why") == f"Run {run[:12]} has no cached tasks: none of its apps is declared with cache=True.\n"
    for args, message in [(("why", "--task", "999"), f"Run {run[:12]} has no task 999 (it has tasks 0 to 2)"),
                          (("why", "--app", "nosuchapp"),
                           f"Run {run[:12]} has no app 'nosuchapp'; its apps are: plain"),
                          (("tasks", "--app", "nosuchapp"), f"Run {run[:12]} has no app 'nosuchapp'"),
                          (("tasks", "--state", "bogus"), "There is no task state 'bogus'; the states are: pending, "
                                                          "launched, running, running_ended, joining, fail_retryable, "
                                                          "exec_done, memo_done, failed, dep_fail, cancelled")]:
        done = _cli(ws, *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert message in done.stderr and done.stdout == "", args
    assert _cli(ws, "tasks", "--state", "failed").returncode == 0  # a real state with no task: an empty listing
    assert json.loads(ws.cli("why", "--json", "--task", "1"))[0]["outcome"] == "not-cached"


def test_times_are_shown_in_local_time_with_their_zone(ws):
    """The store keeps UTC; under TZ=America/New_York, `runs` showed 02:26 for a run the log
    stamped 21:26. Tables show local time with its zone, --json ISO 8601 with the offset."""
    ws.write("wf.py", ONE_TASK)
    new_york = {"TZ": "America/New_York"}
    import os
    done = subprocess.run([sys.executable, "wf.py"], cwd=ws.root, env={**os.environ, **new_york}, timeout=120)
    assert done.returncode == 0
    [run] = json.loads(_cli(ws, "runs", "--json", env=new_york).stdout)
    began = datetime.datetime.fromisoformat(run["time_began"])
    assert began.utcoffset() == datetime.timedelta(hours=-5) or began.utcoffset() == datetime.timedelta(hours=-4)
    as_utc = json.loads(_cli(ws, "runs", "--json", env={"TZ": "UTC"}).stdout)[0]["time_began"]
    assert datetime.datetime.fromisoformat(as_utc) == began and as_utc.endswith("+00:00")
    local = began.astimezone(zoneinfo.ZoneInfo("America/New_York"))
    table = _cli(ws, "runs", env=new_york).stdout
    assert local.strftime("%Y-%m-%d %H:%M:%S %Z") in table and local.tzname() in ("EST", "EDT")
    # parsl.log stamps its lines in the run's local time: the table now agrees with it
    first_line = (ws.root / "runinfo" / "000" / "parsl.log").read_text().splitlines()[0]
    logged = datetime.datetime.strptime(" ".join(first_line.split()[1:3]), "%Y-%m-%d %H:%M:%S")
    assert abs(logged - local.replace(tzinfo=None, microsecond=0)) <= datetime.timedelta(seconds=2)
    show = _cli(ws, "show", env=new_york).stdout
    assert f"time_began             {local.strftime('%Y-%m-%d %H:%M:%S %Z')}" in show
