"""Real runs to export: workflow scripts run as a user runs them, recorded into a store.

``record_runs(root)`` runs, in ``root``:

- ``wf.py``: threads and two HTEX executors (LocalProvider, one block each) in one run; python, bash
  and join apps;
  input, output, stdout and stderr files; a python app deriving a file from a bash app's output; a
  memo hit; a retry that succeeds; a failure (its message holds terminal escape codes) and a task
  that fails on it;
- ``sweep.py --crash``: cached tasks, then one still running when the script SIGKILLs itself (a
  killed run with an unfinished task); then ``sweep.py`` resumes from it (memo hits on the killed
  run's results; its parent is the killed run).

and returns the run ids by name.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy import select

from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.engine import default_url, make_engine

WORKFLOW = """
    import parsl_repro as parsl
    from parsl_repro import File, bash_app, join_app, python_app
    from parsl_repro.config import Config
    from parsl_repro.executors import HighThroughputExecutor, ThreadPoolExecutor
    from parsl_repro.providers import LocalProvider


    @python_app(cache=True, executors=["threads"])
    def square(x):
        return x * x


    @python_app(executors=["threads"])
    def add(a, b):
        return a + b


    @bash_app(executors=["htex"])
    def count(inputs=(), outputs=(), stdout="count.out", stderr="count.err"):
        return f"wc -l < {inputs[0]} > {outputs[0]}"


    @python_app(executors=["htex2"])
    def scale(factor, inputs=(), outputs=()):
        n = int(open(inputs[0]).read())
        with open(outputs[0], "w") as f:
            f.write(str(n * factor))
        return n * factor


    @python_app(executors=["threads"])
    def flaky(marker):
        import os
        with open(marker, "a") as f:
            f.write("x")
        if os.path.getsize(marker) < 2:
            raise ConnectionError("server busy")
        return "ok"


    @python_app(executors=["threads"])
    def fails():
        raise ValueError("bad input 42 \\x1b[1m(as a terminal shows it)\\x1b[0m")


    @python_app(executors=["threads"])
    def after(x):
        return x


    @join_app
    def both(x):
        return add(square(x), square(x + 1))


    with open("in.txt", "w") as f:
        f.write("a\\nb\\nc\\n")
    htex, htex2 = (HighThroughputExecutor(label=label, max_workers_per_node=1, heartbeat_period=1,
                                          provider=LocalProvider(init_blocks=1, min_blocks=0, max_blocks=1))
                   for label in ("htex", "htex2"))  # two executors, each with its block 0
    with parsl.load(Config(executors=[ThreadPoolExecutor(label="threads"), htex, htex2], retries=1)):
        first = square(3)
        first.result()
        again = square(3)  # a memo hit
        counted = count(inputs=[File("in.txt")], outputs=[File("n.txt")])
        scaled = scale(10, inputs=[counted.outputs[0]], outputs=[File("scaled.txt")])
        total = add(again, scaled)
        failing = fails()
        print(total.result(), both(4).result(), flaky("marker").result(), after(failing).exception())
"""

SWEEP = """
    import os
    import signal
    import sys
    import time

    import parsl_repro as parsl
    from parsl_repro import python_app
    from parsl_repro.config import Config
    from parsl_repro.utils import get_last_checkpoint


    @python_app(cache=True)
    def simulate(x):
        if x == 2 and "--crash" in sys.argv:
            time.sleep(60)  # still running when the script is killed
        return x * x


    with parsl.load(Config(checkpoint_files=get_last_checkpoint())):
        done = [simulate(0).result(), simulate(1).result()]
        if "--crash" in sys.argv:
            simulate(2)
            time.sleep(1.5)  # the store commits within a fraction of a second
            os.kill(os.getpid(), signal.SIGKILL)
        print(done + [simulate(2).result(), simulate(3).result()])
"""


def run_script(root: Path, name: str, source: str, *args: str, expect_killed: bool = False) -> None:
    path = root / name
    path.write_text(textwrap.dedent(source))
    done = subprocess.run([sys.executable, name, *args], cwd=root, capture_output=True, text=True, timeout=180)
    if expect_killed:
        assert done.returncode == -9, f"{name} was not killed:\n{done.stdout}\n{done.stderr}"
    else:
        assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"


def store_url(root: Path) -> str:
    return os.environ.get("PARSL_REPRO_PROVENANCE_URL") or default_url(str(root / "runinfo"))


def record_runs(root: Path) -> dict[str, str]:
    """Run the workflows in ``root``; returns ``{"main", "killed", "resumed"}`` -> run id."""
    run_script(root, "wf.py", WORKFLOW)
    run_script(root, "sweep.py", SWEEP, "--crash", expect_killed=True)
    run_script(root, "sweep.py", SWEEP)
    engine = make_engine(store_url(root), writer=False)
    with engine.connect() as conn:
        rows = list(conn.execute(select(m.Workflow.run_id, m.Workflow.workflow_name, m.Workflow.parent_run_id)
                                 .order_by(m.Workflow.time_began)))
    engine.dispose()
    main, killed, resumed = (row.run_id for row in rows)
    assert rows[2].parent_run_id == killed, "the resumed run names the killed one as its parent"
    return {"main": main, "killed": killed, "resumed": resumed}
