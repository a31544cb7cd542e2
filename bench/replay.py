"""Replay benchmark: ``parsl-repro replay --verify`` of a recorded 10,000-task run, against running
the same workflow again.

The workflow (``WORKFLOW``): ``--tasks`` tasks in all, of which 1% are bash apps that each write a
file and 1% python apps that read one of those files, and the rest python apps in chains of 10 (each
takes the previous one's result). One cycle, in a fresh temporary directory:

1. the script runs with parsl_repro (threads, 2 workers): the recorded run;
2. ``parsl-repro replay RUN --verify --jobs 2``, the command as a user types it: every task
   rebuilt from the record, run again in dependency order, and its result and files compared;
3. the same script (imports rewritten) with real Parsl (``parsl==PARSL_VERSION`` in its own venv,
   ``bench/.venvs/parsl``), which has no replay: running the script again is what it offers.

Printed: seconds and tasks/s for each, and the ratios replay / recorded run and replay / Parsl
re-run. Median of ``--repeats`` cycles. Results go to ``bench/results/replay.json``.

    .venv/bin/python bench/replay.py                  # 10,000 tasks, 3 cycles
    .venv/bin/python bench/replay.py --tasks 2000 --repeats 1
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from core_threads import DEFAULT_PARSL_VENV, ensure_parsl_venv  # noqa: E402

RESULTS = BENCH_DIR / "results" / "replay.json"
OURS = BENCH_DIR.parent / ".venv" / "bin" / "python"

WORKFLOW = """
    import sys

    import LIB as parsl
    from LIB import File, bash_app, python_app
    from LIB.config import Config
    from LIB.executors import ThreadPoolExecutor

    TASKS = int(sys.argv[1])


    @python_app
    def step(x, k):
        return (x * 31 + k) % 1000003


    @bash_app
    def write(n, outputs=()):
        return f"echo {n} > {outputs[0]}"


    @python_app
    def read(inputs=()):
        return int(open(inputs[0]).read())


    with parsl.load(Config(executors=[ThreadPoolExecutor(max_threads=2)])):
        futures = []
        files = TASKS // 100
        chains = (TASKS - 2 * files) // 10
        for c in range(chains):
            x = c
            for k in range(10):
                x = step(x, k)
            futures.append(x)
        for n in range(files):
            written = write(n, outputs=[File(f"out/{n}.txt")])
            futures.append(read(inputs=[written.outputs[0]]))
        print(sum(f.result() for f in futures))
"""


def script(directory: Path, lib: str) -> Path:
    path = directory / f"wf_{lib}.py"
    path.write_text(textwrap.dedent(WORKFLOW).replace("LIB", lib))
    (directory / "out").mkdir(exist_ok=True)
    return path


def timed(command: list[str], cwd: Path, timeout: float) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - started, done


def cycle(tasks: int, parsl_python: Path | None, timeout: float) -> dict[str, Any]:
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        root = Path(tmp)
        ours = script(root, "parsl_repro")
        seconds, done = timed([str(OURS), ours.name, str(tasks)], root, timeout)
        if done.returncode != 0:
            raise SystemExit(f"the recorded run failed:\n{done.stderr[-2000:]}")
        found["recorded_s"] = seconds
        seconds, done = timed([str(OURS), "-m", "parsl_repro.cli", "replay", "last", "--verify", "--jobs", "2",
                               "--json"], root, timeout)
        report = json.loads(done.stdout) if done.stdout.strip() else {}
        if done.returncode != 0:
            raise SystemExit(f"the replay did not verify (exit {done.returncode}):\n{done.stderr[-2000:]}\n"
                             f"{json.dumps(report.get('counts'))}")
        found["replay_s"] = seconds
        found["replay_inside_s"] = report["seconds"]  # from reading the record to the last verdict
        found["identical"] = report["counts"]["identical"]
        if parsl_python is not None:
            theirs = script(root, "parsl")
            seconds, done = timed([str(parsl_python), theirs.name, str(tasks)], root, timeout)
            if done.returncode != 0:
                raise SystemExit(f"Parsl's run failed:\n{done.stderr[-2000:]}")
            found["parsl_rerun_s"] = seconds
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-parsl", action="store_true", help="skip the real Parsl re-run")
    parser.add_argument("--parsl-venv", type=Path, default=DEFAULT_PARSL_VENV)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    parsl_python = None if args.no_parsl else ensure_parsl_venv(args.parsl_venv.resolve())
    cycles = [cycle(args.tasks, parsl_python, args.timeout) for _ in range(args.repeats)]
    median = {key: statistics.median(c[key] for c in cycles) for key in cycles[0]}
    n = args.tasks
    print(f"Replay of a recorded {n:,}-task run (median of {args.repeats}; seconds, tasks/s)")
    rows = [("recorded run (parsl_repro, the script)", median["recorded_s"]),
            ("parsl-repro replay --verify (the command)", median["replay_s"]),
            ("  of which: from reading the record to the verdicts", median["replay_inside_s"])]
    if "parsl_rerun_s" in median:
        rows.append(("Parsl re-running the script (no verification)", median["parsl_rerun_s"]))
    for label, seconds in rows:
        print(f"  {label:<58} {seconds:8.2f} s {n / seconds:10,.0f} tasks/s")
    print(f"  tasks verified identical: {int(median['identical']):,} of {n:,}")
    print(f"  replay / recorded run: {median['replay_s'] / median['recorded_s']:.2f}")
    if "parsl_rerun_s" in median:
        print(f"  replay / Parsl re-run: {median['replay_s'] / median['parsl_rerun_s']:.2f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"tasks": n, "cycles": cycles, "median": median}, indent=2))
    return 0 if median["identical"] == n else 1


if __name__ == "__main__":
    sys.exit(main())
