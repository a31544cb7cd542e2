"""Nothing leaves a task hanging: cancelled dependencies, cancelled joined futures and broken
plug-ins fail the task for good, and the kernel's counts and waits stay consistent."""
from __future__ import annotations

import threading
from concurrent.futures import CancelledError, Future

import pytest

import parsl_repro
from parsl_repro import join_app, python_app
from parsl_repro.dataflow.dependency_resolvers import DEEP_DEPENDENCY_RESOLVER
from parsl_repro.dataflow.errors import DependencyError, JoinError
from parsl_repro.dataflow.states import FINAL_STATES, States
from parsl_repro.events import EventSink, TaskState


@python_app
def echo(x):
    return x


@python_app
def explode():
    raise ValueError("parent failed")


def test_cancelled_plain_future_dependency_fails_the_task(dfk):
    gate: Future = Future()
    fut = echo(gate)
    gate.cancel()
    error = fut.exception(timeout=10)
    assert isinstance(error, DependencyError)
    assert isinstance(error.dependent_exceptions_tids[0][0], CancelledError)
    assert fut.task_record.status is States.dep_fail
    parsl_repro.wait_for_current_tasks()


def test_join_app_whose_returned_future_is_cancelled_fails_with_join_error(dfk):
    inner: Future = Future()

    @join_app
    def joins_on_plain_future():
        return inner

    fut = joins_on_plain_future()
    while fut.task_status() != "joining":
        threading.Event().wait(0.01)
    inner.cancel()
    assert isinstance(fut.exception(timeout=10), JoinError)
    assert dfk.task_state_counts[States.failed] == 1 and dfk.task_state_counts[States.joining] == 0


class ExplodingSink(EventSink):
    """A broken plug-in: raises on every state change into 'exec_done'."""

    def emit(self, event):
        if isinstance(event, TaskState) and event.new == "exec_done":
            raise RuntimeError("sink is broken")


def test_a_broken_event_sink_fails_tasks_instead_of_hanging_them(load):
    kernel = load(sink=ExplodingSink())
    fut = echo(1)
    with pytest.raises(RuntimeError, match="sink is broken"):
        fut.result(timeout=10)
    kernel.wait_for_current_tasks()  # returns: the task reached a final state
    assert kernel.task_state_counts[States.launched] == 0


def test_internal_failure_moves_the_task_to_a_final_state(load):
    kernel = load(garbage_collect=False)
    gate: Future = Future()
    fut = echo(gate)
    gate.cancel()
    fut.exception(timeout=10)
    assert kernel.tasks[fut.tid].status in FINAL_STATES


def test_deep_resolver_names_each_failed_input_once(load):
    load(dependency_resolver=DEEP_DEPENDENCY_RESOLVER)

    @python_app
    def combine(inputs=()):
        return inputs

    bad = explode()
    error = combine(inputs=[bad, echo(2)]).exception(timeout=10)
    assert isinstance(error, DependencyError)
    assert [tid for _, tid in error.dependent_exceptions_tids] == [f"task {bad.tid}"]
    assert error.__cause__ is bad.exception()
