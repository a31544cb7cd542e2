"""execute_task: what a worker does with one packed task."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from parsl_repro.executors.execute_task import execute_task, execute_task_named
from parsl_repro.serialize import pack_apply_message, pack_res_spec_apply_message


def addemup(*args, name="apples"):
    return f"{sum(args)} {name}"


def fail(message):
    raise KeyError(message)


def read_env(*names):
    return {name: os.environ.get(name) for name in names}


def test_runs_the_packed_call_and_returns_its_result():
    assert execute_task(pack_apply_message(addemup, (1, 2, 3), {"name": "boots"})) == "6 boots"


def test_execute_task_named_also_names_the_function_that_ran():
    assert execute_task_named(pack_apply_message(addemup, (1, 2), {})) == ("addemup", "3 apples")
    spec = {"num_nodes": 2}
    assert execute_task_named(pack_res_spec_apply_message(read_env, ("PARSL_NUM_NODES",), {}, spec)) == \
        ("read_env", {"PARSL_NUM_NODES": "2"})


def test_the_function_s_exception_propagates_unchanged():
    with pytest.raises(KeyError, match="no such sample"):
        execute_task(pack_apply_message(fail, ("no such sample",), {}))


def test_resource_specification_is_visible_as_environment_and_then_restored(monkeypatch):
    monkeypatch.setenv("PARSL_NUM_NODES", "before")
    monkeypatch.delenv("PARSL_RANKS_PER_NODE", raising=False)
    spec = {"num_nodes": 2, "ranks_per_node": 8}
    seen = execute_task(pack_res_spec_apply_message(read_env, ("PARSL_NUM_NODES", "PARSL_RANKS_PER_NODE"), {}, spec))
    assert seen == {"PARSL_NUM_NODES": "2", "PARSL_RANKS_PER_NODE": "8"}
    assert os.environ["PARSL_NUM_NODES"] == "before"
    assert "PARSL_RANKS_PER_NODE" not in os.environ


def test_environment_is_restored_when_the_task_fails(monkeypatch):
    monkeypatch.delenv("PARSL_NUM_NODES", raising=False)
    with pytest.raises(KeyError):
        execute_task(pack_res_spec_apply_message(fail, ("x",), {}, {"num_nodes": 3}))
    assert "PARSL_NUM_NODES" not in os.environ


def test_task_defined_in_another_process_s_main_script_runs_here(tmp_path):
    # The sending script's functions and classes do not exist here: they must travel by value,
    # together with the script-level helper and imports they use.
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent("""
        import json
        import sys

        from parsl_repro.serialize import pack_apply_message

        class Sample:
            def __init__(self, values):
                self.values = values

        def total(sample):
            return sum(sample.values)

        def factorial(n):
            return 1 if n <= 1 else n * factorial(n - 1)

        def summarize(sample, scale=1):
            return json.dumps({"total": total(sample) * scale, "fact": factorial(4)})

        sys.stdout.buffer.write(pack_apply_message(summarize, (Sample([1, 2, 3]),), {"scale": 10}))
    """))
    packed = subprocess.run([sys.executable, str(script)], capture_output=True, check=True, timeout=60).stdout
    assert execute_task(packed) == '{"total": 60, "fact": 24}'
