"""``TaskRecord``: everything the kernel knows about one task.

A plain slotted object, read by attribute inside parsl_repro. Parsl's code, tests and user
plug-ins (retry handlers, memoizers, ``std_autopath``) read it as a dict (``record['id']``),
so item access maps onto the same attributes.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from parsl_repro.dataflow.states import States

if TYPE_CHECKING:
    from parsl_repro.dataflow.dflow import DataFlowKernel
    from parsl_repro.dataflow.futures import AppFuture


class TaskRecord:
    __slots__ = (
        "dfk", "id", "func", "func_name", "args", "kwargs", "executor", "status",
        "depends", "app_fu", "exec_fu", "fail_count", "fail_cost", "fail_history",
        "memoize", "hashsum", "ignore_for_cache", "from_memo", "join", "joins", "join_lock",
        "try_id", "task_launch_lock", "time_invoked", "time_returned", "try_time_launched",
        "try_time_returned", "resource_specification", "_outstanding", "app_kind", "result_digest",
        "try_time_running", "identity",
    )

    def __init__(self, *, dfk: DataFlowKernel, task_id: int, func: Callable, func_name: str,
                 args: tuple, kwargs: dict[str, Any], executor: str, memoize: bool,
                 ignore_for_cache: list[str], join: bool, app_kind: str,
                 resource_specification: dict[str, Any], time_invoked: float) -> None:
        self.dfk = dfk
        self.id = task_id
        self.func = func
        self.func_name = func_name
        self.args = args
        self.kwargs = kwargs
        self.executor = executor
        self.depends: list[Future] = []
        self.exec_fu: Future | None = None
        self.fail_count = 0
        self.fail_cost = 0.0
        self.fail_history: list[str] = []
        self.memoize = memoize
        self.hashsum: str | None = None
        self.ignore_for_cache = ignore_for_cache
        self.from_memo: bool | None = None
        self.join = join
        self.joins: Future | list[Future] | None = None
        self.try_id = 0
        self.task_launch_lock = threading.Lock()
        self.time_invoked = time_invoked
        self.time_returned: float | None = None
        self.try_time_launched: float | None = None
        self.try_time_returned: float | None = None
        self.try_time_running: float | None = None  # set by executors that report it on their futures
        self.resource_specification = resource_specification
        self.app_kind = app_kind
        self.result_digest: str | None = None  # sha256 of the serialized result, when the memoizer computed it
        self._outstanding = 0
        # the identity of func's code computed by submit, kept only while submit runs: a task launched
        # from inside submit (no dependencies, so no user code ran in between) is keyed with it
        self.identity: Any = None

    # --- dict-style access, for Parsl plug-ins ------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self.__slots__:
            raise KeyError(f"TaskRecord has no field {key!r}")
        setattr(self, key, value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self.__slots__ and hasattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default) if key in self.__slots__ else default

    def keys(self) -> Iterator[str]:
        return (k for k in self.__slots__ if not k.startswith("_") and hasattr(self, k))

    def update(self, other: dict[str, Any]) -> None:
        for key, value in other.items():
            self[key] = value

    def __repr__(self) -> str:
        status = getattr(self, "status", None)
        return f"<TaskRecord {self.id} {self.func_name} {status.name if isinstance(status, States) else status}>"

    if TYPE_CHECKING:
        status: States
        app_fu: AppFuture
        join_lock: threading.Lock
