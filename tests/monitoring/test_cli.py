"""``parsl-repro``: listings as tables, plain text when piped and JSON on request; run references."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

WORKFLOW = """
    import parsl_repro as parsl
    from parsl_repro import File, bash_app, python_app
    from parsl_repro.config import Config

    @python_app(cache=True)
    def square(x):
        return x * x

    @python_app
    def broken():
        raise ValueError("bad input value")

    @bash_app
    def copy(inputs=(), outputs=()):
        return f"cp {inputs[0]} {outputs[0]}"

    with parsl.load(Config(reuse_from_store=True)):
        [square(i).result() for i in range(3)]
        broken().exception()
        copy(inputs=[File("a.txt")], outputs=[File("b.txt")]).result()
"""

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def recorded(ws):
    ws.write("wf.py", WORKFLOW)
    ws.write("a.txt", "payload")
    ws.run()
    ws.run()
    return ws


def test_runs_lists_newest_first_as_plain_columns_when_piped(recorded):
    out = recorded.cli("runs").splitlines()
    assert out[0].split("\t")[:2] == ["run", "workflow_name"]
    assert len(out) == 3 and all("\twf.py\t" in line for line in out[1:])
    runs = json.loads(recorded.cli("runs", "--json"))
    assert runs[0]["time_began"] >= runs[1]["time_began"]
    assert all(r["outcome"] == "failed" and r["tasks_failed_count"] == 1 for r in runs)


def test_run_references_by_prefix_last_and_errors(recorded):
    runs = json.loads(recorded.cli("runs", "--json"))
    older = runs[1]["run_id"]
    assert json.loads(recorded.cli("show", "--json", older[:8]))["run_id"] == older
    assert json.loads(recorded.cli("show", "--json"))["run_id"] == runs[0]["run_id"]
    done = subprocess.run([sys.executable, "-m", "parsl_repro.cli", "show", "zzzz"], cwd=recorded.root,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "No run matches 'zzzz'" in done.stderr


def test_tasks_filters_by_state_and_shows_the_error(recorded):
    failed = json.loads(recorded.cli("tasks", "--json", "--state", "failed"))
    assert [t["task_func_name"] for t in failed] == ["broken"]
    assert "ValueError: bad input value" in failed[0]["error"]
    plain = recorded.cli("tasks")
    assert "memo_done" in plain and "square" in plain


def test_files_lists_inputs_and_outputs_by_content(recorded):
    import hashlib
    files = json.loads(recorded.cli("files", "--json"))
    roles = {(f["role"], f["url"].rsplit("/", 1)[-1]) for f in files}
    assert ("input", "a.txt") in roles and ("output", "b.txt") in roles
    digest = hashlib.sha256(b"payload").hexdigest()
    assert all(f["sha256"] == digest for f in files if f["url"].endswith(("a.txt", "b.txt")))  # in full
    assert all(f["url"].startswith(str(recorded.root)) for f in files)  # absolute in --json
    plain = [line.split("\t") for line in recorded.cli("files").splitlines()[1:]]
    assert any(row[1:4] == ["input", "a.txt", digest[:16]] for row in plain), plain  # relative to the run's cwd


def test_why_reports_hits(recorded):
    explanations = json.loads(recorded.cli("why", "--json", "--app", "square"))
    assert [e["outcome"] for e in explanations] == ["hit", "hit", "hit"]


def test_gc_drops_results_of_old_runs_unless_a_kept_run_reused_them(recorded):
    # the kept run reused every result, and called its tasks with the same arguments: nothing goes
    assert json.loads(recorded.cli("gc", "--keep-runs", "1", "--json")) == {"runs": 1, "results": 0, "arguments": 0,
                                                                            "bytes": 0}
    recorded.write("wf.py", WORKFLOW.replace("return x * x", "return x * x * 1"))
    recorded.run()
    report = json.loads(recorded.cli("gc", "--keep-runs", "1", "--dry-run", "--json"))
    assert report["results"] == 3 and report["bytes"] > 0
    assert "dropped 3 stored results and 0 recorded arguments" in recorded.cli("gc", "--keep-runs", "1")
    assert json.loads(recorded.cli("gc", "--keep-runs", "1", "--json"))["results"] == 0
    recorded.write("wf.py", WORKFLOW.replace("range(3)", "range(10, 12)"))
    recorded.run()  # new arguments for square; the older runs' square arguments are used by no kept run
    report = json.loads(recorded.cli("gc", "--keep-runs", "1", "--json"))
    assert report["arguments"] == 3 and report["results"] == 3
    assert json.loads(recorded.cli("gc", "--keep-runs", "1", "--json"))["arguments"] == 0


@pytest.mark.sqlite_only
def test_missing_store_is_a_clear_error(ws):
    done = subprocess.run([sys.executable, "-m", "parsl_repro.cli", "runs"], cwd=ws.root, capture_output=True,
                          text=True)
    assert done.returncode == 2 and "No provenance store" in done.stderr


def _on_terminal(root, *args: str) -> str:
    """What ``parsl-repro ARGS`` shows on a (pseudo-)terminal."""
    import os
    import pty
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "parsl_repro.cli", *args], cwd=root, stdout=slave,
                            stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "200"})
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    proc.stderr.close()
    return b"".join(chunks).decode(errors="replace")


def _drawn(screen: str) -> bool:
    return ("━" in screen or "─" in screen) and "\t" not in screen


def test_rich_table_on_a_terminal(recorded):
    """A pseudo-terminal gets a drawn table (box characters), not tab-separated text."""
    screen = _on_terminal(recorded.root, "runs")
    assert "wf.py" in screen and _drawn(screen)


def test_show_and_why_draw_tables_on_a_terminal_and_plain_text_when_piped(recorded):
    screen = _on_terminal(recorded.root, "show")
    assert "script_sha256" in screen and _drawn(screen)
    assert "5 of 5 tasks finished, 1 failed" in screen and "━" in screen  # the progress bar
    plain = recorded.cli("show")
    assert "│" not in plain and "script_sha256" in plain and "5 of 5 tasks finished, 1 failed" in plain
    screen = _on_terminal(recorded.root, "why", "--app", "square")
    assert "outcome" in screen and _drawn(screen)


@pytest.mark.sqlite_only
def test_a_store_from_a_newer_version_is_a_clear_error(recorded):
    from sqlalchemy import update

    from parsl_repro.monitoring import models as m
    with recorded.engine.begin() as conn:
        conn.execute(update(m.SchemaInfo).where(m.SchemaInfo.key == "schema_version").values(value="999"))
    done = subprocess.run([sys.executable, "-m", "parsl_repro.cli", "runs"], cwd=recorded.root, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "schema version 999" in done.stderr and "Upgrade parsl_repro" in done.stderr


def test_values_are_shown_as_they_are_never_read_as_markup(ws):
    ws.write("wf.py", """
        import parsl_repro as parsl
        from parsl_repro import python_app

        @python_app
        def echo(x):
            return x

        with parsl.load():
            echo("[/tmp] and [knl|haswell]").result()
    """)
    ws.run()
    screen = _on_terminal(ws.root, "tasks")
    assert "[/tmp] and [knl|haswell]" in screen.replace("\n", "")
