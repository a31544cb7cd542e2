"""Memoization across runs, driven by the store: hits, misses and why; checkpoints, Parsl's way."""
from __future__ import annotations

import json
import os
import pickle
import time

import pytest

import parsl_repro
from parsl_repro import python_app
from parsl_repro.config import Config
from parsl_repro.dataflow.errors import BadCheckpoint
from parsl_repro.dataflow.memoization import BasicMemoizer
from parsl_repro.executors import ThreadPoolExecutor
from parsl_repro.utils import get_all_checkpoints, get_last_checkpoint

WORKFLOW = """
    import sys
    import parsl_repro as parsl
    from parsl_repro import File, python_app
    from parsl_repro.config import Config

    SCALE = 10

    @python_app(cache=True)
    def scale(x, note=""):
        # counting calls through a file
        with open("calls.log", "a") as f:
            f.write(f"{x}\\n")
        return x * SCALE

    @python_app(cache=True)
    def count_words(inputs=()):
        with open("calls.log", "a") as f:
            f.write("words\\n")
        return len(open(inputs[0]).read().split())

    if __name__ == "__main__":
        with parsl.load(Config(reuse_from_store=True)):
            print([scale(i).result() for i in range(3)], count_words(inputs=[File("text.txt")]).result())
"""

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def workflow(ws):
    ws.write("wf.py", WORKFLOW)
    ws.write("text.txt", "one two three")
    return ws


def test_unchanged_code_and_inputs_hit_across_runs(workflow):
    assert workflow.run().strip() == "[0, 10, 20] 3"
    assert len(workflow.calls()) == 4
    assert workflow.run().strip() == "[0, 10, 20] 3"
    assert len(workflow.calls()) == 4, "second run executed cached tasks again"
    tasks = json.loads(workflow.cli("tasks", "--json"))
    assert {t["task_status_name"] for t in tasks} == {"memo_done"}
    first = json.loads(workflow.cli("runs", "--json"))[-1]["run_id"]
    assert {t["memo_source_run"] for t in tasks} == {first}
    assert "was a memo hit" in workflow.cli("why")


def test_a_changed_comment_is_a_hit_and_a_changed_body_is_a_miss_named_by_why(workflow):
    workflow.run()
    source = (workflow.root / "wf.py").read_text()
    (workflow.root / "wf.py").write_text(source.replace("# counting calls through a file", "# a different comment\n"))
    workflow.run()
    assert len(workflow.calls()) == 4
    (workflow.root / "wf.py").write_text(source.replace("return x * SCALE", "return x * SCALE + 0"))
    workflow.run()
    assert len(workflow.calls()) == 7
    why = json.loads(workflow.cli("why", "--json", "--app", "scale"))
    assert len(why) == 3 and all(e["outcome"] == "miss" for e in why)
    assert all(any(c.startswith("code") for c in e["changed"]) for e in why)
    assert all(not any(c.startswith("argument") for c in e["changed"]) for e in why)


def test_a_changed_module_constant_the_app_uses_is_a_miss(workflow):
    workflow.run()
    source = (workflow.root / "wf.py").read_text()
    (workflow.root / "wf.py").write_text(source.replace("SCALE = 10", "SCALE = 11"))
    assert workflow.run().strip() == "[0, 11, 22] 3"
    assert len(workflow.calls()) == 7


def test_changed_input_file_content_is_a_miss_named_by_path(workflow):
    workflow.run()
    (workflow.root / "text.txt").write_text("one two three four")
    assert workflow.run().strip() == "[0, 10, 20] 4"
    assert workflow.calls().count("words") == 2
    why = workflow.cli("why", "--app", "count_words")
    assert "text.txt: content changed" in why


def test_same_content_under_another_name_is_a_hit(workflow):
    workflow.run()
    os.rename(workflow.root / "text.txt", workflow.root / "renamed.txt")
    source = (workflow.root / "wf.py").read_text()
    workflow.write("wf2.py", source.replace('File("text.txt")', 'File("renamed.txt")'))
    (workflow.root / "wf.py").unlink()
    os.rename(workflow.root / "wf2.py", workflow.root / "wf.py")
    assert workflow.run().strip() == "[0, 10, 20] 3"
    assert workflow.calls().count("words") == 1


def _load(tmp_path, **memo):
    return parsl_repro.load(Config(executors=[ThreadPoolExecutor(label="t")], run_dir=str(tmp_path / "runinfo"),
                                   memoizer=BasicMemoizer(**memo)))


@python_app(cache=True)
def token(x):
    import uuid
    return str(uuid.uuid4())


@python_app(cache=True)
def failing_token(x):
    import uuid
    raise RuntimeError(str(uuid.uuid4()))


def test_task_exit_checkpoint_writes_parsl_format_and_last_checkpoint_restores_it(tmp_path, no_leaks):
    with _load(tmp_path, checkpoint_mode="task_exit", checkpoint_files=[]) as dfk:
        first = token(1).result()
        path = os.path.join(dfk.run_dir, "checkpoint", "tasks.pkl")
    with open(path, "rb") as f:
        entry = pickle.load(f)
    assert entry["result"] == first and entry["exception"] is None and len(entry["hash"]) == 64
    assert get_last_checkpoint(str(tmp_path / "runinfo")) == [os.path.dirname(path)]
    with _load(tmp_path, checkpoint_mode="task_exit", checkpoint_files=get_last_checkpoint(str(tmp_path / "runinfo"))):
        assert token(1).result() == first
        assert token(2).result() != first
    # two runs ago is not lost: the second run reused it, so its checkpoint covers it
    with _load(tmp_path, checkpoint_files=get_last_checkpoint(str(tmp_path / "runinfo"))):
        assert token(1).result() == first
    # with the store, every run has a checkpoint (what it recorded), with or without a checkpoint_mode
    assert len(get_all_checkpoints(str(tmp_path / "runinfo"))) == 3


def test_a_task_exit_checkpoint_is_in_the_file_when_the_task_returns(tmp_path, no_leaks):
    """The checkpoint file stays open for the run (one open per task cost more than a memo hit); each
    task's entry is flushed to it before the task's future is done, so a run that resumes after this one
    is killed finds every task that had returned. A memo hit's entry follows within FLUSH_DELAY."""
    with _load(tmp_path, checkpoint_mode="task_exit", checkpoint_files=[]) as dfk:
        path = os.path.join(dfk.run_dir, "checkpoint", "tasks.pkl")
        for n in range(1, 4):
            value = token(n).result()
            with open(path, "rb") as f:
                entries = [pickle.load(f) for _ in range(n)]
            assert entries[-1]["result"] == value
        before = os.path.getsize(path)
        assert token(1).result() == entries[0]["result"]  # a memo hit, checkpointed too: its result is
        deadline = time.monotonic() + 5  # durable where it came from, so its entry is flushed a moment later
        while os.path.getsize(path) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        with open(path, "rb") as f:
            assert len([pickle.load(f) for _ in range(4)]) == 4


def test_memo_hits_are_written_to_tasks_pkl_as_parsl_writes_them(tmp_path, no_leaks):
    """docs/provenance.md and docs/api.md said memo hits are left out of tasks.pkl; they are written,
    as Parsl writes them, so a chain of runs resuming from tasks.pkl files alone keeps them."""
    runinfo = str(tmp_path / "runinfo")
    with _load(tmp_path, checkpoint_mode="task_exit", checkpoint_files=[]):
        first = token(1).result()
    with _load(tmp_path, checkpoint_mode="task_exit", checkpoint_files=get_last_checkpoint(runinfo)) as dfk:
        assert token(1).result() == first  # a memo hit
        second = token(2).result()  # computed
        path = os.path.join(dfk.run_dir, "checkpoint", "tasks.pkl")
    entries = []
    with open(path, "rb") as f:
        while True:
            try:
                entries.append(pickle.load(f))
            except EOFError:
                break
    assert sorted(e["result"] for e in entries) == sorted([first, second])


def test_checkpoint_files_empty_loads_nothing_and_failures_are_never_reused(tmp_path, no_leaks):
    with _load(tmp_path, checkpoint_files=[]):
        first = token(5).result()
        failure = str(failing_token(5).exception())
    with _load(tmp_path, checkpoint_files=[]):
        assert token(5).result() != first
    with _load(tmp_path):
        assert str(failing_token(5).exception()) != failure


@pytest.mark.sqlite_only
def test_checkpoint_file_loads_without_the_store(tmp_path, no_leaks):
    with _load(tmp_path, checkpoint_mode="dfk_exit") as dfk:
        first = token(7).result()
        checkpoint = os.path.join(dfk.run_dir, "checkpoint")
    os.unlink(tmp_path / "runinfo" / "provenance.db")
    with _load(tmp_path, checkpoint_files=[checkpoint]):
        assert token(7).result() == first


def test_missing_checkpoint_is_a_clear_error_at_load(tmp_path, no_leaks):
    with pytest.raises(BadCheckpoint, match="nowhere/checkpoint"):
        _load(tmp_path, checkpoint_files=[str(tmp_path / "nowhere" / "checkpoint")])
    assert parsl_repro.dataflow.dflow.DataFlowKernelLoader._dfk is None


def test_manual_checkpoint_writes_only_when_asked(tmp_path, no_leaks):
    memoizer = BasicMemoizer(checkpoint_mode="manual")
    with parsl_repro.load(Config(memoizer=memoizer, run_dir=str(tmp_path / "runinfo"))) as dfk:
        token(1).result()
        path = os.path.join(dfk.run_dir, "checkpoint", "tasks.pkl")
        assert not os.path.exists(path)
        dfk.checkpoint()
        assert os.path.exists(path)


def test_long_standing_config_fields_work_like_the_memoizer_form(tmp_path, no_leaks):
    with parsl_repro.load(Config(checkpoint_mode="task_exit", checkpoint_files=[],
                                 run_dir=str(tmp_path / "runinfo"))) as dfk:
        first = token(3).result()
        assert os.path.exists(os.path.join(dfk.run_dir, "checkpoint", "tasks.pkl"))
    with parsl_repro.load(Config(checkpoint_files=get_last_checkpoint(str(tmp_path / "runinfo")),
                                 run_dir=str(tmp_path / "runinfo"))):
        assert token(3).result() == first


@python_app(cache=True)
def produce(outputs=()):
    import uuid
    value = str(uuid.uuid4())
    with open(outputs[0], "w") as f:
        f.write(value)
    return value


@pytest.mark.parametrize("disturb, named", [(lambda out: out.write_text("edited by hand"), "has changed"),
                                             (lambda out: out.unlink(), "has vanished")], ids=["changed", "vanished"])
def test_result_is_not_reused_when_its_output_file_changed_or_vanished(tmp_path, no_leaks, monkeypatch, disturb,
                                                                        named):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out.txt"
    from parsl_repro import File
    with _load(tmp_path, reuse_from_store=True):
        first = produce(outputs=[File(str(out))]).result()
    with _load(tmp_path, reuse_from_store=True):
        assert produce(outputs=[File(str(out))]).result() == first  # untouched output: a hit
    disturb(out)
    with _load(tmp_path, reuse_from_store=True) as dfk:
        assert produce(outputs=[File(str(out))]).result() != first
        run_id = dfk.run_id
    assert out.exists(), "the task ran again and wrote its output"
    from parsl_repro.monitoring import queries
    from tests.monitoring.conftest import store_engine
    [explanation] = queries.why(store_engine(tmp_path / "runinfo"), run_id)
    assert any(f"out.txt {named}" in c for c in explanation.changed)


@pytest.mark.sqlite_only
def test_memo_hits_within_a_run_still_work_without_recording(tmp_path, no_leaks):
    calls = []

    @python_app(cache=True)
    def f(x):
        calls.append(x)
        return x

    with parsl_repro.load(Config(run_dir=str(tmp_path / "r"), provenance=False)):
        f(1).result()
        assert f(1).result() == 1
    assert calls == [1]


class _Opaque:
    pass


class _Exploding:
    pass


def test_failing_id_for_memo_fails_the_task_with_its_own_error(tmp_path, no_leaks):
    from parsl_repro.dataflow.memoization import id_for_memo

    @id_for_memo.register(_Exploding)
    def _explode(value, output_ref=False):
        raise KeyError("user hash function broke")

    @python_app(cache=True)
    def takes(x):
        return 1

    with _load(tmp_path):
        with pytest.raises(KeyError, match="user hash function broke"):
            takes(_Exploding()).result()
        assert takes(_Opaque()).result() == 1  # unknown type: runs uncached instead


def test_restore_takes_the_named_runs_result_when_several_runs_stored_the_key(tmp_path, no_leaks):
    with _load(tmp_path, checkpoint_files=[]):
        token(9).result()
    with _load(tmp_path, checkpoint_mode="task_exit", checkpoint_files=[]):
        second = token(9).result()
    with _load(tmp_path, checkpoint_files=get_last_checkpoint(str(tmp_path / "runinfo"))):
        assert token(9).result() == second


@pytest.mark.sqlite_only
def test_the_store_is_parsls_monitoring_db_and_provenance_db_links_to_it(tmp_path, no_leaks):
    import sqlite3
    with _load(tmp_path):
        token(1).result()
    runinfo = tmp_path / "runinfo"
    assert (runinfo / "provenance.db").is_symlink() and not (runinfo / "monitoring.db").is_symlink()
    for name in ("provenance.db", "monitoring.db"):
        assert sqlite3.connect(runinfo / name).execute("SELECT count(*) FROM task").fetchone() == (1,)
    assert not (runinfo / "provenance.db-wal").exists()


@pytest.mark.sqlite_only
def test_deleting_monitoring_db_starts_a_fresh_store_as_in_parsl(tmp_path, no_leaks):
    import sqlite3
    for _ in range(2):
        with _load(tmp_path):
            token(2).result()
    runinfo = tmp_path / "runinfo"
    assert sqlite3.connect(runinfo / "monitoring.db").execute("SELECT count(*) FROM workflow").fetchone() == (2,)
    os.remove(runinfo / "monitoring.db")
    with _load(tmp_path):
        token(3).result()
    assert sqlite3.connect(runinfo / "monitoring.db").execute("SELECT count(*) FROM workflow").fetchone() == (1,)


@pytest.mark.sqlite_only
def test_older_layouts_are_kept(tmp_path, no_leaks):
    import sqlite3

    from parsl_repro.monitoring.engine import prepare_default_store
    # parsl_repro's older layout: provenance.db is the database, monitoring.db gets linked to it
    older = tmp_path / "older"
    older.mkdir()
    sqlite3.connect(older / "provenance.db").execute("CREATE TABLE schema_info (key TEXT)").connection.close()
    prepare_default_store(str(older))
    assert os.readlink(older / "monitoring.db") == "provenance.db"
    assert not (older / "provenance.db").is_symlink()
    # real Parsl's monitoring.db is left alone: provenance.db will be a database of its own
    parsls = tmp_path / "parsls"
    parsls.mkdir()
    sqlite3.connect(parsls / "monitoring.db").execute("CREATE TABLE workflow (run_id TEXT)").connection.close()
    prepare_default_store(str(parsls))
    assert not (parsls / "provenance.db").exists() and not (parsls / "monitoring.db").is_symlink()
    # the older layout's alias left dangling when its provenance.db was deleted: the new layout
    dangling = tmp_path / "dangling"
    dangling.mkdir()
    os.symlink("provenance.db", dangling / "monitoring.db")
    prepare_default_store(str(dangling))
    assert os.readlink(dangling / "provenance.db") == "monitoring.db"
    assert not (dangling / "monitoring.db").exists()  # SQLite creates it on first use


def test_a_hit_in_the_same_run_makes_no_other_task_and_is_recorded(tmp_path, no_leaks):
    from sqlalchemy import text

    from tests.monitoring.conftest import store_engine
    with _load(tmp_path) as kernel:
        first = token(77)
        first.result()
        second = token(77)
        assert second.result() == first.result() and second.task_record.from_memo
        assert kernel.task_count == 2  # reading the hit's outcome never turned into a task of its own
        run = kernel.run_id
    with store_engine(tmp_path / "runinfo").connect() as conn:
        states = conn.execute(text("SELECT task_status_name FROM task WHERE run_id = :r ORDER BY task_id"),
                              {"r": run}).scalars().all()
    assert states == ["exec_done", "memo_done"]


def test_why_names_the_changed_argument_and_a_changed_environment(workflow):
    workflow.run()
    source = (workflow.root / "wf.py").read_text()
    (workflow.root / "wf.py").write_text(source.replace("for i in range(3)", "for i in range(7, 8)"))
    assert workflow.run().strip() == "[70] 3"
    [new_call] = [e for e in json.loads(workflow.cli("why", "--json", "--app", "scale")) if e["outcome"] == "miss"]
    assert new_call["changed"] == ["argument 0 changed"]
    # the earlier runs were recorded with other installed packages: not part of the key, but named
    from sqlalchemy import update

    from parsl_repro.monitoring import models as m
    with workflow.engine.begin() as conn:
        last = json.loads(workflow.cli("runs", "--json"))[0]["run_id"]
        conn.execute(m.Environment.__table__.insert(), [{"packages_digest": "0" * 64, "packages": "[]"}])
        conn.execute(update(m.Workflow).where(m.Workflow.run_id != last).values(packages_digest="0" * 64))
    [again] = [e for e in json.loads(workflow.cli("why", "--json", "--app", "scale")) if e["outcome"] == "miss"]
    assert "environment: the installed packages differ (not part of the memo key)" in again["changed"]


def test_periodic_checkpoint_writes_on_its_timer(tmp_path, no_leaks):
    import time

    with parsl_repro.load(Config(checkpoint_mode="periodic", checkpoint_period="00:00:01",
                                 run_dir=str(tmp_path / "runinfo"))) as dfk:
        first = token(11).result()
        path = os.path.join(dfk.run_dir, "checkpoint", "tasks.pkl")
        deadline = time.monotonic() + 15
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.path.exists(path), "no checkpoint written while the run was still going"
        with open(path, "rb") as f:
            assert pickle.load(f)["result"] == first
    with parsl_repro.load(Config(checkpoint_files=get_last_checkpoint(str(tmp_path / "runinfo")),
                                 run_dir=str(tmp_path / "runinfo"))):
        assert token(11).result() == first


def test_a_run_that_recorded_no_result_does_not_hide_the_last_checkpoint(tmp_path, no_leaks):
    runinfo = str(tmp_path / "runinfo")
    with parsl_repro.load(Config(checkpoint_mode="task_exit", run_dir=runinfo)):
        first = token(5).result()

    @python_app
    def not_cached():
        return 1

    with parsl_repro.load(Config(run_dir=runinfo)):  # e.g. another script, sharing runinfo
        not_cached().result()
    [last] = get_last_checkpoint(runinfo)
    assert last.endswith(os.path.join("000", "checkpoint"))
    with parsl_repro.load(Config(checkpoint_files=get_last_checkpoint(runinfo), run_dir=runinfo)):
        assert token(5).result() == first
