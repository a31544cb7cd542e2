"""parsl_repro.concurrent.ParslPoolExecutor: the concurrent.futures.Executor contract over a kernel."""
from __future__ import annotations

import threading
import time

import pytest

from parsl_repro import python_app
from parsl_repro.concurrent import ParslPoolExecutor
from parsl_repro.dataflow.dflow import DataFlowKernelLoader
from parsl_repro.executors import ThreadPoolExecutor


def double(x):
    return 2 * x


def nap(seconds):
    time.sleep(seconds)
    return seconds


@python_app
def plus_one(x):
    return x + 1


def test_exactly_one_of_config_or_dfk(make_config, dfk):
    with pytest.raises(ValueError, match="Specify only one of config or dfk"):
        ParslPoolExecutor(config=make_config(), dfk=dfk)
    with pytest.raises(ValueError, match="Must specify one of config or dfk"):
        ParslPoolExecutor()


def test_a_pool_with_a_config_is_the_current_kernel_so_apps_chain_with_it(make_config, no_leaks):
    with ParslPoolExecutor(make_config()) as pool:
        assert DataFlowKernelLoader.dfk() is pool.dfk
        doubled = pool.submit(double, 5)
        assert plus_one(doubled).result() == 11  # an app declared without a kernel takes the pool's future
        assert pool.submit(double, plus_one(doubled)).result() == 22
    assert pool.dfk.cleanup_called
    assert DataFlowKernelLoader._dfk is None


def test_submit_after_shutdown_is_a_runtime_error_and_shutdown_is_idempotent(make_config, no_leaks):
    pool = ParslPoolExecutor(make_config())
    pool.shutdown()
    pool.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(double, 1)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.map(double, [1])


def test_cancel_futures_is_not_supported_and_says_so(make_config, no_leaks):
    pool = ParslPoolExecutor(make_config())
    with pytest.warns(UserWarning, match="cannot cancel"):
        pool.shutdown(wait=False, cancel_futures=True)
    assert pool.dfk.cleanup_called


def test_map_timeout_counts_from_the_call_not_per_result(make_config, no_leaks):
    # One thread: the two 0.4 s calls end at about 0.4 s and 0.8 s. A 0.6 s timeout counted from
    # the map call covers the first only (counted per result, it would cover both).
    with ParslPoolExecutor(make_config(executors=[ThreadPoolExecutor(max_threads=1)])) as pool:
        results = pool.map(nap, [0.4, 0.4], timeout=0.6)
        assert next(results) == 0.4
        with pytest.raises(TimeoutError):
            next(results)
        assert list(pool.map(nap, [0, 0], timeout=5)) == [0, 0]
        assert pool.app_count == 1


def test_shutdown_over_a_running_kernel_waits_for_the_pool_tasks_only(dfk):
    release = threading.Event()

    @python_app
    def blocked():
        release.wait(10)

    other = blocked()  # not the pool's: shutdown must not wait for it
    pool = ParslPoolExecutor(dfk=dfk)
    mine = pool.submit(nap, 0.2)
    try:
        pool.shutdown(wait=True)
        assert mine.done() and not other.done()
        assert not dfk.cleanup_called
    finally:
        release.set()
    other.result()


def test_leaving_a_with_block_over_a_running_kernel_waits_and_leaves_it_running(dfk):
    with ParslPoolExecutor(dfk=dfk, executors=["threads"]) as pool:
        future = pool.submit(nap, 0.1)
    assert future.done() and future.result() == 0.1
    assert not dfk.cleanup_called
