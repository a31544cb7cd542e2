"""``AppBase``: what every app object is, a function plus where and how its calls run."""
from __future__ import annotations

import functools
import logging
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Sequence
from inspect import Parameter, signature
from typing import Any, Literal

from parsl_repro.dataflow.futures import AppFuture

logger = logging.getLogger(__name__)

SPECIAL_KEYWORDS = ("stdout", "stderr", "walltime", "parsl_resource_specification", "outputs", "inputs")
"""Keyword arguments the kernel itself reads; their defaults are taken from the app's signature."""


@functools.cache
def _loader() -> Any:
    from parsl_repro.dataflow.dflow import DataFlowKernelLoader  # imported once, on the first call
    return DataFlowKernelLoader


class AppBase(metaclass=ABCMeta):
    """An app: a function plus where and how its calls run."""

    kind = "python"

    def __init__(self, func: Callable, data_flow_kernel: Any = None,
                 executors: list[str] | Literal["all"] = "all", cache: bool = False,
                 ignore_for_cache: Sequence[str] | None = None, deterministic: bool = True) -> None:
        self.__name__ = func.__name__
        self.__doc__ = func.__doc__
        self.__wrapped__ = func
        self.func = func
        self.data_flow_kernel = data_flow_kernel
        self.executors = executors
        self.cache = cache
        self.ignore_for_cache = list(ignore_for_cache) if ignore_for_cache else None
        self.deterministic = deterministic  # False: a replay expects other results (recorded with the app)
        params = signature(func).parameters
        self.kwargs: dict[str, Any] = {
            name: params[name].default for name in SPECIAL_KEYWORDS
            if name in params and params[name].default is not Parameter.empty
        }

    def _kernel(self) -> Any:
        if self.data_flow_kernel is not None:
            return self.data_flow_kernel
        return _loader().dfk()

    @abstractmethod
    def __call__(self, *args: Any, **kwargs: Any) -> AppFuture:
        """Submit one task; return its future."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.__name__}>"
