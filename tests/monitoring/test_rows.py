"""The writer's rows: hot-table columns come from the models, rows are addressed by name, and a
task written within one batch is one row with its final values and the models' defaults."""
from __future__ import annotations

import os
import time
import uuid

import pytest
from sqlalchemy import select

from parsl_repro.events import RunStarted, TaskCreated, TaskState
from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.engine import default_url
from parsl_repro.monitoring.handlers import apply
from parsl_repro.monitoring.rows import STATUS, TASK, TRY, BatchRows
from parsl_repro.monitoring.store import ProvenanceStore

pytestmark = pytest.mark.usefixtures("backend")


class _Writer:
    host = "kernel-host"
    kernel_pid = 4242

    def file_digest(self, path: str) -> tuple[str | None, int | None, float | None]:
        return None, None, None


@pytest.fixture
def store(tmp_path):
    url = os.environ.get("PARSL_REPRO_PROVENANCE_URL") or default_url(str(tmp_path))
    store = ProvenanceStore(url).open()
    yield store
    store.close()


def _write(store: ProvenanceStore, events: list) -> None:
    rows = BatchRows()
    apply(_Writer(), rows, events)
    assert store.engine is not None
    rows.commit(store.engine)


def _started(run_id: str) -> RunStarted:
    return RunStarted(run_id, "/tmp/run", time.time(), "rows", "Config()", pid=os.getpid())


def test_hot_table_columns_are_the_models_columns_but_a_generated_id():
    for writer_table, model in ((TASK, m.Task), (TRY, m.Try), (STATUS, m.Status)):
        names = tuple(c.name for c in model.__table__.columns if c.name != "id")
        assert writer_table.columns == names
        assert set(writer_table.blank) == set(names)


def test_a_task_begun_and_ended_in_one_batch_is_one_row_with_its_final_values_and_the_model_defaults(store):
    run_id, now = str(uuid.uuid4()), time.time()
    _write(store, [
        _started(run_id),
        TaskCreated(run_id, 0, now, "double", "python", "threads", (), True, (21,), {}),
        TaskState(run_id, 0, 0, now, None, "pending", "submitted"),
        TaskState(run_id, 0, 0, now, "pending", "launched", "dependencies done", "threads"),
        TaskState(run_id, 0, 0, now + 1, "launched", "exec_done", "returned", running=now + 0.5, fail_count=0,
                  fail_cost=0.0),
    ])
    with store.engine.connect() as conn:
        task = conn.execute(select(m.Task.__table__).where(m.Task.run_id == run_id)).one()._mapping
        attempt = conn.execute(select(m.Try.__table__).where(m.Try.run_id == run_id)).one()._mapping
        states = conn.execute(select(m.Status.task_status_name).where(m.Status.run_id == run_id)
                              .order_by(m.Status.id)).scalars().all()
    assert (task["task_func_name"], task["task_memoize"], task["args_repr"]) == ("double", "True", "(21)")
    assert (task["task_status_name"], task["task_fail_count"], task["task_fail_cost"]) == ("exec_done", 0, 0.0)
    assert task["task_time_returned"] > task["task_time_invoked"]
    assert (attempt["task_executor"], attempt["hostname"], attempt["pid"]) == ("threads", "kernel-host", 4242)
    assert attempt["error"] is None and attempt["task_try_time_returned"] is not None
    assert states == ["pending", "pending", "launched", "exec_done"]


def test_a_task_ended_in_a_later_batch_is_updated_by_name(store):
    run_id, now = str(uuid.uuid4()), time.time()
    _write(store, [_started(run_id), TaskCreated(run_id, 0, now, "fail", "python", "threads", (), False),
                   TaskState(run_id, 0, 0, now, "pending", "launched", "dependencies done", "threads")])
    _write(store, [TaskState(run_id, 0, 0, now + 1, "launched", "failed", "raised", "ValueError: no",
                             fail_count=1, fail_cost=1.0)])
    with store.engine.connect() as conn:
        task = conn.execute(select(m.Task.__table__).where(m.Task.run_id == run_id)).one()._mapping
        attempt = conn.execute(select(m.Try.__table__).where(m.Try.run_id == run_id)).one()._mapping
    assert (task["task_status_name"], task["error"], task["task_fail_count"]) == ("failed", "ValueError: no", 1)
    assert attempt["error"] == attempt["task_fail_history"] == "ValueError: no"


def test_a_status_row_lacking_a_column_gets_its_default_and_an_unknown_column_is_named(store):
    run_id, now = str(uuid.uuid4()), time.time()
    _write(store, [_started(run_id)])
    rows = BatchRows()
    rows.status.append({"run_id": run_id, "task_id": 0, "try_id": 0, "task_status_name": "pending", "timestamp": now})
    rows.commit(store.engine)
    with store.engine.connect() as conn:
        stored = conn.execute(select(m.Status.__table__).where(m.Status.run_id == run_id)).one()._mapping
    assert stored["cause"] is None and stored["task_status_name"] == "pending"
    rows = BatchRows()
    rows.new_task(run_id, 1)["task_colour"] = "blue"
    with pytest.raises(KeyError, match="task_colour"):
        rows.commit(store.engine)
