"""Join apps: a task whose body launches other apps and completes with their results."""
from __future__ import annotations

import pytest

from parsl_repro import join_app, python_app
from parsl_repro.dataflow.errors import JoinError
from parsl_repro.dataflow.states import States


@python_app
def square(x):
    return x * x


@python_app
def explode(x):
    raise RuntimeError(f"inner failure {x}")


@join_app
def sum_of_squares(n):
    @python_app
    def add_all(*values):
        return sum(values)
    return add_all(*[square(i) for i in range(n)])


@join_app
def squares(n):
    return [square(i) for i in range(n)]


@join_app
def nested(depth):
    if depth == 0:
        return square(3)
    return nested(depth - 1)


def test_join_app_returning_one_future_completes_with_its_result(dfk):
    assert sum_of_squares(5).result(timeout=30) == 30


def test_join_app_returning_a_list_completes_with_all_results(dfk):
    assert squares(4).result(timeout=30) == [0, 1, 4, 9]


def test_join_app_returning_empty_list_completes_with_empty_list(dfk):
    assert squares(0).result(timeout=30) == []


def test_nested_join_apps(dfk):
    assert nested(5).result(timeout=60) == 9


def test_dependency_on_joined_result(dfk):
    assert square(sum_of_squares(3)).result(timeout=30) == 25


def test_join_app_with_a_failing_inner_task_raises_join_error(dfk):
    @join_app
    def mixed():
        return [square(2), explode(1)]

    fut = mixed()
    error = fut.exception(timeout=30)
    assert isinstance(error, JoinError)
    assert "inner failure 1" in str(error)
    assert isinstance(error.dependent_exceptions_tids[0][0], RuntimeError)


def test_join_app_returning_a_non_future_raises_type_error_naming_it(dfk):
    @join_app
    def wrong():
        return 3

    with pytest.raises(TypeError, match="wrong"):
        wrong().result(timeout=30)
    assert dfk.task_state_counts[States.failed] == 1


def test_join_app_moves_through_joining_state(load):
    from parsl_repro.events import RecordingSink, TaskState
    sink = RecordingSink()
    load(sink=sink)
    fut = sum_of_squares(2)
    assert fut.result(timeout=30) == 1
    moves = [(e.old, e.new) for e in sink.of_type(TaskState) if e.task_id == fut.tid]
    assert moves == [("pending", "launched"), ("launched", "joining"), ("joining", "exec_done")]
