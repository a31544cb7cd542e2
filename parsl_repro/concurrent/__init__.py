"""``ParslPoolExecutor``: the ``concurrent.futures.Executor`` interface over a parsl_repro kernel."""
from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import Any, Literal

from parsl_repro.app.python import PythonApp
from parsl_repro.config import Config
from parsl_repro.dataflow.dflow import DataFlowKernel, DataFlowKernelLoader


class ParslPoolExecutor(Executor):
    """Runs plain functions as python apps: ``submit``, ``map`` and ``shutdown`` as in ``concurrent.futures``.

    Give either a ``Config`` or a running ``dfk``. A ``Config`` is loaded as the current kernel
    (as ``parsl_repro.load`` does, so apps declared without a kernel can take the pool's futures
    as arguments) and is cleaned up at shutdown; a ``dfk`` is left running. Tasks cannot be
    cancelled: ``map`` does not cancel the remaining calls on a failure or a timeout.
    """

    def __init__(self, config: Config | None = None, dfk: DataFlowKernel | None = None,
                 executors: Literal["all"] | list[str] = "all") -> None:
        if config is not None and dfk is not None:
            raise ValueError("Specify only one of config or dfk")
        if config is None and dfk is None:
            raise ValueError("Must specify one of config or dfk")
        self._owns_dfk = dfk is None
        self.dfk = dfk if dfk is not None else DataFlowKernelLoader.load(config)
        self.executors = executors
        self._apps: dict[Callable, PythonApp] = {}
        self._pending: set[Future] = set()  # futures of this pool not done yet, for shutdown(wait=True)
        self._lock = threading.Lock()
        self._shut_down = False

    @property
    def app_count(self) -> int:
        """How many distinct functions have been turned into apps."""
        return len(self._apps)

    def get_app(self, fn: Callable) -> PythonApp:
        app = self._apps.get(fn)
        if app is None:
            app = self._apps[fn] = PythonApp(fn, data_flow_kernel=self.dfk, executors=self.executors)
        return app

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)`` as a task; raises ``RuntimeError`` after ``shutdown``."""
        with self._lock:
            if self._shut_down:
                raise RuntimeError("cannot submit: this ParslPoolExecutor has been shut down")
            future = self.get_app(fn)(*args, **kwargs)
            self._pending.add(future)
        # Outside the lock: the callback runs at once, in this thread, if the task is already done.
        future.add_done_callback(self._pending.discard)
        return future

    def map(self, fn: Callable, *iterables: Iterable, timeout: float | None = None,
            chunksize: int = 1, buffersize: int | None = None) -> Iterator[Any]:
        """Submit every call at once and yield the results in order.

        ``timeout`` counts from this call: a result not ready by then raises ``TimeoutError`` (the
        task keeps running). ``chunksize`` and ``buffersize`` are accepted for compatibility and
        ignored: each call is its own task, and all are submitted before the first result.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        futures = [self.submit(fn, *call_args) for call_args in zip(*iterables, strict=False)]
        futures.reverse()

        def results() -> Iterator[Any]:
            while futures:
                # pop, so that a consumed result is not kept alive by this generator
                if deadline is None:
                    yield futures.pop().result()
                else:
                    yield futures.pop().result(deadline - time.monotonic())

        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new submissions; with ``wait``, first wait for this pool's tasks. A kernel the
        pool loaded is then cleaned up. Calling it again does nothing."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
        if cancel_futures:
            warnings.warn("ParslPoolExecutor cannot cancel tasks: cancel_futures=True is ignored",
                          UserWarning, stacklevel=2)
        if wait:
            for future in list(self._pending):
                future.exception()  # waits without raising the task's error
        if self._owns_dfk:
            self.dfk.cleanup()

    def __enter__(self) -> ParslPoolExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
