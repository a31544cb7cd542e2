"""A failed try keeps its error's traceback, and a failed task its final one: the app's own frames
(from a worker process too), not the frames of parsl_repro that ran it, passwords hidden, bounded.
A dependency failure has none of its own (its upstream task's is the one to read)."""
from __future__ import annotations

from sqlalchemy import select

from parsl_repro.monitoring import models as m
from parsl_repro.utils import failure_traceback
from tests.monitoring.conftest import Workspace

FAILING = """
    import parsl_repro as parsl
    from parsl_repro import python_app
    from parsl_repro.config import Config
    from parsl_repro.executors import HighThroughputExecutor, ThreadPoolExecutor
    from parsl_repro.providers import LocalProvider


    def check(value):
        if value < 0:
            raise ValueError(f"negative: {value} from postgresql://alice:hunter2@db.example/x")
        return value


    @python_app(executors=["threads"])
    def here(value):
        return check(value)


    @python_app(executors=["htex"])
    def remote(value):
        def nested(v):
            raise KeyError(f"missing {v}")
        return nested(value)


    @python_app(executors=["threads"])
    def after(value):
        return value


    config = Config(executors=[ThreadPoolExecutor(label="threads"),
                               HighThroughputExecutor(label="htex", max_workers_per_node=1,
                                                      provider=LocalProvider(init_blocks=1, max_blocks=1))],
                    retries=1)
    with parsl.load(config):
        futures = [here(-1), remote(7), after(here(-2))]
        for future in futures:
            future.exception()
"""


def test_failed_tries_and_tasks_keep_their_traceback(tmp_path, backend):
    ws = Workspace(tmp_path)
    ws.write("wf.py", FAILING)
    ws.run(timeout=180)
    with ws.engine.connect() as conn:
        tasks = {t.task_id: t for t in conn.execute(select(m.Task.task_id, m.Task.task_func_name, m.Task.traceback,
                                                            m.Task.task_status_name))}
        tries = {(t.task_id, t.try_id): t.traceback for t in conn.execute(select(m.Try.task_id, m.Try.try_id,
                                                                                m.Try.traceback))}
    here_tb = tasks[0].traceback
    assert here_tb.startswith("Traceback (most recent call last):")
    assert 'wf.py", line' in here_tb and "in here" in here_tb and "in check" in here_tb
    assert here_tb.rstrip().endswith("ValueError: negative: -1 from postgresql://alice:***@db.example/x")
    assert "hunter2" not in here_tb
    assert "parsl_repro/" not in here_tb and "concurrent/futures" not in here_tb  # the frames that ran it
    assert tries[(0, 0)] == tries[(0, 1)] == here_tb  # retried once: both tries failed alike
    remote_tb = tasks[1].traceback  # raised in a worker process: its frames came back with it
    assert "in remote" in remote_tb and "in nested" in remote_tb
    assert remote_tb.rstrip().endswith("KeyError: 'missing 7'")
    dependant = next(t for t in tasks.values() if t.task_status_name == "dep_fail")
    assert dependant.traceback is None


def test_a_long_traceback_keeps_its_end():
    try:
        raise RuntimeError("x" * 5000 + " the bottom")
    except RuntimeError as e:
        text = failure_traceback(e, limit=2000)
    assert text.startswith("[... ") and "characters cut ...]" in text.splitlines()[0]
    assert text.rstrip().endswith("x the bottom") and len(text) < 2100  # the end: where the message is


def test_chained_causes_are_kept():
    try:
        try:
            {}["key"]
        except KeyError as inner:
            raise ValueError("while looking up") from inner
    except ValueError as e:
        text = failure_traceback(e)
    assert "KeyError: 'key'" in text and "direct cause" in text
    assert text.rstrip().endswith("ValueError: while looking up")
