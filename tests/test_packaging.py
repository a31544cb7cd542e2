"""The package builds as `bash scripts/setup.sh` builds it, without the build backend warning."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_building_the_package_prints_no_deprecation_warning(tmp_path):
    """`scripts/setup.sh` printed setuptools' block "`project.license` as a TOML table is
    deprecated": pyproject.toml now gives the license as an SPDX expression. The build runs in an
    isolated environment with the setuptools that pyproject.toml asks for, as pip does at set-up."""
    source = tmp_path / "source"  # a copy: setuptools builds in the source tree (build/, *.egg-info)
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", ".venv-roc", "runinfo", "build",
                                                                 ".venvs", "__pycache__", "*.egg-info"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-cache-dir",
                           "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "deprecated" not in output.lower(), [line for line in output.splitlines() if "deprecat" in line.lower()]
    wheels = list(tmp_path.glob("parsl_repro-*.whl"))
    assert wheels
    # the SHACL shapes ship with the export (a link in the source tree, a file in the wheel)
    import zipfile

    with zipfile.ZipFile(wheels[0]) as wheel:
        shapes = wheel.read("parsl_repro/monitoring/export/prov-shapes.ttl")
    assert shapes == (ROOT / "provenance-schemas" / "prov-shapes.ttl").read_bytes()
