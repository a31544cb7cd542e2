"""Opening a store as users meet it: a schema version rewritten by hand (docs/provenance.md, "Errors
at load"), a genuinely older store, and an SQLite URL pointing into a directory that does not exist."""
from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

import parsl_repro
from parsl_repro import python_app
from parsl_repro.config import Config
from parsl_repro.dataflow.dflow import DataFlowKernelLoader
from parsl_repro.errors import NoDataFlowKernelError
from parsl_repro.monitoring.engine import StoreDirectoryMissing, make_engine
from parsl_repro.monitoring.models import SCHEMA_VERSION
from parsl_repro.monitoring.schema import SchemaTooNew
from parsl_repro.monitoring.store import StoreUnavailable
from tests.monitoring.conftest import store_engine

pytestmark = pytest.mark.usefixtures("backend")


@python_app(cache=True)
def token(x):
    import uuid
    return f"{x}:{uuid.uuid4()}"


def _config(tmp_path, **fields) -> Config:
    return Config(run_dir=str(tmp_path / "runinfo"), **fields)


def _run(tmp_path) -> str:
    """A run that records a task, a try and a stored result; returns its run id."""
    with parsl_repro.load(_config(tmp_path)) as dfk:
        assert token(1).result().startswith("1:")
        return dfk.run_id


def _sql(tmp_path, *statements: str) -> None:
    engine = store_engine(tmp_path / "runinfo")
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def _facts(tmp_path) -> dict:
    engine = store_engine(tmp_path / "runinfo")
    with engine.connect() as conn:
        facts = {
            "version": conn.execute(text("SELECT value FROM schema_info WHERE key = 'schema_version'")).scalar(),
            "runs_completed": set(conn.execute(text("SELECT run_id FROM workflow WHERE outcome = 'completed'"))
                                  .scalars()),
            "results": {tuple(r) for r in conn.execute(text("SELECT memo_key, run_id, result_digest FROM result"))},
            "tries": {tuple(r) for r in conn.execute(text('SELECT run_id, task_id, try_id FROM "try"'))},
            "managers": conn.execute(text('SELECT count(manager) FROM "try"')).scalar(),
            "pids": conn.execute(text("SELECT count(pid) FROM workflow")).scalar(),
        }
    engine.dispose()
    return facts


def _load_fails(config: Config, error: type[Exception]) -> Exception:
    """The error loading ``config`` raises; a kernel that loads anyway is cleaned up, so that the
    failure stays in this test."""
    try:
        kernel = parsl_repro.load(config)
    except error as e:
        return e
    kernel.cleanup()
    pytest.fail(f"the config loaded; expected {error.__name__}")


def _assert_no_kernel() -> None:
    assert DataFlowKernelLoader._dfk is None
    with pytest.raises(NoDataFlowKernelError):
        parsl_repro.dfk()


# --- migrations are idempotent --------------------------------------------------------------------

@pytest.mark.parametrize("written_as", ["1", "2", "3"])
def test_current_store_with_its_version_rewritten_older_loads_and_keeps_its_data(tmp_path, monkeypatch, no_leaks,
                                                                                 written_as):
    """What docs/provenance.md does to fake another version: the tables are current, only the
    recorded version is older. Migrating must find each step already done, not fail on it."""
    monkeypatch.chdir(tmp_path)
    first = _run(tmp_path)
    before = _facts(tmp_path)
    assert before["version"] == str(SCHEMA_VERSION) and len(before["results"]) == 1 and before["tries"]
    _sql(tmp_path, f"UPDATE schema_info SET value = '{written_as}' WHERE key = 'schema_version'")

    second = _run(tmp_path)  # failed with "duplicate column name" before
    after = _facts(tmp_path)
    assert after["version"] == str(SCHEMA_VERSION)
    assert after["runs_completed"] == {first, second} and after["pids"] == 2
    assert after["results"] >= before["results"], "stored results were lost"
    assert after["tries"] >= before["tries"]
    # once more, now that the version is right again: nothing to migrate
    _run(tmp_path)
    assert _facts(tmp_path)["version"] == str(SCHEMA_VERSION)


def test_a_version_3_store_migrates_in_place_and_its_runs_load_resume_and_answer_why(tmp_path, monkeypatch,
                                                                                        no_leaks):
    """A real version-3 store (no workflow.memo_sources, none of schema 5's argument record) is
    migrated when the next run starts; its run is still listed, its stored result is reused by a
    run that asks for reuse, and ``why`` explains that hit against it."""
    from parsl_repro.monitoring import queries

    monkeypatch.chdir(tmp_path)
    first = _run(tmp_path)
    _sql(tmp_path, "ALTER TABLE workflow DROP COLUMN memo_sources", "DROP INDEX ix_task_args_digest",
         "ALTER TABLE task DROP COLUMN args_digest", "ALTER TABLE task DROP COLUMN args_note",
         "ALTER TABLE task DROP COLUMN command", "DROP TABLE argument",
         "UPDATE schema_info SET value = '3' WHERE key = 'schema_version'")
    engine = store_engine(tmp_path / "runinfo")
    assert not inspect(engine).has_table("argument")  # the old shape, really
    engine.dispose()

    with parsl_repro.load(_config(tmp_path, reuse_from_store=True)) as dfk:
        assert token(1).result().startswith("1:")
        second = dfk.run_id
    engine = store_engine(tmp_path / "runinfo")
    try:
        assert _facts(tmp_path)["version"] == str(SCHEMA_VERSION)
        assert {run["run_id"] for run in queries.list_runs(engine)} >= {first, second}
        hit, = queries.list_tasks(engine, second)
        assert hit["task_status_name"] == "memo_done" and hit["memo_source_run"] == first
        with engine.connect() as conn:
            recorded = conn.execute(text("SELECT args_digest FROM task WHERE run_id = :r"), {"r": second}).scalar()
        assert recorded is not None  # the new run records its arguments in the migrated store
        explanation, = queries.why(engine, second, task_id=0)
        assert explanation.outcome == "hit" and explanation.compared_with[0] == first
    finally:
        engine.dispose()


def test_a_version_2_store_without_try_manager_gets_the_column(tmp_path, monkeypatch, no_leaks):
    """A real version-2 store (no try.manager) is still migrated: the check adds what is missing."""
    monkeypatch.chdir(tmp_path)
    first = _run(tmp_path)
    before = _facts(tmp_path)
    _sql(tmp_path, 'ALTER TABLE "try" DROP COLUMN manager',
         "UPDATE schema_info SET value = '2' WHERE key = 'schema_version'")
    engine = store_engine(tmp_path / "runinfo")
    with engine.connect() as conn:
        with pytest.raises(Exception, match="manager"):  # the old shape, really
            conn.execute(text('SELECT manager FROM "try"'))
    engine.dispose()

    second = _run(tmp_path)
    after = _facts(tmp_path)
    assert after["version"] == str(SCHEMA_VERSION)
    assert after["managers"] == 0  # the column is back; the threads executor names no worker pool
    assert after["tries"] >= before["tries"] and after["results"] >= before["results"]
    assert after["runs_completed"] == {first, second}


def test_a_version_1_store_in_the_old_shape_is_migrated_and_keeps_its_results(tmp_path, monkeypatch, no_leaks):
    """Every step does its work on a store that needs it: results keyed by memo_key alone are
    rebuilt per run (rows kept), and workflow.pid and try.manager are added."""
    monkeypatch.chdir(tmp_path)
    first = _run(tmp_path)
    [(key, run, digest)] = _facts(tmp_path)["results"]
    blob, stamp = ("BYTEA", "TIMESTAMP") if store_engine(tmp_path / "runinfo").dialect.name == "postgresql" else (
        "BLOB", "DATETIME")
    _sql(tmp_path, "ALTER TABLE workflow DROP COLUMN pid", 'ALTER TABLE "try" DROP COLUMN manager',
         "CREATE TABLE result_v1 (memo_key TEXT PRIMARY KEY, run_id TEXT, task_id INTEGER, result_digest TEXT, "
         f"serializer TEXT, size BIGINT, value {blob}, outputs TEXT, created {stamp})",
         "INSERT INTO result_v1 SELECT memo_key, run_id, task_id, result_digest, serializer, size, value, outputs, "
         "created FROM result",
         "DROP TABLE result", "ALTER TABLE result_v1 RENAME TO result",
         "UPDATE schema_info SET value = '1' WHERE key = 'schema_version'")

    second = _run(tmp_path)
    after = _facts(tmp_path)
    assert after["version"] == str(SCHEMA_VERSION)
    assert (key, run, digest) in after["results"]
    assert after["runs_completed"] == {first, second} and after["pids"] == 1 and after["managers"] == 0
    engine = store_engine(tmp_path / "runinfo")
    with engine.connect() as conn:
        assert set(inspect(conn).get_pk_constraint("result")["constrained_columns"]) == {"memo_key", "run_id"}
    engine.dispose()


def test_a_version_1_store_with_a_half_applied_step_is_completed(tmp_path, monkeypatch, no_leaks):
    """Version 1 shape for the workflow table (no pid) but results already kept per run: the step
    adds the column and leaves the result table, and its rows, alone."""
    monkeypatch.chdir(tmp_path)
    first = _run(tmp_path)
    before = _facts(tmp_path)
    _sql(tmp_path, "ALTER TABLE workflow DROP COLUMN pid",
         "UPDATE schema_info SET value = '1' WHERE key = 'schema_version'")

    second = _run(tmp_path)
    after = _facts(tmp_path)
    assert after["version"] == str(SCHEMA_VERSION)
    assert after["runs_completed"] == {first, second}
    assert after["pids"] == 1  # the first run's pid went with the column; the second run's is recorded
    assert after["results"] >= before["results"]


def test_a_store_from_a_newer_version_is_still_refused(tmp_path, monkeypatch, no_leaks):
    monkeypatch.chdir(tmp_path)
    _run(tmp_path)
    _sql(tmp_path, "UPDATE schema_info SET value = '99' WHERE key = 'schema_version'")
    assert "schema version 99" in str(_load_fails(_config(tmp_path), SchemaTooNew))
    _assert_no_kernel()
    assert _facts(tmp_path)["version"] == "99"  # untouched


# --- an SQLite store's directory is never created --------------------------------------------------

@pytest.mark.sqlite_only
def test_sqlite_url_in_a_missing_directory_is_store_unavailable(tmp_path, monkeypatch, no_leaks):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "nonexistent" / "dir"
    error = _load_fails(_config(tmp_path, provenance=f"sqlite:///{missing}/prov.db"), StoreUnavailable)
    message = str(error)
    assert f"the directory {missing} does not exist" in message
    assert "Create that directory, or choose another store" in message
    assert isinstance(error.cause, StoreDirectoryMissing)
    assert not (tmp_path / "nonexistent").exists(), "the store's directory was created"
    _assert_no_kernel()


@pytest.mark.sqlite_only
def test_provenance_url_variable_in_a_missing_directory_is_store_unavailable(tmp_path, monkeypatch, no_leaks):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "elsewhere"
    monkeypatch.setenv("PARSL_REPRO_PROVENANCE_URL", f"sqlite:///{missing}/runs.db")
    assert f"directory {missing} does not exist" in str(_load_fails(_config(tmp_path), StoreUnavailable))
    assert not missing.exists()
    _assert_no_kernel()
    # once the directory is there, the same variable works
    missing.mkdir()
    with parsl_repro.load(_config(tmp_path)):
        assert token(3).result().startswith("3:")
    assert (missing / "runs.db").exists()
    assert not (tmp_path / "runinfo" / "provenance.db").exists()


@pytest.mark.sqlite_only
def test_default_store_is_made_in_a_fresh_directory(tmp_path, monkeypatch, no_leaks):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    monkeypatch.chdir(fresh)
    with parsl_repro.load(Config()):  # run_dir "runinfo", relative to the working directory
        assert token(4).result().startswith("4:")
    assert (fresh / "runinfo" / "provenance.db").exists()
    nested = tmp_path / "a" / "b" / "runinfo"  # a run_dir whose parents do not exist yet either
    with parsl_repro.load(Config(run_dir=str(nested))):
        assert token(5).result().startswith("5:")
    assert (nested / "provenance.db").exists()


@pytest.mark.sqlite_only
def test_make_engine_creates_no_directories(tmp_path):
    missing = tmp_path / "no" / "such"
    for writer in (True, False):
        with pytest.raises(StoreDirectoryMissing, match=str(missing)):
            make_engine(f"sqlite:///{missing}/p.db", writer=writer)
    assert not (tmp_path / "no").exists()
    make_engine("sqlite://", writer=False).dispose()  # in memory: no directory to check
