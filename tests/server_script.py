"""Test servers run by this repository's scripts: ``bash scripts/NAME.sh start|stop|... DIR``."""
from __future__ import annotations

import pathlib
import subprocess

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent / "scripts"


class ServerScript:
    """A server whose state lives in ``base_dir``, driven by ``scripts/<script>``."""

    script = ""

    def __init__(self, base_dir: pathlib.Path, start_timeout: float = 600.0) -> None:
        self.base_dir = pathlib.Path(base_dir)
        self.start_timeout = start_timeout  # covers an apt-get install on a bare machine

    def _run(self, command: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(SCRIPTS / self.script), command, str(self.base_dir)], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def _start_output(self) -> str:
        """Run ``start``; its stdout. Failures raise with the script's stderr (never its stdout,
        which may hold a password)."""
        proc = self._run("start", self.start_timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"scripts/{self.script} start failed ({proc.returncode}):\n{proc.stderr}")
        return proc.stdout

    def stop(self) -> None:
        proc = self._run("stop", 120)
        if proc.returncode != 0:
            raise RuntimeError(f"scripts/{self.script} stop failed ({proc.returncode}):\n{proc.stderr}")
