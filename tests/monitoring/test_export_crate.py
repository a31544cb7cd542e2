"""Workflow Run RO-Crate export (``parsl-repro export --format ro-crate``) of real runs.

Each crate is read back with the ``rocrate`` package and checked by the community validator
(roc-validator 0.13, run offline by scripts/roc-validator.sh from its own environment) at the
REQUIRED level of the Provenance Run Crate 0.5 profile, which includes the Process Run Crate,
Workflow Run Crate, Workflow RO-Crate and RO-Crate 1.1 requirements.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from rocrate.rocrate import ROCrate
from sqlalchemy import select

from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.engine import open_for_reading
from parsl_repro.monitoring.export import OutputExists, export_ro_crate, vocab
from parsl_repro.serialize import deserialize_value
from tests.monitoring.export_runs import run_script, store_url

REPO = Path(__file__).resolve().parents[2]
PROFILES = {"https://w3id.org/ro/wfrun/process/0.5", "https://w3id.org/ro/wfrun/workflow/0.5",
            "https://w3id.org/ro/wfrun/provenance/0.5", "https://w3id.org/workflowhub/workflow-ro-crate/1.0"}


def validate(crate: Path, tmp_path: Path, level: str = "REQUIRED", profile: str = "provenance-run-crate-0.5") -> dict:
    report = tmp_path / f"report-{crate.name}-{level}.json"
    done = subprocess.run(["bash", str(REPO / "scripts" / "roc-validator.sh"), str(crate), "-p",
                           profile, "-l", level, "-f", "json", "-o", str(report)],
                          capture_output=True, text=True, timeout=600)
    assert report.exists(), f"the validator wrote no report:\n{done.stdout}\n{done.stderr}"
    return json.loads(report.read_text())


def _failures(report: dict) -> list[str]:
    return [f"{i['check']['identifier']}: {i['message'][:160]} ({i.get('violatingEntity')})" for i in report["issues"]]


def _graph(crate: Path) -> dict[str, dict]:
    return {e["@id"]: e for e in json.loads((crate / "ro-crate-metadata.json").read_text())["@graph"]}


def _ids(value) -> list[str]:
    values = value if isinstance(value, list) else [value] if value else []
    return [v["@id"] for v in values]


SELECTIONS = {"main": ["main"], "killed and resumed": ["resumed", "killed"]}


@pytest.mark.parametrize("selection", SELECTIONS)
def test_the_crate_passes_the_provenance_run_crate_profile(recorded, selection, tmp_path):
    _root, engine, runs = recorded
    run_ids = [runs[name] for name in SELECTIONS[selection]]
    crate_dir = tmp_path / "crate"
    summary = export_ro_crate(engine, run_ids, str(crate_dir), license="CC-BY-4.0")
    assert summary.path == str(crate_dir) and summary.records > 0

    report = validate(crate_dir, tmp_path)
    assert report["passed"], "\n".join(_failures(report))
    assert report["statistics"]["total_checks"] >= 80  # the whole REQUIRED set ran, not an early stop

    crate = ROCrate(crate_dir)  # the rocrate package reads it back
    assert {profile.id for profile in crate.root_dataset["conformsTo"]} == PROFILES
    workflow = crate.mainEntity
    assert {"File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"} <= set(workflow.type)
    assert workflow["programmingLanguage"]["name"] == "Python"
    metadata = json.loads((crate_dir / "ro-crate-metadata.json").read_text())
    assert metadata["@context"][:2] == ["https://w3id.org/ro/crate/1.1/context",
                                        "https://w3id.org/ro/terms/workflow-run/context"]
    graph = _graph(crate_dir)
    for run_id in run_ids:
        run = graph[f"#run-{run_id}"]
        assert run["@type"] == "CreateAction" and run["instrument"]["@id"] in graph
        assert run["startTime"].endswith("+00:00")
        organize = next(e for e in graph.values() if e["@type"] == "OrganizeAction" and e["result"]["@id"] ==
                        f"#run-{run_id}")
        engine_app = graph[organize["instrument"]["@id"]]
        assert engine_app["name"] == "parsl_repro" and engine_app["softwareVersion"]
        for control in _ids(organize["object"]):
            assert graph[control]["@type"] == "ControlAction"
            assert graph[graph[control]["instrument"]["@id"]]["@type"] == "HowToStep"
    # the environment: Python and the installed packages, by their PyPI addresses
    requirements = _ids(workflow["softwareRequirements"])
    assert any(r.startswith("https://www.python.org/") for r in requirements)
    assert "https://pypi.org/project/sqlalchemy/" in {graph[r].get("url") for r in requirements}
    # the PROV-O of the same runs is in the crate, and says what it is
    prov = graph["provenance/prov.ttl"]
    assert prov["sha256"] == hashlib.sha256((crate_dir / "provenance" / "prov.ttl").read_bytes()).hexdigest()


def test_every_task_try_file_and_block_appears_in_the_crate(recorded, tmp_path):
    _root, engine, runs = recorded
    run_id = runs["main"]
    crate_dir = tmp_path / "crate"
    export_ro_crate(engine, [run_id], str(crate_dir))
    graph = _graph(crate_dir)
    with engine.connect() as conn:
        tasks = list(conn.execute(select(m.Task).where(m.Task.run_id == run_id)))
        tries = list(conn.execute(select(m.Try).where(m.Try.run_id == run_id)))
        uses = list(conn.execute(select(m.FileUse.task_id, m.FileUse.role, m.File.url, m.File.sha256, m.File.size)
                                 .join(m.File, m.File.file_id == m.FileUse.file_id).where(m.FileUse.run_id == run_id)))
        blocks = set(conn.execute(select(m.Block.executor_label, m.Block.block_id).where(m.Block.run_id == run_id)))
    tries_of = {}
    for t in tries:
        tries_of.setdefault(t.task_id, []).append(t)
    actions = {}
    for task in tasks:
        attempts = tries_of.get(task.task_id, [])
        if len(attempts) > 1:  # one action per try
            for t in attempts:
                action = graph[f"#run-{run_id}-task-{task.task_id}-try-{t.try_id}"]
                assert action["tryId"] == t.try_id
                actions[(task.task_id, t.try_id)] = action
        else:
            action = graph[f"#run-{run_id}-task-{task.task_id}"]
            assert action.get("tryId") == (attempts[0].try_id if attempts else None)
            actions[(task.task_id, None)] = action
        instrument = graph[action["instrument"]["@id"]]
        assert instrument["@type"] == "SoftwareApplication" and instrument["name"] == task.task_func_name
        assert instrument["appDigest"] == task.app_digest
    flaky = next(t for t in tasks if t.task_func_name == "flaky")
    assert actions[(flaky.task_id, 0)]["actionStatus"] == "http://schema.org/FailedActionStatus"
    assert "server busy" in actions[(flaky.task_id, 0)]["error"]
    assert actions[(flaky.task_id, 1)]["actionStatus"] == "http://schema.org/CompletedActionStatus"
    for use in uses:  # every file, by its location and recorded digest, on the right side of its task's action
        found = [e for e in graph.values() if e.get("url") == vocab.file_url(use.url) and e.get("sha256") == use.sha256]
        assert len(found) == 1, use.url
        assert found[0]["contentSize"] == str(use.size)
        action = next(a for (tid, _n), a in actions.items() if tid == use.task_id)
        side = "object" if use.role == "input" else "result"
        assert found[0]["@id"] in _ids(action.get(side)), (use.url, use.role)
    for label, block_id in blocks:
        block = graph[f"#run-{run_id}-executor-{label}-block-{block_id}"]
        assert block["@type"] == "Block" and block["ofExecutor"]["@id"] in graph
    with engine.connect() as conn:
        sampled = set(conn.execute(select(m.Resource.task_id, m.Resource.try_id).where(m.Resource.run_id == run_id)))
    assert sampled
    for task_id, try_id in sampled:  # resource usage, with units, where the pools sampled it
        action = actions.get((task_id, None)) or actions[(task_id, try_id)]
        usage = {graph[u["@id"]]["name"]: graph[u["@id"]] for u in
                 (action["resourceUsage"] if isinstance(action["resourceUsage"], list) else [action["resourceUsage"]])}
        assert usage["peak resident memory"]["unitCode"] == "E34" and usage["peak resident memory"]["propertyID"]
    placed = [t for t in tries if t.block_id is not None]
    assert placed
    for t in placed:
        action = actions.get((t.task_id, None)) or actions[(t.task_id, t.try_id)]
        assert graph[action["executedBy"]["@id"]]["@type"] == "Block"
        assert graph[action["executedAt"]["@id"]]["hostname"]


def test_the_crate_zips_and_keeps_stored_results_when_asked(recorded, tmp_path):
    _root, engine, runs = recorded
    target = tmp_path / "run.zip"
    summary = export_ro_crate(engine, [runs["killed"], runs["resumed"]], str(target), include_results=True)
    assert summary.bytes == target.stat().st_size
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(target) as archive:
        archive.extractall(unpacked)
    assert (unpacked / "ro-crate-metadata.json").exists()
    report = validate(unpacked, tmp_path)
    assert report["passed"], "\n".join(_failures(report))
    graph = _graph(unpacked)
    with engine.connect() as conn:
        stored = list(conn.execute(select(m.Result).where(m.Result.run_id.in_([runs["killed"], runs["resumed"]]))))
    assert stored
    for row in stored:
        path = unpacked / "results" / row.run_id[:8] / f"task-{row.task_id}.{row.serializer}"
        data = path.read_bytes()
        entity = graph[str(path.relative_to(unpacked))]
        assert entity["sha256"] == hashlib.sha256(data).hexdigest() == row.result_digest
        assert deserialize_value(row.serializer, data) == row.task_id ** 2  # simulate(x) returned x * x
    # the killed run's unfinished task: no end, failed, and saying why
    unfinished = graph[f"#run-{runs['killed']}-task-2"]
    assert "endTime" not in unfinished and "the run ended killed" in unfinished["error"]
    # a memo hit names the stored result it reused
    hit = graph[f"#run-{runs['resumed']}-task-0"]
    assert hit["memoSource"] == {"@id": f"#run-{runs['killed']}-task-0"} and hit["memoSource"]["@id"] in graph


CANCELLED = """
    import time

    import parsl_repro as parsl
    from parsl_repro import python_app


    @python_app
    def slow():
        time.sleep(30)


    @python_app
    def after(x):
        return x


    with parsl.load():
        after(slow())
        time.sleep(1)
        raise SystemExit("stopped before the second task could run")
"""


def test_a_cancelled_task_is_a_failed_action_that_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("PARSL_REPRO_PROVENANCE_URL", raising=False)
    (tmp_path / "stop.py").write_text(__import__("textwrap").dedent(CANCELLED))
    done = subprocess.run([sys.executable, "stop.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    engine = open_for_reading(store_url(tmp_path))
    run_id = engine.connect().execute(select(m.Workflow.run_id)).scalar_one()
    states = dict(engine.connect().execute(select(m.Task.task_func_name, m.Task.task_status_name)
                                           .where(m.Task.run_id == run_id)).all())
    assert states["after"] == "cancelled"
    export_ro_crate(engine, [run_id], str(tmp_path / "crate"))
    engine.dispose()
    graph = _graph(tmp_path / "crate")
    after = graph[f"#run-{run_id}-task-1"]
    assert after["actionStatus"] == "http://schema.org/FailedActionStatus" and "cancelled" in after["error"]


EMPTY = """
    import parsl_repro as parsl

    with parsl.load():
        pass
"""


def test_a_run_of_no_task_exports_a_crate_valid_for_what_it_declares(tmp_path, monkeypatch):
    monkeypatch.delenv("PARSL_REPRO_PROVENANCE_URL", raising=False)
    run_script(tmp_path, "empty.py", EMPTY)
    engine = open_for_reading(store_url(tmp_path))
    run_id = engine.connect().execute(select(m.Workflow.run_id)).scalar_one()
    summary = export_ro_crate(engine, [run_id], str(tmp_path / "crate"), license="CC0-1.0")
    engine.dispose()
    assert any("no task ran" in note for note in summary.notes)
    graph = _graph(tmp_path / "crate")
    assert {p["@id"] for p in graph["./"]["conformsTo"]} == PROFILES - {"https://w3id.org/ro/wfrun/provenance/0.5"}
    report = validate(tmp_path / "crate", tmp_path, profile="workflow-run-crate-0.5")
    assert report["passed"], "\n".join(_failures(report))


COPIES = """
    import parsl_repro as parsl
    from parsl_repro import File, python_app


    @python_app(cache=True)
    def write(text, outputs=()):
        with open(outputs[0], "w") as f:
            f.write(text)
        return len(text)


    with parsl.load():
        print([write(name * 3, outputs=[File(name + ".txt")]).result()
               for name in ("kept", "changed", "gone", "ünï cödé")])
"""

READS = """
    import parsl_repro as parsl
    from parsl_repro import File, python_app


    @python_app
    def size(inputs=()):
        with open(inputs[0]) as f:
            return len(f.read())


    with parsl.load():
        print(size(inputs=[File("kept.txt")]).result())
"""


def test_copied_files_are_the_recorded_ones_and_changed_or_vanished_ones_are_only_referenced(tmp_path, monkeypatch):
    monkeypatch.delenv("PARSL_REPRO_PROVENANCE_URL", raising=False)
    run_script(tmp_path, "wf.py", COPIES)
    run_script(tmp_path, "reads.py", READS)  # a later run reads what the first one wrote
    (tmp_path / "gone.txt").unlink()
    (tmp_path / "wf.py").write_text((tmp_path / "wf.py").read_text() + "\n# edited after the run\n")
    (tmp_path / "changed.txt").write_text("edited after the run")
    engine = open_for_reading(store_url(tmp_path))
    run_id, reader = engine.connect().execute(select(m.Workflow.run_id).order_by(m.Workflow.time_began)).scalars()
    crate_dir = tmp_path / "crate"
    summary = export_ro_crate(engine, [reader, run_id], str(crate_dir), files="copy")  # the reader first
    engine.dispose()
    notes = "\n".join(summary.notes)
    assert f"1 file(s) changed since the run (not copied: referenced by URL with the recorded digest): " \
           f"{tmp_path / 'changed.txt'}" in notes
    assert f"1 file(s) vanished since the run (not copied: referenced by URL with the recorded digest): " \
           f"{tmp_path / 'gone.txt'}" in notes
    assert f"the workflow script {tmp_path / 'wf.py'} changed" in notes
    graph = _graph(crate_dir)
    kept = next(e for e in graph.values() if e.get("name") == "kept.txt")
    assert not kept["@id"].startswith("file:") and (crate_dir / kept["@id"]).read_text() == "keptkeptkept"
    assert _ids(graph[f"#run-{reader}-task-0"]["object"]) == [kept["@id"]]  # written by the run named second
    unicode = next(e for e in graph.values() if e.get("name") == "ünï cödé.txt")
    assert unicode["@id"] in _ids(graph[f"#run-{run_id}-task-3"]["result"])
    assert (crate_dir / __import__("urllib.parse").parse.unquote(unicode["@id"])).read_text() == "ünï cödé" * 3
    assert kept["sha256"] == hashlib.sha256(b"keptkeptkept").hexdigest()
    for name in ("changed.txt", "gone.txt"):
        entity = next(e for e in graph.values() if e.get("name") == name)
        assert entity["@id"] == vocab.file_url(str(tmp_path / name)), "referenced by URL, not copied"
        assert not any(p.name == name for p in crate_dir.rglob("*"))
    # the script changed: the crate holds the apps' recorded sources in its place, never today's script
    workflow = (crate_dir / "workflow" / "wf.py").read_text()
    assert "edited after the run" not in workflow and "def write(text, outputs=())" in workflow
    assert "changed" in graph["workflow/wf.py"]["description"]
    report = validate(crate_dir, tmp_path)
    assert report["passed"], "\n".join(_failures(report))
    readme = (crate_dir / "README.md").read_text()
    assert f"vanished since the run (not copied: referenced by URL with the recorded digest): " \
           f"{tmp_path / 'gone.txt'}" in readme


def test_the_command_writes_a_crate_and_refuses_to_overwrite_it(recorded, tmp_path):
    root, engine, runs = recorded
    target = tmp_path / "crate"
    command = [sys.executable, "-m", "parsl_repro.cli", "--runinfo", str(root / "runinfo"), "export",
               runs["main"][:8], "-f", "ro-crate", "-o", str(target), "--license", "CC-BY-4.0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"wrote {target}" in done.stderr and (target / "ro-crate-metadata.json").exists()
    assert _graph(target)["./"]["license"]["@id"] == "https://spdx.org/licenses/CC-BY-4.0"
    before = (target / "ro-crate-metadata.json").read_bytes()
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "--force" in again.stderr
    assert (target / "ro-crate-metadata.json").read_bytes() == before
    with pytest.raises(OutputExists):
        export_ro_crate(engine, [runs["main"]], str(target))
    export_ro_crate(engine, [runs["resumed"]], str(target), force=True)
    assert f"#run-{runs['resumed']}" in _graph(target)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".crate")]  # nothing half-written left
