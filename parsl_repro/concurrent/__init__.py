"""``ParslPoolExecutor``: the ``concurrent.futures.Executor`` interface over a parsl_repro kernel."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import Any, Literal

from parsl_repro.app.python import PythonApp
from parsl_repro.config import Config
from parsl_repro.dataflow.dflow import DataFlowKernel


class ParslPoolExecutor(Executor):
    """Runs plain functions as python apps: ``submit``, ``map`` and ``shutdown`` as in ``concurrent.futures``.

    Give either a ``Config`` (the pool starts its own kernel and cleans it up at shutdown) or a
    running ``dfk`` (left running at shutdown).
    """

    def __init__(self, config: Config | None = None, dfk: DataFlowKernel | None = None,
                 executors: Literal["all"] | list[str] = "all") -> None:
        if (config is None) == (dfk is None):
            raise ValueError("ParslPoolExecutor needs exactly one of config= or dfk=")
        self._owns_dfk = dfk is None
        self.dfk = dfk if dfk is not None else DataFlowKernel(config)
        self.executors = executors
        self._apps: dict[Callable, PythonApp] = {}

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
        return self.get_app(fn)(*args, **kwargs)

    def map(self, fn: Callable, *iterables: Iterable, timeout: float | None = None,
            chunksize: int = 1) -> Iterator[Any]:
        futures = [self.submit(fn, *call_args) for call_args in zip(*iterables, strict=False)]

        def results() -> Iterator[Any]:
            for fut in futures:
                yield fut.result(timeout=timeout)

        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if wait:
            self.dfk.wait_for_current_tasks()
        if self._owns_dfk:
            self.dfk.cleanup()

    def __enter__(self) -> ParslPoolExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
