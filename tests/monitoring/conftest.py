"""Helpers for provenance tests: run workflow scripts as a user would, and read the store."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from parsl_repro.monitoring.engine import default_url, make_engine


class Workspace:
    """A directory holding a workflow script, its runinfo/ and its store."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, source: str) -> Path:
        path = self.root / name
        path.write_text(textwrap.dedent(source))
        return path

    def run(self, script: str = "wf.py", *args: str, check: bool = True, timeout: float = 120) -> str:
        done = subprocess.run([sys.executable, script, *args], cwd=self.root, capture_output=True, text=True,
                              timeout=timeout)
        if check:
            assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def cli(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "parsl_repro.cli", *args], cwd=self.root, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def calls(self, name: str = "calls.log") -> list[str]:
        path = self.root / name
        return path.read_text().split() if path.exists() else []

    @property
    def engine(self):
        return make_engine(default_url(str(self.root / "runinfo")), writer=False)


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace(tmp_path)
