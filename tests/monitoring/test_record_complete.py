"""The record is complete enough to replay: every task's arguments (or why they are not stored),
every result's digest, a bash app's command line, fail counts as the kernel charged them, and the
run row from RunStarted. Runs on SQLite and PostgreSQL."""
from __future__ import annotations

import hashlib

from sqlalchemy import select

from parsl_repro import File, bash_app, join_app, python_app
from parsl_repro.config import Config
from parsl_repro.dataflow.dflow import DataFlowKernel
from parsl_repro.events import RecordingSink, RunStarted
from parsl_repro.monitoring import models as m
from parsl_repro.serialize import deserialize_value, serialize_value
from tests.monitoring.conftest import store_engine

LIMIT = 4096


def scale(x, factor=2):
    return x * factor


def total(values):
    return sum(values)


def size_of(blob):
    return len(blob)


def consume(items):
    return sum(items)


def flaky(marker):
    import os
    with open(marker, "a") as f:
        f.write("x")
    if os.path.getsize(marker) < 3:
        raise ConnectionError("server busy")
    return "third time lucky"


def count_lines(inputs=(), outputs=(), stdout=None):
    return f"wc -l < {inputs[0].filepath} > {outputs[0].filepath}"


def exits(code):
    return f"exit {code}"


def mentions(url):
    return f"echo {url} > /dev/null"


def _digest(value) -> str:
    return hashlib.sha256(serialize_value(value)[1]).hexdigest()


def test_every_task_is_recorded_for_replay(tmp_path, no_leaks, backend):
    (tmp_path / "in.txt").write_text("a\nb\nc\n")
    shared = list(range(300))  # one argument value used by three tasks: stored once
    recording = RecordingSink()
    config = Config(run_dir=str(tmp_path / "runinfo"), retries=5, retry_handler=lambda error, task: 2.5,
                    provenance_argument_limit=LIMIT)
    kernel = DataFlowKernel(config, event_sink=recording)  # the store's sink and this one, fanned out
    scale_app, size_app, holds_app, flaky_app = (python_app(f, data_flow_kernel=kernel)
                                                 for f in (scale, size_of, consume, flaky))
    total_app = python_app(total, data_flow_kernel=kernel, cache=True)
    count_app, exits_app, mentions_app = (bash_app(f, data_flow_kernel=kernel) for f in (count_lines, exits, mentions))

    @join_app(data_flow_kernel=kernel)
    def both(x):
        return [scale_app(x), scale_app(x, factor=3)]

    try:
        first_total = total_app(shared)
        first_total.result()  # finished, so the identical call below is a memo hit
        futures = {
            "scale": scale_app(3, factor=4),
            "chained": scale_app(scale_app(1)),
            "shared": [first_total, total_app(shared), size_app(shared)],
            "large": size_app(b"x" * (LIMIT + 100)),
            "generator": holds_app(i for i in range(4)),  # no serializer can carry a generator
            "flaky": flaky_app(str(tmp_path / "marker")),
            "count": count_app(inputs=[File(str(tmp_path / "in.txt"))], outputs=[File(str(tmp_path / "n.txt"))]),
            "exits": exits_app(3),
            "secret": mentions_app("ftp://alice:s3cret@files.example/data"),
            "join": both(5),
        }
        assert futures["scale"].result() == 12 and futures["chained"].result() == 4
        assert [futures["shared"][0].result(), futures["shared"][1].result()] == [44850, 44850]
        assert futures["shared"][2].result() == 300
        assert futures["large"].result() == LIMIT + 100 and futures["generator"].result() == 6
        assert futures["flaky"].result() == "third time lucky"
        assert futures["count"].result() == 0 and (tmp_path / "n.txt").read_text().strip() == "3"
        assert futures["exits"].exception() is not None and futures["secret"].result() == 0
        assert futures["join"].result() == [10, 15]
    finally:
        kernel.cleanup()

    with store_engine(tmp_path / "runinfo").connect() as conn:
        tasks = {row.task_id: row for row in conn.execute(select(m.Task).where(m.Task.run_id == kernel.run_id))}
        blobs = {row.digest: row for row in conn.execute(select(m.Argument))}
        run = conn.execute(select(m.Workflow).where(m.Workflow.run_id == kernel.run_id)).one()

    # every task: its arguments stored by digest, or a "not replayable" note saying why not
    for task in tasks.values():
        assert (task.args_digest in blobs) or task.args_note.startswith("not replayable: "), task
    by_name = {}
    for task in tasks.values():
        by_name.setdefault(task.task_func_name, []).append(task)
    (scale_task, *_rest) = sorted(by_name["scale"], key=lambda t: t.task_id)
    blob = blobs[scale_task.args_digest]
    assert deserialize_value(blob.serializer, blob.value) == ((3,), {"factor": 4})
    assert blob.size == len(blob.value)

    chained_outer = max((t for t in by_name["scale"] if t.task_depends), key=lambda t: t.task_id)
    args, _kwargs = deserialize_value(*_blob(blobs, chained_outer))
    assert args == (2,)  # the dependency's value, not its future

    sharing = by_name["total"] + [t for t in by_name["size_of"] if t.args_note is None]
    assert len(sharing) == 3 and len({t.args_digest for t in sharing[:2]}) == 1
    assert sum(1 for d in blobs if d == sharing[0].args_digest) == 1

    large, = [t for t in by_name["size_of"] if t.args_note]
    assert large.args_digest not in blobs and "arguments not stored (size)" in large.args_note
    assert f"over the limit of {LIMIT}" in large.args_note
    generator, = by_name["consume"]
    assert generator.args_digest is None and "cannot be serialized" in generator.args_note
    assert "generator" in generator.args_note

    # every completed task: its result's digest, memo hits included
    for task in tasks.values():
        if task.task_status_name in ("exec_done", "memo_done"):
            assert task.result_digest, task
    assert scale_task.result_digest == _digest(12)
    first, second = sorted(by_name["total"], key=lambda t: t.task_id)
    assert {first.task_status_name, second.task_status_name} == {"exec_done", "memo_done"}
    assert first.result_digest == second.result_digest == _digest(44850)
    join_task, = by_name["both"]
    assert join_task.result_digest == _digest([10, 15])
    count_task, = by_name["count_lines"]
    assert count_task.result_digest == _digest(0)

    # a bash app's command line, whether it succeeded or failed
    assert count_task.command == f"wc -l < {tmp_path / 'in.txt'} > {tmp_path / 'n.txt'}"
    exits_task, = by_name["exits"]
    assert exits_task.command == "exit 3" and exits_task.task_status_name == "failed"

    # a password is never kept: not in the command line, not in the argument bytes
    secret, = by_name["mentions"]
    assert secret.command == "echo ftp://alice:***@files.example/data > /dev/null"
    assert secret.args_digest not in blobs and "hold a URL with a password" in secret.args_note
    assert not any(b"s3cret" in bytes(row.value) for row in blobs.values())

    # fail counts as the kernel charged them: two failures at 2.5 each
    flaky_task, = by_name["flaky"]
    assert (flaky_task.task_fail_count, flaky_task.task_fail_cost) == (2, 5.0)
    assert flaky_task.task_status_name == "exec_done"

    # the run row came from RunStarted (the first event), environment included
    started = recording.events[0]
    assert isinstance(started, RunStarted) and started.run_id == kernel.run_id
    environment = dict(started.environment)
    assert (run.python_version, run.host, run.user) == (environment["python_version"], environment["host"],
                                                      environment["user"])


def _blob(blobs, task):
    row = blobs[task.args_digest]
    return row.serializer, row.value
