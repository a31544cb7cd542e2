"""The app decorators: ``python_app``, ``bash_app``, ``join_app`` and the tutorial's ``App``.

Each turns a function into an app object; calling it submits a task to a DataFlowKernel (the
one given as ``data_flow_kernel``, else the loaded one) and returns an ``AppFuture``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import typeguard

from parsl_repro.app.base import AppBase
from parsl_repro.app.bash import BashApp
from parsl_repro.app.python import PythonApp

__all__ = ["App", "AppBase", "bash_app", "join_app", "python_app"]

def _decorator(make: Callable[[Callable], AppBase], function: Callable | None) -> Any:
    return make(function) if function is not None else make


@typeguard.typechecked
def python_app(function: Callable | None = None, data_flow_kernel: Any = None, cache: bool = False,
               executors: list[str] | Literal["all"] = "all",
               ignore_for_cache: Sequence[str] | None = None, deterministic: bool = True) -> Callable:
    """Make a Python function an app; usable as ``@python_app`` or ``@python_app(cache=True, ...)``.

    Parameters: ``data_flow_kernel`` (default: the loaded one), ``cache`` (reuse results of
    identical calls), ``executors`` ('all' or a list of labels), ``ignore_for_cache`` (argument
    names left out of the memo key), ``deterministic`` (False: its results may differ from call
    to call, as with a random seed or a clock; recorded, so that ``parsl-repro replay --verify``
    reports a difference apart instead of as a failure).
    """
    return _decorator(lambda f: PythonApp(f, data_flow_kernel=data_flow_kernel, cache=cache, executors=executors,
                                          ignore_for_cache=ignore_for_cache, deterministic=deterministic), function)


@typeguard.typechecked
def join_app(function: Callable | None = None, data_flow_kernel: Any = None, cache: bool = False,
             ignore_for_cache: Sequence[str] | None = None, deterministic: bool = True) -> Callable:
    """Make a function that launches other apps and returns their future(s) an app; its own
    future completes with their result(s). Join apps run on the kernel's internal threads."""
    return _decorator(lambda f: PythonApp(f, data_flow_kernel=data_flow_kernel, cache=cache,
                                          executors=["_parsl_internal"], ignore_for_cache=ignore_for_cache,
                                          join=True, deterministic=deterministic), function)


@typeguard.typechecked
def bash_app(function: Callable | None = None, data_flow_kernel: Any = None, cache: bool = False,
             executors: list[str] | Literal["all"] = "all",
             ignore_for_cache: Sequence[str] | None = None, deterministic: bool = True) -> Callable:
    """Make a function that returns a shell command line an app; the command runs in bash.

    The call's keyword ``stdout``/``stderr`` redirect the command's streams (a path, a
    ``(path, mode)`` tuple, a ``File`` or ``AUTO_LOGNAME``); ``walltime`` bounds its run time.
    """
    return _decorator(lambda f: BashApp(f, data_flow_kernel=data_flow_kernel, cache=cache, executors=executors,
                                        ignore_for_cache=ignore_for_cache, deterministic=deterministic), function)


def App(apptype: str, data_flow_kernel: Any = None, executors: list[str] | Literal["all"] = "all",
        cache: bool = False, **_ignored: Any) -> Callable[[Callable], AppBase]:
    """The original tutorial's decorator: ``@App('python', dfk)`` or ``@App('bash', dfk)``."""
    if apptype == "python":
        return python_app(data_flow_kernel=data_flow_kernel, executors=executors, cache=cache)
    if apptype == "bash":
        return bash_app(data_flow_kernel=data_flow_kernel, executors=executors, cache=cache)
    raise ValueError(f"App type {apptype!r} is not 'python' or 'bash'")
