"""The store records every run, task, try, state change, dependency and file use, durably."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import psutil
import pytest
from sqlalchemy import inspect, select, text

import parsl_repro
from parsl_repro import File, bash_app, python_app
from parsl_repro.config import Config
from parsl_repro.executors import ThreadPoolExecutor
from parsl_repro.monitoring import models as m
from parsl_repro.monitoring import queries
from parsl_repro.monitoring.engine import default_url, make_engine
from parsl_repro.monitoring.schema import SchemaTooNew
from parsl_repro.monitoring.store import StoreUnavailable
from tests.monitoring.conftest import ONE_TASK, store_engine

pytestmark = pytest.mark.usefixtures("backend")


def _engine(tmp_path):
    return store_engine(tmp_path / "runinfo")


def test_every_task_try_state_dependency_and_file_use_is_recorded(tmp_path, monkeypatch, no_leaks):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text("input data")
    config = Config(executors=[ThreadPoolExecutor(max_threads=2)], retries=1, run_dir=str(tmp_path / "runinfo"))
    attempts = []

    @python_app
    def read(inputs=()):
        return open(inputs[0]).read()

    @bash_app
    def write(text_, outputs=(), stderr=None):
        return f"echo '{text_}' > {outputs[0]}"

    @python_app
    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first try fails")
        return "ok"

    @python_app
    def fail():
        raise ValueError("always")

    @python_app
    def after(x):
        return x

    with parsl_repro.load(config) as dfk:
        content = read(inputs=[File(str(tmp_path / "in.txt"))])
        produced = write(content, outputs=[File(str(tmp_path / "out.txt"))], stderr=str(tmp_path / "w.err"))
        produced.result()
        assert flaky().result() == "ok"
        child = after(fail())
        child.exception()
        run_id = dfk.run_id
    engine = _engine(tmp_path)
    with engine.connect() as conn:
        run = conn.execute(select(m.Workflow.__table__).where(m.Workflow.run_id == run_id)).one()
        assert run.outcome == "failed" and run.tasks_completed_count == 3 and run.tasks_failed_count == 2
        assert run.time_completed >= run.time_began
        tasks = {r.task_id: r for r in conn.execute(select(m.Task.__table__).where(m.Task.run_id == run_id))}
        assert [tasks[i].task_status_name for i in range(5)] == ["exec_done", "exec_done", "exec_done", "failed",
                                                                 "dep_fail"]
        assert tasks[2].task_fail_count == 1 and "ValueError: always" in tasks[3].error
        assert tasks[4].task_depends == "3" and "Dependency failure" in tasks[4].error
        for t in tasks.values():
            assert t.task_time_invoked <= t.task_time_returned
        tries = conn.execute(select(m.Try.__table__).where(m.Try.run_id == run_id, m.Try.task_id == 2)).all()
        assert [(t.try_id, t.error is None) for t in sorted(tries)] == [(0, False), (1, True)]
        assert all(t.task_try_time_launched <= t.task_try_time_returned for t in tries)
        story = [(s.previous_status_name, s.task_status_name) for s in queries.task_story(engine, run_id, 2)
                 and conn.execute(select(m.Status.__table__).where(m.Status.run_id == run_id, m.Status.task_id == 2)
                                  .order_by(m.Status.id))]
        assert story == [(None, "pending"), ("pending", "launched"), ("launched", "fail_retryable"),
                         ("fail_retryable", "pending"), ("pending", "launched"), ("launched", "exec_done")]
        deps = conn.execute(select(m.Dependency.task_id, m.Dependency.depends_on).where(m.Dependency.run_id == run_id))
        assert sorted(deps) == [(1, 0), (4, 3)]
    uses = {(u["role"], os.path.basename(u["url"])): u for u in queries.list_files(engine, run_id)}
    import hashlib
    assert uses[("input", "in.txt")]["sha256"] == hashlib.sha256(b"input data").hexdigest()
    assert ("output", "out.txt") in uses and uses[("output", "out.txt")]["sha256"]


def test_run_record_names_script_code_version_and_environment(ws):
    subprocess.run(["git", "init", "-q"], cwd=ws.root, check=True)
    ws.write("wf.py", ONE_TASK)
    git = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run(git + ["add", "wf.py"], cwd=ws.root, check=True)
    subprocess.run(git + ["commit", "-qm", "first"], cwd=ws.root, check=True)
    ws.run("wf.py", "--token", "hunter2", "--size", "3")
    detail = json.loads(ws.cli("show", "--json"))
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ws.root, capture_output=True, text=True).stdout.strip()
    import hashlib
    assert detail["script_path"] == str(ws.root / "wf.py")
    assert detail["script_sha256"] == hashlib.sha256((ws.root / "wf.py").read_bytes()).hexdigest()
    assert detail["git_commit"] == head and detail["git_dirty"] is False
    assert detail["argv"] == ["wf.py", "--token", "***", "--size", "3"]
    assert detail["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert detail["cwd"] == str(ws.root) and detail["user"] and detail["host"]
    assert any(name == "sqlalchemy" for name, _ in detail["packages"])
    assert detail["outcome"] == "completed" and "ThreadPoolExecutor" in detail["config_summary"]


def test_unreachable_database_fails_at_load_before_any_task(tmp_path, no_leaks):
    config = Config(provenance="postgresql+psycopg://nobody:secret@127.0.0.1:1/none", run_dir=str(tmp_path / "r"))
    start = time.monotonic()
    with pytest.raises(StoreUnavailable) as info:
        parsl_repro.load(config)
    assert "127.0.0.1:1" in str(info.value) and "secret" not in str(info.value)
    assert time.monotonic() - start < 15
    assert parsl_repro.dataflow.dflow.DataFlowKernelLoader._dfk is None


def test_store_written_by_a_newer_schema_is_refused(tmp_path, no_leaks):
    kernel = parsl_repro.load(Config(run_dir=str(tmp_path / "runinfo")))
    kernel.cleanup()
    engine = store_engine(tmp_path / "runinfo")
    with engine.begin() as conn:
        conn.execute(text("UPDATE schema_info SET value = '999' WHERE key = 'schema_version'"))
    engine.dispose()
    with pytest.raises(SchemaTooNew, match="999.*Upgrade parsl_repro"):
        parsl_repro.load(Config(run_dir=str(tmp_path / "runinfo")))


@pytest.mark.sqlite_only
def test_provenance_false_records_nothing(tmp_path, no_leaks):
    kernel = parsl_repro.load(Config(run_dir=str(tmp_path / "runinfo"), provenance=False))
    kernel.cleanup()
    assert not (tmp_path / "runinfo" / "provenance.db").exists()


def test_two_runs_writing_one_store_at_once_lose_nothing(ws):
    ws.write("wf.py", """
        import sys
        import parsl_repro as parsl
        from parsl_repro import python_app

        @python_app
        def inc(x):
            return x + 1

        with parsl.load():
            futures = [inc(i) for i in range(1500)]
            assert [f.result() for f in futures] == list(range(1, 1501))
    """)
    procs = [subprocess.Popen([sys.executable, "wf.py"], cwd=ws.root, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read().decode()
    runs = queries.list_runs(ws.engine)
    assert len(runs) == 2 and all(r["outcome"] == "completed" for r in runs)
    with ws.engine.connect() as conn:
        for r in runs:
            n = conn.execute(select(m.Task.task_id).where(m.Task.run_id == r["run_id"],
                                                          m.Task.task_status_name == "exec_done")).all()
            assert len(n) == 1500


SLOW_WORKFLOW = """
    import os, sys, time
    import parsl_repro as parsl
    from parsl_repro import python_app
    from parsl_repro.config import Config
    from parsl_repro.executors import ThreadPoolExecutor

    @python_app(cache=True)
    def step(i):
        import time
        time.sleep(0.05)
        with open(f"done/{i}", "w") as f:
            f.write(str(time.time()))
        with open("calls.log", "a") as f:
            f.write(f"{i}\\n")
        return i * i

    from parsl_repro.utils import get_last_checkpoint

    # argv[1]: how the script resumes: "reuse_from_store" (every earlier run in the store),
    # "no_mode" (checkpoint_files=get_last_checkpoint() alone), or a checkpoint_mode with
    # checkpoint_files=get_last_checkpoint(), as Parsl's documentation shows
    if sys.argv[1] == "reuse_from_store":
        checkpointing = {"reuse_from_store": True}
    elif sys.argv[1] == "no_mode":
        checkpointing = {"checkpoint_files": get_last_checkpoint()}
    else:
        checkpointing = {"checkpoint_mode": sys.argv[1], "checkpoint_files": get_last_checkpoint()}
    os.makedirs("done", exist_ok=True)
    with parsl.load(Config(executors=[ThreadPoolExecutor(max_threads=2)], **checkpointing)):
        print(sum(f.result() for f in [step(i) for i in range(120)]))
"""


@pytest.mark.parametrize("resume", ["reuse_from_store", "no_mode", "task_exit", "dfk_exit", "manual"])
def test_sigkill_leaves_every_completed_task_in_the_store_and_resume_skips_them(ws, resume):
    """Whatever the checkpoint_mode, a run killed mid-way has a checkpoint (the results it
    stored), and resuming from it redoes no finished task (counted by the task's side effects)."""
    ws.write("wf.py", SLOW_WORKFLOW)
    proc = subprocess.Popen([sys.executable, "wf.py", resume], cwd=ws.root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(ws.calls()) < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    writers = psutil.Process(proc.pid).children()  # the provenance writer process outlives the script
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = time.time()
    _, alive = psutil.wait_procs(writers, timeout=60)  # it writes what it received, then exits
    assert not alive, "the writer process did not finish after the script was killed"
    finished_before = {int(p.name) for p in (ws.root / "done").iterdir()
                       if float(p.read_text()) < killed_at - 0.3}
    assert len(finished_before) >= 10
    with ws.engine.connect() as conn:
        run = conn.execute(select(m.Workflow.outcome, m.Workflow.run_id)).one()
        assert run.outcome == "running"  # never ended: killed
        recorded = {t.task_id: t for t in conn.execute(select(m.Task.__table__).where(m.Task.run_id == run.run_id))}
        stored = {r.task_id for r in conn.execute(select(m.Result.task_id).where(m.Result.run_id == run.run_id))}
    for task_id in finished_before:
        assert recorded[task_id].task_status_name == "exec_done", task_id
        assert task_id in stored
    recorded_done = [t for t in recorded.values() if t.task_status_name == "exec_done"]
    executed_first = set(map(int, ws.calls()))
    os.unlink(ws.root / "calls.log")
    assert ws.run("wf.py", resume).strip() == str(sum(i * i for i in range(120)))
    rerun = set(map(int, ws.calls()))
    assert not (rerun & finished_before), "a task finished before the kill ran again"
    assert rerun | executed_first == set(range(120))
    with ws.engine.connect() as conn:
        w = m.Workflow
        killed, resumed = conn.execute(select(w.run_id, w.outcome, w.tasks_completed_count, w.parent_run_id)
                                       .order_by(w.time_began)).all()
    assert killed.outcome == "killed"
    assert killed.tasks_completed_count == len(recorded_done), "a killed run keeps the count of its finished tasks"
    assert resumed.parent_run_id == (None if resume == "reuse_from_store" else killed.run_id)


def test_writer_keeps_up_and_the_sink_is_cheap(tmp_path, no_leaks):
    """10,000 tasks are all in the store once cleanup returns."""
    kernel = parsl_repro.load(Config(run_dir=str(tmp_path / "runinfo")))

    @python_app
    def noop(i):
        return i

    [f.result() for f in [noop(i) for i in range(10_000)]]
    kernel.cleanup()
    with _engine(tmp_path).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM task WHERE task_status_name = 'exec_done'")).scalar() == 10_000
        assert conn.execute(text("SELECT count(*) FROM status")).scalar() == 30_000
    assert not [t for t in threading.enumerate() if t.name.startswith("provenance-writer")]


def test_a_task_still_running_is_in_the_store_within_seconds(tmp_path, no_leaks):
    """The writer holds rows of tasks in progress back briefly (to write each short task once);
    a long task must still be visible, launched, with its try open, while it runs."""
    from parsl_repro.monitoring.rows import HeldRows

    kernel = parsl_repro.load(Config(run_dir=str(tmp_path / "runinfo")))
    release = threading.Event()

    @python_app
    def wait_for_release():
        release.wait(30)
        return "released"

    future = wait_for_release()
    seen = None
    deadline = time.monotonic() + HeldRows.HOLD_SECONDS + 10
    try:
        while time.monotonic() < deadline and seen is None:
            time.sleep(0.2)
            with _engine(tmp_path).connect() as conn:
                if not inspect(conn).has_table("try"):  # a new store's writer makes its tables moments after load()
                    continue
                seen = conn.execute(text(
                    "SELECT t.task_status_name, y.task_try_time_launched, y.task_try_time_returned "
                    "FROM task t JOIN try y ON y.run_id = t.run_id AND y.task_id = t.task_id "
                    "WHERE t.run_id = :run"), {"run": kernel.run_id}).first()
    finally:
        release.set()
        assert future.result() == "released"
        kernel.cleanup()
    assert seen is not None, "the running task never reached the store"
    assert seen.task_status_name == "launched" and seen.task_try_time_launched is not None
    assert seen.task_try_time_returned is None


def test_passwords_in_database_urls_stay_out_of_logs_and_the_run_record(tmp_path, no_leaks, postgres):
    url = postgres.fresh_database(f"secrets_{uuid.uuid4().hex[:8]}")
    password = url.split(":")[2].split("@")[0]
    kernel = parsl_repro.load(Config(run_dir=str(tmp_path / "runinfo"), provenance=url))
    kernel.cleanup()
    log = (tmp_path / "runinfo" / "000" / "parsl.log").read_text()
    assert password not in log and "***" in log
    engine = make_engine(url, writer=False)
    with engine.connect() as conn:
        summary = conn.execute(select(m.Workflow.config_summary)).scalar()
    engine.dispose()
    assert password not in summary and "***" in summary


def test_a_run_whose_process_died_is_marked_killed_by_the_next_run(ws):
    ws.write("wf.py", """
        import os
        import parsl_repro as parsl
        parsl.load()
        os._exit(0)  # gone without cleanup, like a SIGKILL
    """)
    ws.run()
    ws.write("again.py", """
        import parsl_repro as parsl
        with parsl.load():
            pass
    """)
    ws.run("again.py")
    outcomes = [r["outcome"] for r in queries.list_runs(ws.engine)]
    assert outcomes == ["completed", "killed"]


def test_input_files_produced_by_other_tasks_are_hashed_when_read(ws):
    import hashlib
    ws.write("wf.py", """
        import sys
        import parsl_repro as parsl
        from parsl_repro import File, bash_app, python_app

        @bash_app
        def produce(text, outputs=()):
            return f"echo {text} > {outputs[0]}"

        @python_app
        def consume(inputs=()):
            return open(inputs[0]).read()

        with parsl.load():
            made = produce(sys.argv[1], outputs=[File("mid.txt")])
            consume(inputs=[made.outputs[0]]).result()
    """)
    ws.run("wf.py", "first")
    ws.run("wf.py", "second")
    files = json.loads(ws.cli("files", "--json"))
    [read] = [f for f in files if f["role"] == "input"]
    assert read["url"] == str(ws.root / "mid.txt")
    assert read["sha256"] == hashlib.sha256(b"second\n").hexdigest()  # in full in --json


@pytest.mark.sqlite_only
def test_a_version_1_store_is_migrated_in_place_to_the_current_version(tmp_path, no_leaks):
    kernel = parsl_repro.load(Config(run_dir=str(tmp_path / "runinfo")))
    kernel.cleanup()
    engine = make_engine(default_url(str(tmp_path / "runinfo")), writer=True)
    with engine.begin() as conn:  # turn the database back into what version 1 wrote
        conn.execute(text("ALTER TABLE workflow DROP COLUMN pid"))
        conn.execute(text('ALTER TABLE "try" DROP COLUMN manager'))
        conn.execute(text("ALTER TABLE workflow DROP COLUMN memo_sources"))
        conn.execute(text("DROP TABLE result"))
        conn.execute(text("CREATE TABLE result (memo_key TEXT PRIMARY KEY, run_id TEXT, task_id INTEGER, "
                          "result_digest TEXT, serializer TEXT, size BIGINT, value BLOB, outputs TEXT, "
                          "created DATETIME)"))
        conn.execute(text("INSERT INTO result VALUES ('k', 'r', 1, 'd', 'pickle', 1, x'80', NULL, "
                          "'2026-01-01 00:00:00.000000')"))
        conn.execute(text("UPDATE schema_info SET value = '1' WHERE key = 'schema_version'"))
    engine.dispose()
    kernel = parsl_repro.load(Config(run_dir=str(tmp_path / "runinfo")))
    kernel.cleanup()
    engine = make_engine(default_url(str(tmp_path / "runinfo")), writer=False)
    with engine.connect() as conn:
        version = conn.execute(text("SELECT value FROM schema_info WHERE key = 'schema_version'")).scalar()
        assert version == str(m.SCHEMA_VERSION)
        assert conn.execute(text("SELECT memo_key, run_id FROM result")).all() == [("k", "r")]
        assert conn.execute(text("SELECT count(pid) FROM workflow")).scalar() == 1
        assert conn.execute(text('SELECT count(manager) FROM "try"')).scalar() == 0  # the column is back
        assert conn.execute(text("SELECT count(memo_sources) FROM workflow")).scalar() == 1  # the migrated run
    engine.dispose()


@pytest.mark.parametrize("in_process", [True, False], ids=["writer-thread", "writer-process"])
def test_executor_events_fill_try_placement_blocks_nodes_and_resources(tmp_path, no_leaks, in_process):
    """What remote executors report (where a try ran, block life cycles, worker pools, resource
    samples) lands in Parsl's try, block, node and resource tables, through either writer."""
    from parsl_repro.events import BlockState, NodeSeen, ResourceSample, RunStarted, TaskCreated, TaskState, TryPlaced
    from parsl_repro.monitoring.store import ProvenanceStore

    url = os.environ.get("PARSL_REPRO_PROVENANCE_URL") or default_url(str(tmp_path / "runinfo"))
    os.makedirs(tmp_path / "runinfo", exist_ok=True)
    from parsl_repro.monitoring.shipping import RunStore

    store = (ProvenanceStore if in_process else RunStore)(url)
    store = store.open() if in_process else store.check()
    run = str(uuid.uuid4())
    t = time.time()
    started = RunStarted(run, str(tmp_path), t, "wf", "cfg")
    sink = store.sink(run) if in_process else store.sink(started)
    for event in (
        *([started] if in_process else []),
        BlockState(run, "htex", "0", t, "PENDING", "4242"),
        BlockState(run, "htex", "0", t + 1, "RUNNING", "4242"),
        NodeSeen(run, "htex", "mgr-a", t + 1.5, "node1", "0", 2, 8 << 30, 2, "3.11.7", True),
        TaskCreated(run, 0, t + 2, "work", "python", "htex", (), False, (), {}),
        TaskState(run, 0, 0, t + 2.1, "pending", "launched", "dependencies met, sent to executor", "htex"),
        TryPlaced(run, 0, 0, t + 2.2, "htex", "node1", "0", "mgr-a", 777),
        ResourceSample(run, 0, 0, t + 2.5, 0.25, 777, 0.2, 0.05, 50 << 20, 200 << 20, 1.5, 4096, 8192, 0, "running"),
        TaskState(run, 0, 0, t + 3, "launched", "exec_done", "executor returned a result", None),
    ):
        sink.emit(event)
    sink.close()
    store.close()
    with make_engine(url, writer=False).connect() as conn:
        placed = conn.execute(text('SELECT hostname, block_id, manager, pid, task_try_time_running, task_executor '
                                   'FROM "try" WHERE run_id = :r'), {"r": run}).one()
        assert placed[:4] == ("node1", "0", "mgr-a", 777) and placed[4] is not None and placed[5] == "htex"
        blocks = conn.execute(text("SELECT status, job_id FROM block WHERE run_id = :r ORDER BY timestamp"),
                              {"r": run}).all()
        assert blocks == [("PENDING", "4242"), ("RUNNING", "4242")]
        node = conn.execute(text("SELECT hostname, uid, block_id, worker_count FROM node WHERE run_id = :r"),
                            {"r": run}).one()
        assert tuple(node) == ("node1", "mgr-a", "0", 2)
        sample = conn.execute(text("SELECT psutil_process_pid, psutil_process_time_user, "
                                   "psutil_process_memory_resident, psutil_process_disk_write FROM resource "
                                   "WHERE run_id = :r AND task_id = 0"), {"r": run}).one()
        assert tuple(sample) == (777, 0.2, 50 << 20, 8192)


def test_task_inputs_are_recorded_as_submitted_with_outside_futures_resolved_at_launch(tmp_path, no_leaks):
    """A task's inputs are recorded as they were submitted (a task's future as a link to that
    task, whenever the writer gets to them), and a plain Future from outside the workflow, which
    no task record holds, by the value it had when the task launched."""
    from concurrent.futures import Future

    @python_app
    def first(inputs=()):
        return list(inputs)

    @python_app
    def make():
        return 41

    outside = Future()
    with parsl_repro.load(Config(run_dir=str(tmp_path / "runinfo"))) as kernel:
        made = make()
        made.result()
        from_task = first(inputs=[made, 5])
        from_outside = first(inputs=[outside, 6])
        outside.set_result(982919)
        assert from_task.result() == [41, 5] and from_outside.result() == [982919, 6]
        run = kernel.run_id
    with _engine(tmp_path).connect() as conn:
        inputs = dict(conn.execute(text("SELECT task_id, task_inputs FROM task WHERE run_id = :run"),
                                   {"run": run}).all())
    assert inputs[from_task.tid] == f"[<result of task {made.tid}>, 5]"
    assert inputs[from_outside.tid] == "[982919, 6]"


def test_thread_tries_record_when_they_started_running_and_the_kernels_host_and_pid(tmp_path, no_leaks):
    import datetime
    import socket

    @python_app
    def nap():
        time.sleep(0.2)

    with parsl_repro.load(Config(run_dir=str(tmp_path / "runinfo"))) as kernel:
        nap().result()
        run = kernel.run_id
    with _engine(tmp_path).connect() as conn:
        row = conn.execute(text('SELECT hostname, pid, task_try_time_launched, task_try_time_running, '
                                'task_try_time_returned FROM "try" WHERE run_id = :run'), {"run": run}).one()
    hostname, pid, *times = row
    launched, running, returned = (datetime.datetime.fromisoformat(t) if isinstance(t, str) else t for t in times)
    assert hostname == socket.gethostname() and pid == os.getpid()
    assert launched <= running < returned
    assert (returned - running).total_seconds() >= 0.2


@pytest.mark.sqlite_only
def test_parsl_monitoring_config_loads_and_logging_endpoint_chooses_the_store(tmp_path, no_leaks, monkeypatch):
    """A Parsl configuration's MonitoringHub, with its hub parameters and a radio on the executor,
    loads as is; its logging_endpoint is the database the run records into."""
    from parsl_repro.monitoring import MonitoringHub
    from parsl_repro.monitoring.radios.udp import UDPRadio

    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "elsewhere" / "runs.db"
    elsewhere.parent.mkdir()
    hub = MonitoringHub(hub_address="127.0.0.1", hub_port_range=(55050, 56000), monitoring_debug=False,
                        resource_monitoring_interval=0, logging_endpoint=f"sqlite:///{elsewhere}",
                        workflow_name="calibration", workflow_version="7")
    executor = ThreadPoolExecutor(label="t", remote_monitoring_radio=UDPRadio(address="127.0.0.1", atexit_timeout=0))
    with parsl_repro.load(Config(executors=[executor], monitoring=hub, run_dir=str(tmp_path / "runinfo"))) as dfk:

        @python_app
        def double(x):
            return 2 * x

        assert double(21).result() == 42
        run_id = dfk.run_id
    assert not (tmp_path / "runinfo" / "monitoring.db").exists()
    engine = make_engine(f"sqlite:///{elsewhere}", writer=False)
    with engine.connect() as conn:
        row = conn.execute(select(m.Workflow.workflow_name, m.Workflow.workflow_version, m.Workflow.outcome)
                           .where(m.Workflow.run_id == run_id)).one()
        assert tuple(row) == ("calibration", "7", "completed")
        assert conn.execute(select(m.Task.task_status_name).where(m.Task.run_id == run_id)).scalar() == "exec_done"
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


@pytest.mark.sqlite_only
def test_fail_counts_are_stored_as_the_kernel_charged_them(tmp_path, no_leaks, backend):
    """The store used to recompute fail counts from try ids (one per try): wrong when a
    retry_handler charges 2.5 a failure, and for a task that launched, then dependency-failed."""
    from parsl_repro.dataflow.errors import DependencyError

    @python_app
    def always_busy():
        raise ConnectionError("server busy")

    @python_app
    def reports_a_failed_parent():
        raise DependencyError([(ValueError("bad parent"), "task 99")], 1)

    with parsl_repro.load(Config(run_dir=str(tmp_path / "runinfo"), retries=5,
                                 retry_handler=lambda error, task: 2.5)) as kernel:
        busy, dependent = always_busy(), reports_a_failed_parent()
        assert isinstance(busy.exception(), ConnectionError) and isinstance(dependent.exception(), DependencyError)
        expected = {t.id: (t.fail_count, t.fail_cost) for t in (busy.task_record, dependent.task_record)}
    assert expected == {0: (3, 7.5), 1: (1, 2.5)}  # 2.5 + 2.5 is within 5; the third failure is not
    with _engine(tmp_path).connect() as conn:
        stored = {row.task_id: (row.task_fail_count, row.task_fail_cost, row.task_status_name) for row in conn.execute(
            text("SELECT task_id, task_fail_count, task_fail_cost, task_status_name FROM task WHERE run_id = :run"),
            {"run": kernel.run_id})}
    assert stored == {0: (3, 7.5, "failed"), 1: (1, 2.5, "dep_fail")}


def test_the_run_row_is_written_from_run_started(tmp_path, no_leaks, backend):
    """The kernel no longer writes the run's row itself: the store writes it, and marks the runs of
    the same host whose process is gone as killed, when it handles the run's RunStarted, which
    carries the environment. A RunStarted from another host makes a row of that host."""
    import platform

    from parsl_repro.dataflow.dflow import DataFlowKernel
    from parsl_repro.events import RecordingSink, RunEnded, RunStarted
    from parsl_repro.monitoring.store import ProvenanceStore

    recording = RecordingSink()
    kernel = DataFlowKernel(Config(run_dir=str(tmp_path / "runinfo")), event_sink=recording)
    kernel.cleanup()
    started = recording.events[0]
    assert isinstance(started, RunStarted) and started.run_id == kernel.run_id
    env = started.environment
    assert env["python_version"] == platform.python_version() and env["argv"] and env["packages"]
    engine = store_engine(tmp_path / "runinfo")
    with engine.connect() as conn:
        row = conn.execute(select(m.Workflow.__table__).where(m.Workflow.run_id == kernel.run_id)).one()
    assert (row.host, row.user, row.cwd, row.python_version, row.packages_digest, row.pid, row.config_summary) == (
        env["host"], env["user"], env["cwd"], env["python_version"], env["packages_digest"], started.pid,
        started.config_summary)

    url = os.environ.get("PARSL_REPRO_PROVENANCE_URL") or default_url(str(tmp_path / "runinfo"))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    elsewhere = {"host": "elsewhere", "user": "someone", "cwd": "/work", "argv": ["sweep.py"],
                 "python_version": "3.11.9", "packages": [["numpy", "2.0.0"]], "packages_digest": "d1g3st"}
    store = ProvenanceStore(url).open()
    earlier, later = str(uuid.uuid4()), str(uuid.uuid4())
    for run_id, pid in ((earlier, dead_pid), (later, os.getpid())):
        sink = store.sink(run_id)
        sink.emit(RunStarted(run_id, str(tmp_path), time.time(), "sweep.py", "Config()", pid=pid,
                             environment=elsewhere))
        if run_id == later:
            sink.emit(RunEnded(run_id, time.time(), "completed", {}))
        sink.close()
    store.close()
    with engine.connect() as conn:
        rows = {r.run_id: r for r in conn.execute(select(m.Workflow.__table__).where(
            m.Workflow.run_id.in_([earlier, later])))}
        packages = conn.execute(select(m.Environment.packages)
                                .where(m.Environment.packages_digest == "d1g3st")).scalar()
    engine.dispose()
    assert rows[later].host == "elsewhere" and rows[later].user == "someone" and rows[later].outcome == "completed"
    assert json.loads(rows[later].argv) == ["sweep.py"] and json.loads(packages) == [["numpy", "2.0.0"]]
    assert rows[earlier].outcome == "killed", "a run of that host left running by a dead process is marked killed"
