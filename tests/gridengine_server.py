"""A real single-node Grid Engine cell for tests, run by scripts/gridengine.sh (no mocks).

    with GridEngineCell(tmp_dir) as env:      # SGE_ROOT, SGE_CELL, SGE_QMASTER_PORT, SGE_EXECD_PORT
        subprocess.run(["qstat"], env={**os.environ, **env})
"""
from __future__ import annotations

import pathlib
import re

from tests.server_script import ServerScript

_EXPORT = re.compile(r"^export (?P<name>[A-Z_][A-Z0-9_]*)=(?P<value>.*)$")


class GridEngineCell(ServerScript):
    """sge_qmaster and sge_execd on ports of their own, cell and spool in base_dir; queue all.q
    with 2 slots on this host."""

    script = "gridengine.sh"

    def start(self) -> dict[str, str]:
        """Start the cell (or find it running); the environment its clients need."""
        env_file = pathlib.Path(self._start_output().strip().splitlines()[-1])
        env: dict[str, str] = {}
        for line in env_file.read_text().splitlines():
            match = _EXPORT.match(line.strip())
            if match:
                env[match["name"]] = match["value"]
        if not {"SGE_ROOT", "SGE_CELL", "SGE_QMASTER_PORT", "SGE_EXECD_PORT"} <= env.keys():
            raise RuntimeError(f"{env_file} does not export the cell's environment: {env}")
        return env

    def __enter__(self) -> dict[str, str]:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
