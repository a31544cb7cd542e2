"""``DataManager``: hands each file a task names to the executor's staging providers.

The kernel calls ``stage_task`` once per submitted task that names a ``File`` or a
``DataFuture``. For each input it finds the first provider of the task's executor that can
stage the file in and lets it start stage-in work and wrap the task's function; for each output
(``outputs=``, and ``stdout``/``stderr`` given as ``File``) likewise for stage out, and makes
the output's ``DataFuture``. Providers always work on a copy of the user's ``File``, so a
``local_path`` set for one task never leaks into the user's object or another task.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from parsl_repro.data_provider.data_future import DataFuture
from parsl_repro.data_provider.file_noop import NoOpFileStaging
from parsl_repro.data_provider.files import File
from parsl_repro.data_provider.ftp import FTPSeparateTaskStaging
from parsl_repro.data_provider.http import HTTPSeparateTaskStaging
from parsl_repro.data_provider.staging import Staging
from parsl_repro.data_provider.zip import ZipFileStaging
from parsl_repro.errors import ParslError

if TYPE_CHECKING:
    from parsl_repro.dataflow.dflow import DataFlowKernel
    from parsl_repro.dataflow.taskrecord import TaskRecord

logger = logging.getLogger(__name__)

#: The providers of an executor whose ``storage_access`` is None. Shared by all such executors,
#: so they hold no per-executor state.
default_staging: list[Staging] = [NoOpFileStaging(), FTPSeparateTaskStaging(), HTTPSeparateTaskStaging(),
                                  ZipFileStaging()]

#: A task submitted with this keyword set to a true value is itself staging work: its files are
#: passed through as they are.
STAGING_INHIBIT = "_parsl_staging_inhibit"


class NoStagingProvider(ParslError, ValueError):
    """No staging provider of the executor claims a file (a ``ValueError``, as in Parsl)."""

    def __init__(self, executor: str, file: File, direction: str, providers: list[Staging]) -> None:
        super().__init__(executor, file.url, direction)
        self.executor = executor
        self.file = file
        self.direction = direction
        self.providers = providers

    def __str__(self) -> str:
        names = ", ".join(type(p).__name__ for p in self.providers) or "none"
        return (f"Executor {self.executor!r} cannot stage {self.direction} file {self.file.url!r}: none of its "
                f"staging providers ({names}) handles the {self.file.scheme!r} scheme. Add one that does to the "
                f"executor's storage_access.")


def names_files(args: tuple, kwargs: dict[str, Any]) -> bool:
    """Whether a call passes a File or DataFuture the data manager must look at (cheap: the
    kernel asks this of every task)."""
    for value in args:
        if isinstance(value, (File, DataFuture)):
            return True
    for name, value in kwargs.items():
        if isinstance(value, (File, DataFuture)):
            return True
        if name in ("inputs", "outputs") and value:
            return True
    return False


class DataManager:
    """Stages the files of one kernel's tasks (see the module docstring)."""

    def __init__(self, dfk: DataFlowKernel) -> None:
        self.dfk = dfk

    def submit_staging(self, func: Callable, executor: str, *args: Any, **kwargs: Any) -> Future:
        """Submit a staging task, ``func(*args, **kwargs)`` on ``executor``, uncached: what calling a
        ``python_app`` does, for the staging providers that sit below the app layer."""
        return self.dfk.submit(func, app_args=args, executors=[executor], app_kwargs=kwargs, func_name=func.__name__)

    def providers(self, executor: str) -> list[Staging]:
        """The staging providers of the executor labelled ``executor``, in the order they are asked."""
        # an unknown label fails its task at launch, with an error naming the labels there are
        storage_access = getattr(self.dfk.executors.get(executor), "storage_access", None)
        return default_staging if storage_access is None else list(storage_access)

    def _provider(self, executor: str, file: File, direction: str) -> Staging:
        providers = self.providers(executor)
        for provider in providers:
            claims = provider.can_stage_in(file) if direction == "in" else provider.can_stage_out(file)
            if claims:
                logger.debug("%r stages %s %r for executor %s", provider, direction, file.url, executor)
                return provider
        raise NoStagingProvider(executor, file, direction, providers)

    # --- one task -------------------------------------------------------------------------------
    def stage_task(self, task: TaskRecord) -> None:
        """Stage the files of ``task`` in and out: replace its file arguments by the copies (or
        DataFutures) the task should get, its function by any wrapper the providers give, and set
        its AppFuture's output DataFutures. Raises when a file cannot be staged."""
        kwargs = task.kwargs
        func = task.func
        executor = task.executor
        inhibit = bool(kwargs.get(STAGING_INHIBIT))
        if not inhibit:
            args = list(task.args)
            for i, value in enumerate(args):
                args[i], func = self.optionally_stage_in(value, func, executor)
            task.args = tuple(args)
            for name, value in kwargs.items():
                if name not in ("stdout", "stderr", "inputs", "outputs"):
                    kwargs[name], func = self.optionally_stage_in(value, func, executor)
            if kwargs.get("inputs"):
                inputs = list(kwargs["inputs"])
                for i, value in enumerate(inputs):
                    inputs[i], func = self.optionally_stage_in(value, func, executor)
                kwargs["inputs"] = inputs
        app_fu = task.app_fu
        outputs = [f if isinstance(f, File) else File(str(f)) for f in kwargs.get("outputs") or ()]
        app_fu._outputs = []
        for i, file in enumerate(outputs):
            func, outputs[i], data_future = self._stage_out_one(file, func, task, inhibit)
            app_fu._outputs.append(data_future)
        if "outputs" in kwargs:
            kwargs["outputs"] = outputs
        for stream in ("stdout", "stderr"):
            spec = kwargs.get(stream)
            if isinstance(spec, File):
                func, kwargs[stream], data_future = self._stage_out_one(spec, func, task, inhibit)
                setattr(app_fu, f"_{stream}_future", data_future)
        task.func = func

    def _stage_out_one(self, file: File, func: Callable, task: TaskRecord,
                       inhibit: bool) -> tuple[Callable, File, DataFuture]:
        app_fu = task.app_fu
        if inhibit:
            return func, file, DataFuture(app_fu, file, tid=task.id)
        copy = file.cleancopy()
        done = self.stage_out(copy, task.executor, app_fu)
        data_future = DataFuture(app_fu if done is None else done, file, tid=task.id)
        return self.replace_task_stage_out(copy, func, task.executor), copy, data_future

    # --- Parsl's per-file calls -----------------------------------------------------------------
    def optionally_stage_in(self, input: Any, func: Callable, executor: str) -> tuple[Any, Callable]:
        """``(what the task gets instead of input, the function to run)`` for one argument: a
        File or DataFuture is staged in (on a copy); anything else is returned as it is."""
        if isinstance(input, DataFuture):
            file = input.file_obj.cleancopy()
            # completes when the original does, but with the copy that staging may change
            input = DataFuture(input, file, tid=input.tid)
        elif isinstance(input, File):
            file = input = input.cleancopy()
        else:
            return input, func
        provider = self._provider(executor, file, "in")
        parent = input if isinstance(input, DataFuture) else None
        staged = provider.stage_in(self, executor, file, parent_fut=parent)
        replacement = provider.replace_task(self, executor, file, func)
        return (input if staged is None else staged), (func if replacement is None else replacement)

    def stage_in(self, file: File, input: Any, executor: str) -> Any:
        """Start staging ``file`` (a copy of ``input``'s file) in; return what the task gets."""
        if not isinstance(input, (File, DataFuture)):
            raise TypeError(f"stage_in expects a File or DataFuture, not {type(input).__name__}")
        parent = input if isinstance(input, DataFuture) else None
        staged = self._provider(executor, file, "in").stage_in(self, executor, file, parent_fut=parent)
        return input if staged is None else staged

    def replace_task(self, file: File, func: Callable, executor: str) -> Callable:
        """``func``, or the stage-in wrapper around it of the provider that claims ``file``."""
        replacement = self._provider(executor, file, "in").replace_task(self, executor, file, func)
        return func if replacement is None else replacement

    def stage_out(self, file: File, executor: str, app_fu: Future) -> Future | None:
        """Arrange stage out of ``file`` after ``app_fu``; the future to wait for, or None."""
        return self._provider(executor, file, "out").stage_out(self, executor, file, app_fu)

    def replace_task_stage_out(self, file: File, func: Callable, executor: str) -> Callable:
        """``func``, or the stage-out wrapper around it of the provider that claims ``file``."""
        replacement = self._provider(executor, file, "out").replace_task_stage_out(self, executor, file, func)
        return func if replacement is None else replacement
