"""Log configurations (``parsl_repro.logconfigs``): what each writes, where, and that every
process of a run (kernel, provenance writer, HTEX interchange, manager, workers) logs through
the run's ``LogConfig``."""
from __future__ import annotations

import json
import logging
import os
import pathlib
import pickle

import pytest

from parsl_repro import python_app
from parsl_repro.config import Config
from parsl_repro.logconfigs import FileLogging, JSONLogging, NoOpLogging, NoopLogging
from parsl_repro.logconfigs import base as logconfig_base
from parsl_repro.logconfigs.base import oneshot_initialize_logging, oneshot_uninitialize_logging
from parsl_repro.typecheck import TypeCheckError
from tests import test_htex
from tests.test_htex import _htex

htex_load = test_htex.htex_load  # the fixture: a kernel on an HTEX, no process left after cleanup

TOKEN = "XXTOKENXX"


@python_app
def log_and_return(x: int) -> int:
    import logging

    logging.getLogger("parsl_repro.test_app").info("task says %d", x, extra={"parsl.custom": f"c{x}"})
    return x


@pytest.fixture(autouse=True)
def no_configuration_left_initialized():
    """Every initialisation in a test must be matched by one uninitialisation (kernel cleanup)."""
    yield
    assert logconfig_base._initialized_log_contexts == {}


def _log_files(directory: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.suffix in (".log", ".jsonlog"))


def test_config_accepts_a_bool_or_a_log_config_and_nothing_else():
    assert Config(initialize_logging=False).initialize_logging is False
    config = FileLogging()
    assert Config(initialize_logging=config).initialize_logging is config
    with pytest.raises(TypeCheckError, match="initialize_logging"):
        Config(initialize_logging="yes")


def test_a_log_config_pickles_with_its_uuid_and_settings():
    original = FileLogging(format_string="%(message)s", level=logging.INFO)
    copy = pickle.loads(pickle.dumps(original))
    assert (copy.uuid, copy.format_string, copy.level) == (original.uuid, "%(message)s", logging.INFO)
    assert NoopLogging is NoOpLogging


def test_file_logging_format_string_reaches_every_line_of_parsl_log(load):
    config = FileLogging(format_string=f"{TOKEN} %(levelname)s %(message)r")  # one line per record
    kernel = load(initialize_logging=config)
    assert kernel.log_config is config
    assert log_and_return(1).result() == 1
    run_dir = pathlib.Path(kernel.run_dir)
    kernel.cleanup()
    lines = (run_dir / "parsl.log").read_text().splitlines()
    assert lines and all(line.startswith(TOKEN) for line in lines)
    assert any("Starting DataFlowKernel" in line for line in lines)
    assert any("DEBUG" in line for line in lines), "FileLogging's default level is DEBUG"


def test_json_logging_writes_one_parsable_object_per_line_with_parsl_extras(load):
    kernel = load(initialize_logging=JSONLogging())
    logging.getLogger("tests.user_code").info("plain message")
    logging.getLogger("tests.user_code").info("with extra", extra={"parsl.somekey": "vv"})
    assert log_and_return(2).result() == 2
    run_dir = pathlib.Path(kernel.run_dir)
    kernel.cleanup()
    records = [json.loads(line) for line in (run_dir / "parsl.jsonlog").read_text().splitlines()]
    assert [r["msg"] for r in records].count("plain message") == 1
    assert [r for r in records if r["msg"] == "with extra"][0]["parsl.somekey"] == "vv"
    assert any("parsl.task" in r for r in records), "the kernel's task lines carry parsl.task"
    assert not (run_dir / "parsl.log").exists()


def test_oneshot_initialization_is_reference_counted_per_uuid(tmp_path):
    config = FileLogging(format_string="%(message)s")
    copy = pickle.loads(pickle.dumps(config))  # as another component of the same run would hold it
    package_logger = logging.getLogger("parsl_repro")
    before = list(package_logger.handlers)
    oneshot_initialize_logging(log_config=config, log_dir=tmp_path, log_name="first")
    oneshot_initialize_logging(log_config=copy, log_dir=tmp_path, log_name="second")
    assert len(package_logger.handlers) == len(before) + 1
    assert not (tmp_path / "second.log").exists(), "the second initialisation only adds a reference"
    oneshot_uninitialize_logging(log_config=copy)
    logging.getLogger("parsl_repro.test").info("still logged")
    oneshot_uninitialize_logging(log_config=config)
    logging.getLogger("parsl_repro.test").info("not logged")
    assert package_logger.handlers == before
    written = (tmp_path / "first.log").read_text().splitlines()
    assert "still logged" in written and "not logged" not in written
    with pytest.raises(RuntimeError, match="not initialized"):
        oneshot_uninitialize_logging(log_config=config)


def test_noop_logging_writes_no_log_anywhere(load):
    kernel = load(initialize_logging=NoOpLogging())
    assert log_and_return(3).result() == 3
    run_dir = pathlib.Path(kernel.run_dir)
    kernel.cleanup()
    assert _log_files(run_dir) == []


def test_default_and_false_keep_their_logs(load):
    default = load()
    default_dir = pathlib.Path(default.run_dir)
    default.cleanup()
    false = load(initialize_logging=False)
    false_dir = pathlib.Path(false.run_dir)
    false.cleanup()
    assert default.log_config is None and false.log_config is None
    assert _log_files(default_dir) == ["database_manager.log", "parsl.log"]
    assert "Provenance writer of run" in (default_dir / "database_manager.log").read_text()
    # False only concerns the kernel's own log; the provenance writer keeps its default (as Parsl)
    assert _log_files(false_dir) == ["database_manager.log"]


def test_the_provenance_writer_logs_through_the_run_log_config(load):
    kernel = load(initialize_logging=JSONLogging())
    run_dir = pathlib.Path(kernel.run_dir)
    kernel.cleanup()
    assert not (run_dir / "database_manager.log").exists()
    records = [json.loads(line) for line in (run_dir / "database_manager.jsonlog").read_text().splitlines()]
    writer = [r for r in records if r["msg"].startswith("Provenance writer of run")]
    assert len(writer) == 2 and all(r["process"] != os.getpid() for r in writer), "written by the writer process"


def test_htex_interchange_manager_and_workers_log_through_the_log_config(htex_load):
    config = FileLogging(format_string=f"{TOKEN} %(processName)s %(message)s")
    kernel = htex_load(_htex(max_workers_per_node=2), initialize_logging=config)
    assert [log_and_return(i).result(timeout=60) for i in range(4)] == [0, 1, 2, 3]
    executor_dir = pathlib.Path(kernel.run_dir) / "htex"
    kernel.cleanup()
    (pool_dir,) = (executor_dir / "block-0").iterdir()
    assert _log_files(executor_dir) == ["block-0/" + pool_dir.name + "/" + name
                                        for name in ("manager.log", "worker_0.log", "worker_1.log")] \
        + ["interchange.log"]
    for log in ("interchange.log", f"block-0/{pool_dir.name}/manager.log"):
        lines = (executor_dir / log).read_text().splitlines()
        assert lines and all(line.startswith(TOKEN) for line in lines), log
    worker_lines = [line for rank in (0, 1) for line in (pool_dir / f"worker_{rank}.log").read_text().splitlines()]
    assert worker_lines and all(line.startswith(TOKEN) for line in worker_lines)
    assert sum("task says" in line for line in worker_lines) == 4, "each task's own log line is in its worker's log"
    assert "Worker 0 of pool" in (pool_dir / "worker_0.log").read_text()
    # a forked worker drops the manager's handlers: its lines are not in manager.log
    assert "parsl-repro-worker" not in (pool_dir / "manager.log").read_text()


def test_htex_default_logs_are_unchanged(htex_load):
    kernel = htex_load(_htex(max_workers_per_node=1))
    assert log_and_return(5).result(timeout=60) == 5
    executor_dir = pathlib.Path(kernel.run_dir) / "htex"
    kernel.cleanup()
    logs = _log_files(executor_dir)
    assert logs[-1] == "interchange.log" and len(logs) == 2
    assert logs[0].startswith("block-0/manager-"), logs
    assert not (executor_dir / "log_config").exists()
