"""A real single-node Slurm cluster for tests, run by scripts/slurm.sh (no mocks).

    with SlurmCluster(tmp_dir) as conf:      # the slurm.conf path; clients need SLURM_CONF=conf
        ...
"""
from __future__ import annotations

import pathlib
import subprocess

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "scripts" / "slurm.sh"


class SlurmCluster:
    """slurmctld, slurmd (and munged if none runs) with their state in base_dir."""

    def __init__(self, base_dir: pathlib.Path, start_timeout: float = 600.0) -> None:
        self.base_dir = pathlib.Path(base_dir)
        self.start_timeout = start_timeout  # covers an apt-get install on a bare machine
        self.conf = ""

    def _run(self, command: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(SCRIPT), command, str(self.base_dir)], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def start(self) -> str:
        proc = self._run("start", self.start_timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"scripts/slurm.sh start failed ({proc.returncode}):\n{proc.stderr}")
        self.conf = proc.stdout.strip().splitlines()[-1]
        return self.conf

    def stop(self) -> None:
        proc = self._run("stop", 120)
        if proc.returncode != 0:
            raise RuntimeError(f"scripts/slurm.sh stop failed ({proc.returncode}):\n{proc.stderr}")

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
