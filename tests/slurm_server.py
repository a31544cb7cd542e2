"""A real single-node Slurm cluster for tests, run by scripts/slurm.sh (no mocks).

    with SlurmCluster(tmp_dir) as conf:      # the slurm.conf path; clients need SLURM_CONF=conf
        ...
"""
from __future__ import annotations

from tests.server_script import ServerScript


class SlurmCluster(ServerScript):
    """slurmctld and slurmd (and munged if none runs) on ports of their own, state in base_dir."""

    script = "slurm.sh"

    def start(self) -> str:
        """Start the cluster; return the path of its slurm.conf."""
        return self._start_output().strip().splitlines()[-1]

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
