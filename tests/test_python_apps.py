"""Python apps: results, dependencies through every kind of argument, fan-out/fan-in, chains."""
from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest

import parsl_repro
from parsl_repro import python_app
from parsl_repro.dataflow.dependency_resolvers import DEEP_DEPENDENCY_RESOLVER
from parsl_repro.dataflow.errors import DependencyError
from parsl_repro.dataflow.futures import AppFuture
from parsl_repro.dataflow.states import States


@python_app
def add(a, b=0):
    return a + b


@python_app
def total(inputs=()):
    return sum(inputs)


@python_app
def fail(message="deliberate"):
    raise ValueError(message)


def test_hello_returns_app_future_with_result(dfk):
    @python_app
    def hello():
        return "Hello World!"

    fut = hello()
    assert isinstance(fut, AppFuture) and isinstance(fut, Future)
    assert fut.result(timeout=10) == "Hello World!"
    assert fut.task_record["func_name"] == "hello"
    assert fut.tid == fut.task_record["id"] == fut.task_record.id


def test_decorator_with_and_without_parentheses(dfk):
    @python_app()
    def one():
        return 1

    @python_app
    def two():
        return 2

    assert one().result() + two().result() == 3


def test_dependencies_through_positional_keyword_and_inputs(dfk):
    a = add(1)
    b = add(a, b=add(2))
    c = total(inputs=[a, b, 10])
    assert (a.result(), b.result(), c.result()) == (1, 3, 14)


def test_plain_concurrent_future_is_a_dependency(dfk):
    gate: Future = Future()
    fut = add(gate, 1)
    assert not fut.done()
    gate.set_result(41)
    assert fut.result(timeout=10) == 42


def test_fan_out_fan_in_10000_tasks(dfk):
    parts = [add(i) for i in range(10_000)]
    assert total(inputs=parts).result(timeout=120) == sum(range(10_000))
    assert dfk.task_state_counts[States.exec_done] == 10_001


def test_chain_of_1000_dependent_tasks(dfk):
    fut = add(0, 1)
    for _ in range(999):
        fut = add(fut, 1)
    assert fut.result(timeout=120) == 1000


def test_chain_of_failures_does_not_overflow_the_stack(dfk):
    fut = fail()
    for _ in range(3000):
        fut = add(fut, 1)
    with pytest.raises(DependencyError):
        fut.result(timeout=60)
    assert dfk.task_state_counts[States.dep_fail] == 3000


def test_app_exception_fails_only_its_task_and_dependents_name_the_parent(dfk):
    bad = fail("boom")
    child = add(bad, 1)
    grandchild = add(child, 1)
    unrelated = add(5)
    with pytest.raises(ValueError, match="boom"):
        bad.result()
    error = grandchild.exception(timeout=10)
    assert isinstance(error, DependencyError)
    assert f"task {child.tid}" in str(error) and f"task {bad.tid}" in str(error)
    assert "ValueError: boom" in str(error)
    assert error.__cause__ is bad.exception()
    assert unrelated.result() == 5


def test_deep_dependency_resolver_finds_futures_in_nested_containers(load):
    load(dependency_resolver=DEEP_DEPENDENCY_RESOLVER)

    @python_app
    def echo(x):
        return x

    nested = {"list": [add(1), (add(2), {add(3)})], add(4): "key"}
    result = echo(nested).result(timeout=10)
    assert result == {"list": [1, (2, {3})], 4: "key"}


def test_shallow_resolver_leaves_nested_futures_alone(dfk):
    @python_app
    def kind(x):
        return type(x[0]).__name__

    assert kind([add(1)]).result() == "AppFuture"


def test_lifted_getitem_and_getattr(dfk):
    class Point:
        def __init__(self):
            self.x = 7

    @python_app
    def pair():
        return (1, {"k": Point()})

    fut = pair()
    assert fut[0].result() == 1
    assert fut[1]["k"].x.result() == 7


def test_tasks_run_in_parallel_on_threads(dfk):
    barrier = threading.Barrier(2, timeout=10)

    @python_app
    def meet():
        barrier.wait()
        return True

    assert all(f.result(timeout=20) for f in [meet(), meet()])


def test_data_flow_kernel_argument_pins_app_to_that_kernel(make_config, no_leaks):
    kernel = parsl_repro.DataFlowKernel(make_config())
    try:
        @python_app(data_flow_kernel=kernel)
        def where():
            return "pinned"

        assert where().result() == "pinned"
        assert kernel.task_count == 1
    finally:
        kernel.cleanup()


def test_submit_after_cleanup_is_refused(make_config, no_leaks):
    kernel = parsl_repro.DataFlowKernel(make_config())
    kernel.cleanup()
    kernel.cleanup()  # idempotent

    @python_app(data_flow_kernel=kernel)
    def late():
        return 1

    with pytest.raises(parsl_repro.errors.NoDataFlowKernelError):
        late()


def test_calling_an_app_without_a_loaded_kernel_says_so():
    parsl_repro.clear()
    with pytest.raises(parsl_repro.errors.NoDataFlowKernelError, match="load"):
        add(1)


def test_dependents_do_not_alter_the_parent_exception(dfk):
    @python_app
    def fail_after(n, delay):
        import time
        time.sleep(delay)
        raise ValueError(f"failure {n}")

    @python_app
    def both(*xs):
        return sum(xs)

    a, b = fail_after(1, 0.0), fail_after(2, 0.3)
    error = both(a, b).exception(timeout=10)
    assert isinstance(error, DependencyError) and len(error.dependent_exceptions_tids) == 2
    assert a.exception().__context__ is None and b.exception().__context__ is None


def test_task_created_event_precedes_its_first_state(load):
    from parsl_repro.events import RecordingSink, TaskArguments, TaskCreated, TaskReturned, TaskState
    sink = RecordingSink()
    load(sink=sink)
    fut = add(1)
    fut.result()
    mine = [e for e in sink.events if getattr(e, "task_id", None) == fut.tid]
    assert [type(e) for e in mine] == [TaskCreated, TaskArguments, TaskState, TaskState, TaskReturned]
    arguments, launched, done, returned = mine[1:]
    assert (arguments.args, returned.value) == ((1,), add.__wrapped__(1))  # resolved arguments; the result
    # threads report when the try started running with the move that closes it
    assert launched.new == "launched" and launched.running is None
    assert done.new == "exec_done" and launched.time <= done.running <= done.time


def test_concurrent_futures_wait_on_app_futures_that_finish_meanwhile(dfk):
    """``concurrent.futures.wait`` takes and releases every future's condition; a future that
    finished in between once came back with another condition, and wait failed with "cannot
    release un-acquired lock". Polled with a short timeout while thousands of tasks finish."""
    import concurrent.futures

    @python_app
    def tiny(x):
        return x

    for _round in range(5):
        pending = {tiny(i) for i in range(5000)}
        while pending:
            _done, pending = concurrent.futures.wait(pending, timeout=0)
    # what wait relies on: a future keeps the condition it was made with, finished or not (the race
    # itself, a future finishing between wait's acquire and release, is too narrow to hit at will)
    made = tiny(-1)
    condition = made._condition
    assert made.result() == -1 and made._condition is condition
    finished = [tiny(i) for i in range(200)]
    assert sorted(f.result() for f in concurrent.futures.as_completed(finished)) == list(range(200))
