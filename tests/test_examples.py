"""Every example runs as written, from a directory other than the repository."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, cwd: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    assert (cwd / "runinfo" / "000" / "parsl.log").exists()
    return done.stdout


def test_hello_prints_python_and_bash_greetings(tmp_path):
    out = run_example("hello.py", tmp_path)
    assert out.count("Hello World!") == 2


def test_monte_carlo_pi_prints_three_estimates_and_their_average(tmp_path):
    out = run_example("monte_carlo_pi.py", tmp_path)
    estimates = [float(x) for x in re.search(r"Estimates: (.*)", out).group(1).split(",")]
    average = float(re.search(r"Average: ([0-9.]+)", out).group(1))
    assert len(estimates) == 3 and all(abs(e - 3.1416) < 0.02 for e in estimates)
    assert abs(average - sum(estimates) / 3) < 1e-4


def test_docking_sweep_scores_every_pair_and_names_the_best(tmp_path):
    work = tmp_path / "work"
    out = run_example("docking_sweep.py", tmp_path, "--workdir", str(work))
    results = sorted(work.rglob("*.txt")) or sorted(p for p in work.rglob("*") if p.is_file())
    scores = {}
    for path in results:
        fields = path.read_text().split()
        if len(fields) == 3:
            scores[(fields[0], fields[1])] = float(fields[2])
    assert len(scores) == 12
    best = min(scores, key=scores.get)
    assert f"Best pair: {best[0]} + {best[1]}" in out
