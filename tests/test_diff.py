"""``parsl-repro diff``: runs of one script recorded into one store, each changed in one way (the
body of a function, an argument, an input file's content), a run made in another virtual
environment holding a newer version of a small package (a wheel built here and installed by pip),
and a run of another script with no app in common."""
from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.engine import default_url, make_engine

SCRIPT = """
    import parsl_repro as parsl
    from parsl_repro import File, python_app


    @python_app
    def measure(x, inputs=()):
        return BODY


    @python_app
    def total(values):
        return sum(values)


    with parsl.load():
        parts = [measure(ARG, inputs=[File("data.txt")]), measure(5, inputs=[File("data.txt")])]
        print(total([p.result() for p in parts]).result())
"""

OTHER = """
    import parsl_repro as parsl
    from parsl_repro import python_app


    @python_app
    def unrelated():
        return 0


    with parsl.load():
        print(unrelated().result())
"""

USES_PACKAGE = """
    import tinypkg

    import parsl_repro as parsl
    from parsl_repro import python_app


    @python_app
    def which():
        return 1


    with parsl.load():
        print(which().result(), tinypkg.VERSION)
"""


def script(body: str = "x + len(open(inputs[0]).read())", arg: int = 1) -> str:
    return textwrap.dedent(SCRIPT).replace("BODY", body).replace("ARG", str(arg))


def record(root: Path, source: str, python: str = sys.executable) -> str:
    (root / "wf.py").write_text(source)
    done = subprocess.run([python, "wf.py"], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    engine = make_engine(default_url(str(root / "runinfo")), writer=False)
    with engine.connect() as conn:
        newest = conn.execute(select(m.Workflow.run_id).order_by(m.Workflow.time_began.desc()).limit(1)).scalar()
    engine.dispose()
    return newest


def diff(root: Path, a: str, b: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parsl_repro.cli", "diff", a, b, *extra], cwd=root,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("diff")
    (root / "data.txt").write_text("12345")
    found = {"base": record(root, script()), "again": record(root, script())}
    found["body"] = record(root, script(body="2 * x + len(open(inputs[0]).read())"))
    found["argument"] = record(root, script(arg=2))
    (root / "data.txt").write_text("1234567")
    found["input"] = record(root, script())
    (root / "data.txt").write_text("12345")
    found["other"] = record(root, textwrap.dedent(OTHER))
    return root, found


def as_json(root: Path, a: str, b: str) -> tuple[int, dict]:
    done = diff(root, a, b, "--json")
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def changes(found: dict) -> list[tuple[str, str, str, int | None, int | None]]:
    return [(pair["app"], ch["what"], ch["name"], pair["a_task"], pair["b_task"])
            for pair in found["tasks"]["differences"] for ch in pair["changes"]]


def test_two_runs_of_the_same_script_on_the_same_input_do_not_differ(runs):
    root, ids = runs
    status, found = as_json(root, ids["base"], ids["again"])
    assert status == 0 and found["differs"] is False
    assert found["tasks"] == {"matched": 3, "same": 3, "only_a": 0, "only_b": 0, "differences": []}
    text = diff(root, ids["base"], ids["again"]).stdout
    assert "environment: same" in text and "config: same" in text and "code: same" in text
    assert "tasks: 3 matched, 3 the same, 0 differ" in text


def test_a_changed_function_body_is_named_with_a_diff_of_its_source(runs):
    root, ids = runs
    status, found = as_json(root, ids["base"], ids["body"])
    assert status == 1
    (code,) = found["code"]
    assert code["app"] == "measure" and code["components"] == ["source"]
    assert "-    return x + len(open(inputs[0]).read())" in code["source_diff"]
    assert "+    return 2 * x + len(open(inputs[0]).read())" in code["source_diff"]
    assert ("measure", "code", "app digest", 0, 0) in changes(found)
    assert ("measure", "result", "result digest", 0, 0) in changes(found)
    assert ("total", "argument", "arg 0", 2, 2) in changes(found)  # the results it summed changed


def test_a_changed_argument_is_named_with_both_values(runs):
    root, ids = runs
    status, found = as_json(root, ids["base"], ids["argument"])
    assert status == 1 and found["code"] == []
    pairs = found["tasks"]["differences"]
    measure = next(p for p in pairs if p["app"] == "measure")
    assert measure["changes"][0] == {"what": "argument", "name": "arg 0", "a": "1", "b": "2"}
    assert found["tasks"]["matched"] == 3 and found["tasks"]["same"] == 1  # measure(5) matched by its arguments
    assert "argument arg 0: 1 -> 2" in diff(root, ids["base"], ids["argument"]).stdout


def test_a_changed_input_file_is_named_with_both_digests(runs):
    root, ids = runs
    status, found = as_json(root, ids["base"], ids["input"])
    assert status == 1
    data = str(root / "data.txt")
    inputs = [ch for pair in found["tasks"]["differences"] for ch in pair["changes"] if ch["what"] == "input"]
    assert len(inputs) == 2 and {ch["name"] for ch in inputs} == {data}
    assert inputs[0]["a"] == hashlib.sha256(b"12345").hexdigest()
    assert inputs[0]["b"] == hashlib.sha256(b"1234567").hexdigest()


def test_runs_with_no_task_in_common_still_compare_environment_and_config(runs):
    root, ids = runs
    status, found = as_json(root, ids["base"], ids["other"])
    assert status == 1
    assert found["tasks"]["matched"] == 0 and found["tasks"]["only_a"] == 3 and found["tasks"]["only_b"] == 1
    text = diff(root, ids["base"], ids["other"]).stdout
    assert "tasks: the runs have no tasks in common (no app ran in both)" in text
    assert "environment: same" in text and "config: same" in text
    assert "apps in one run only: measure (only in A), total (only in A), unrelated (only in B)" in text


def test_a_run_that_does_not_exist_is_an_error(runs):
    root, ids = runs
    done = diff(root, ids["base"], "no-such-run")
    assert done.returncode == 2 and "No run matches 'no-such-run'" in done.stderr


# --- another virtual environment -----------------------------------------------------------------
def wheel(directory: Path, version: str) -> Path:
    """A pure-Python wheel of ``tinypkg`` at ``version``, built by hand (no network, no build backend)."""
    info = f"tinypkg-{version}.dist-info"
    files = {"tinypkg/__init__.py": f'VERSION = "{version}"\n',
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: tinypkg\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    path = directory / f"tinypkg-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def venv_with(root: Path, name: str, version: str) -> str:
    """A virtual environment that sees this one's packages (parsl_repro included) and has tinypkg
    ``version`` installed by pip; returns its python."""
    target = root / name
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True, timeout=120)
    python = target / "bin" / "python"
    site_packages = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(site_packages, "parent-env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--target",
                    site_packages, str(wheel(root, version))], check=True, timeout=120)
    return str(python)


@pytest.mark.slow
def test_an_upgraded_package_in_another_virtual_environment_is_named(tmp_path):
    old = record(tmp_path, textwrap.dedent(USES_PACKAGE), venv_with(tmp_path, "env-a", "1.0"))
    new = record(tmp_path, textwrap.dedent(USES_PACKAGE), venv_with(tmp_path, "env-b", "1.1"))
    status, found = as_json(tmp_path, old, new)
    assert status == 1
    assert found["packages"]["upgraded"] == [["tinypkg", "1.0", "1.1"]]
    assert found["packages"]["added"] == [] and found["packages"]["removed"] == []
    assert found["tasks"]["matched"] == 1 and found["tasks"]["same"] == 1 and found["code"] == []
    assert "package upgraded: tinypkg 1.0 -> 1.1" in diff(tmp_path, old, new).stdout
