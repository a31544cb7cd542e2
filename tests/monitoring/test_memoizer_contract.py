"""BasicMemoizer against the ResultStore protocol alone: a store made of dicts and a RecordingSink,
with no database, no writer process and no kernel."""
from __future__ import annotations

import os
import pickle
import time
from concurrent.futures import Future

from parsl_repro.dataflow.memoization import BasicMemoizer
from parsl_repro.dataflow.states import States
from parsl_repro.dataflow.taskrecord import TaskRecord
from parsl_repro.events import MemoTableLoaded, RecordingSink, TaskKeyed, TaskResult
from parsl_repro.memo import ResultStore, StoredResult, memo_key


def double(x):
    return 2 * x


class DictStore:
    """Earlier runs' results held in memory: what a memoizer may ask of any store."""

    def __init__(self) -> None:
        self.results: dict[str, StoredResult] = {}
        self.values: dict[tuple[str, str], bytes] = {}
        self.rundirs: dict[str, str] = {}  # run id -> run directory
        self.began: dict[str, float] = {}
        self.reads: list[tuple[str, str]] = []

    def add_run(self, run_id: str, rundir: str) -> None:
        self.rundirs[run_id] = os.path.abspath(rundir)
        self.began[run_id] = time.time() + len(self.began)

    def add_result(self, key: str, run_id: str, value: object, *, eager: bool = True) -> None:
        data = pickle.dumps(value)
        self.values[(key, run_id)] = data
        self.results[key] = StoredResult(key, run_id, 0, "digest", "pickle", data if eager else None, ())

    def load_results(self, run_ids: list[str] | None) -> dict[str, StoredResult]:
        return {k: r for k, r in self.results.items() if run_ids is None or r.run_id in run_ids}

    def read_result(self, memo_key: str, run_id: str) -> bytes:
        self.reads.append((memo_key, run_id))
        return self.values[(memo_key, run_id)]

    def run_ids_for_rundirs(self, rundirs) -> list[str]:
        wanted = {os.path.abspath(d) for d in rundirs}
        return [run for run, d in self.rundirs.items() if d in wanted]

    def rundirs_of(self, run_ids: list[str]) -> list[str]:
        return [self.rundirs[r] for r in run_ids if r in self.rundirs]

    def newest_run(self, run_ids) -> str | None:
        known = [r for r in run_ids if r in self.began]
        return max(known, key=self.began.__getitem__, default=None)


def _task(task_id: int, x: int) -> TaskRecord:
    task = TaskRecord(dfk=None, task_id=task_id, func=double, func_name="double", args=(x,), kwargs={},
                      executor="threads", memoize=True, ignore_for_cache=[], join=False, app_kind="python",
                      resource_specification={}, time_invoked=time.time())
    task.status = States.pending
    task.app_fu = Future()
    return task


def _memoizer(store: ResultStore, sink: RecordingSink, tmp_path, **settings) -> BasicMemoizer:
    memoizer = BasicMemoizer(**settings)
    memoizer.attach(store=store, sink=sink, run_id="now")
    memoizer.start(run_dir=str(tmp_path / "002"), config_run_dir=str(tmp_path))
    return memoizer


def test_results_of_every_run_are_reused_when_asked_for(tmp_path):
    store, sink = DictStore(), RecordingSink()
    store.add_run("before", tmp_path / "000")
    store.add_result(memo_key(_task(0, 2))[0], "before", 4)
    store.add_result(memo_key(_task(0, 3))[0], "before", 6, eager=False)
    memoizer = _memoizer(store, sink, tmp_path, reuse_from_store=True)

    assert memoizer.check_memo(_task(1, 2)).result() == 4
    assert store.reads == []
    assert memoizer.check_memo(_task(2, 3)).result() == 6  # too large to load eagerly: read on the hit
    assert store.reads == [(memo_key(_task(0, 3))[0], "before")]
    assert memoizer.check_memo(_task(3, 5)) is None

    loaded, = sink.of_type(MemoTableLoaded)
    assert loaded.from_store and loaded.results == 2
    keyed = {e.task_id: e for e in sink.of_type(TaskKeyed)}
    assert (keyed[1].source_run, keyed[1].source_task) == ("before", 0)
    assert keyed[3].source_run is None


def test_parsl_rules_load_nothing_from_the_store_by_default(tmp_path):
    store, sink = DictStore(), RecordingSink()
    store.add_run("before", tmp_path / "000")
    store.add_result(memo_key(_task(0, 2))[0], "before", 4)
    memoizer = _memoizer(store, sink, tmp_path)

    assert memoizer.check_memo(_task(1, 2)) is None
    loaded, = sink.of_type(MemoTableLoaded)
    assert not loaded.from_store and loaded.runs == () and loaded.results == 0


def test_checkpoint_files_name_runs_and_the_newest_is_the_parent(tmp_path):
    store, sink = DictStore(), RecordingSink()
    store.add_run("older", tmp_path / "000")
    store.add_run("newer", tmp_path / "001")
    store.add_result(memo_key(_task(0, 2))[0], "older", 4)
    store.add_result(memo_key(_task(0, 7))[0], "elsewhere", 14)  # a run not named: not loaded
    files = [str(tmp_path / "000" / "checkpoint"), str(tmp_path / "001" / "checkpoint")]
    memoizer = _memoizer(store, sink, tmp_path, checkpoint_files=files)

    assert memoizer.check_memo(_task(1, 2)).result() == 4
    assert memoizer.check_memo(_task(2, 7)) is None
    loaded, = sink.of_type(MemoTableLoaded)
    assert set(loaded.runs) == {"older", "newer"} and loaded.parent_run_id == "newer" and loaded.files == ()


def test_a_finished_task_is_recorded_through_the_sink_only(tmp_path):
    store, sink = DictStore(), RecordingSink()
    memoizer = _memoizer(store, sink, tmp_path)
    task = _task(1, 21)
    assert memoizer.check_memo(task) is None
    memoizer.update_memo_result(task, 42)

    result, = sink.of_type(TaskResult)
    assert result.memo_key == task.hashsum and pickle.loads(result.value) == 42
    assert store.values == {}  # the memoizer never writes to the store: the writer does, from events
    assert (tmp_path / "002" / "checkpoint").is_dir()
    assert memoizer.check_memo(_task(2, 21)) is task.app_fu  # later identical calls of the run reuse it
