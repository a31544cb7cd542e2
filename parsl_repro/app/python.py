"""Python apps, and the ``walltime`` limit for them."""
from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, Literal

from parsl_repro.app.base import AppBase
from parsl_repro.app.errors import AppTimeout
from parsl_repro.dataflow.futures import AppFuture


def timeout(f: Callable, seconds: float) -> Callable:
    """Wrap ``f`` so that a call running longer than ``seconds`` raises ``AppTimeout``.

    The timer raises ``AppTimeout`` asynchronously in the calling thread, so it interrupts pure
    Python code (a loop, ``time.sleep`` in small steps) but not a long call into C. If the timer
    fires just as ``f`` returns, the pending exception is withdrawn and ``AppTimeout`` is raised
    here, so the timer never leaks into the thread's next task.
    """

    @wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        thread_id = ctypes.c_ulong(threading.get_ident())
        lock = threading.Lock()
        state = {"finished": False, "fired": False}

        def fire() -> None:
            with lock:
                if state["finished"]:
                    return
                state["fired"] = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(thread_id, ctypes.py_object(AppTimeout))

        timer = threading.Timer(seconds, fire)
        timer.daemon = True
        timer.start()
        try:
            return f(*args, **kwargs)
        finally:
            timer.cancel()
            with lock:
                state["finished"] = True
                fired = state["fired"]
            if fired:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(thread_id, None)
                raise AppTimeout(f"App {getattr(f, '__name__', f)} exceeded walltime: {seconds} seconds")

    return wrapper


class PythonApp(AppBase):
    """An app whose body runs as Python where the task is sent."""

    def __init__(self, func: Callable, data_flow_kernel: Any = None, cache: bool = False,
                 executors: list[str] | Literal["all"] = "all", ignore_for_cache: Sequence[str] | None = None,
                 join: bool = False, deterministic: bool = True) -> None:
        super().__init__(func, data_flow_kernel=data_flow_kernel, executors=executors, cache=cache,
                         ignore_for_cache=ignore_for_cache, deterministic=deterministic)
        self.join = join
        self.kind = "join" if join else "python"

    def __call__(self, *args: Any, **kwargs: Any) -> AppFuture:
        invocation_kwargs = {**self.kwargs, **kwargs} if self.kwargs else kwargs
        walltime = invocation_kwargs.get("walltime")
        func = timeout(self.func, walltime) if walltime is not None else self.func
        return self._kernel().submit(func, app_args=args, executors=self.executors, cache=self.cache,
                                     ignore_for_cache=self.ignore_for_cache, app_kwargs=invocation_kwargs,
                                     join=self.join, app_kind=self.kind, func_name=self.__name__,
                                     deterministic=self.deterministic)
