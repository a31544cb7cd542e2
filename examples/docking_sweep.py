"""A parameter sweep: dock every ligand into every protein, then pick the best pair.

Shows a bash app that runs a script shipped beside this file (``dock.sh``) once per
(protein, ligand) pair, each task declaring the file it writes in ``outputs=``, and a python app
that takes all of those files as ``inputs=`` and so runs only once every docking task is done.

    python examples/docking_sweep.py [--workdir DIR]

Results go into ``--workdir`` (default: a new temporary directory), so it runs from any directory.
"""
import argparse
import itertools
import os
import shlex
import tempfile
from pathlib import Path

import parsl_repro as parsl
from parsl_repro import File, bash_app, python_app
from parsl_repro.config import Config
from parsl_repro.executors import ThreadPoolExecutor

DOCK = Path(__file__).resolve().parent / "dock.sh"

PROTEINS = ["1abc", "2xyz", "3kin"]
LIGANDS = ["aspirin", "caffeine", "ibuprofen", "imatinib"]


@bash_app
def dock(protein, ligand, outputs=(), stdout=None, stderr=None):
    return " ".join(shlex.quote(str(a)) for a in (DOCK, protein, ligand, outputs[0]))


@python_app
def rank_pairs(inputs=()):
    """Read every score file; return (score, protein, ligand) rows, best (most negative) first."""
    rows = []
    for f in inputs:
        with open(f.filepath) as fh:
            protein, ligand, score = fh.read().split()
        rows.append((float(score), protein, ligand))
    return sorted(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="where to write results (default: a new temporary directory)")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="docking-")).resolve()
    (workdir / "logs").mkdir(parents=True, exist_ok=True)

    with parsl.load(Config(executors=[ThreadPoolExecutor(max_threads=4)])):
        runs = []
        for protein, ligand in itertools.product(PROTEINS, LIGANDS):
            name = f"{protein}_{ligand}"
            runs.append(dock(protein, ligand, outputs=[File(str(workdir / f"{name}.score"))],
                             stdout=str(workdir / "logs" / f"{name}.out"),
                             stderr=str(workdir / "logs" / f"{name}.err")))

        ranked = rank_pairs(inputs=[run.outputs[0] for run in runs]).result()

    print(f"{'rank':>4}  {'protein':<8} {'ligand':<10} {'score':>7}")
    for rank, (score, protein, ligand) in enumerate(ranked, start=1):
        print(f"{rank:>4}  {protein:<8} {ligand:<10} {score:>7.2f}")
    score, protein, ligand = ranked[0]
    print(f"Best pair: {protein} + {ligand} ({score:.2f} kcal/mol)")
    print(f"Results in {workdir}{os.sep}")


if __name__ == "__main__":
    main()
