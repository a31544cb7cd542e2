"""Bash apps: the function returns a command line, which runs in ``/bin/bash`` where the task is sent."""
from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
from collections.abc import Callable, Sequence
from functools import partial, update_wrapper
from inspect import Parameter, signature
from typing import Any, Literal

from parsl_repro.app.base import AppBase
from parsl_repro.app.errors import (
    AppBadFormatting,
    AppException,
    AppTimeout,
    BadStdStreamFile,
    BashAppNoReturn,
    BashExitFailure,
    MissingOutputs,
)
from parsl_repro.data_provider.files import File
from parsl_repro.dataflow.command import COMMAND_ATTRIBUTE, CommandRan
from parsl_repro.dataflow.futures import AppFuture

logger = logging.getLogger(__name__)


def _open_stream(name: str, spec: Any) -> Any:
    from parsl_repro.utils import get_std_fname_mode

    if spec is None:
        return None, None
    if isinstance(spec, File):
        path, mode = spec.filepath, "w"
    else:
        path, mode = get_std_fname_mode(name, spec)
    try:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        return open(path, mode), path
    except Exception as e:
        raise BadStdStreamFile(f"cannot open {name} file {path!r} with mode {mode!r}: {e}") from e


def remote_side_bash_executor(func: Callable, *args: Any, **kwargs: Any) -> CommandRan:
    """Build the command line with ``func`` and run it in bash, with the call's streams and walltime.

    Raises ``BashAppNoReturn`` when ``func`` returns no string, ``BashExitFailure`` (exit code, and
    the ``stderr=`` file, or else the file this process's own stderr goes to) when the command
    fails, ``AppTimeout`` (after killing the command's process group) when it outlives
    ``walltime``, and ``MissingOutputs`` when a declared output is absent. The exit status comes
    back as a ``CommandRan`` (an ``int``) and an exception with the attribute ``parsl_command``, so
    the kernel can record the command line; the app's future gets the plain ``int``.
    """
    name = getattr(func, "__name__", "bash_app")
    try:
        command = func(*args, **kwargs)
    except (AttributeError, IndexError, KeyError) as e:
        raise AppBadFormatting(f"App formatting failed for app '{name}' with {type(e).__name__}: {e}") from e
    if command is None:
        raise BashAppNoReturn(f"Bash app '{name}' did not return a value, or returned None: "
                              f"it must return the command line to run, as a str")
    if not isinstance(command, str):
        raise BashAppNoReturn(f"Bash app '{name}' returned a {type(command).__name__} ({command!r}), "
                              f"but must return the command line to run, as a str")

    try:
        returncode = _run(name, command, kwargs)
    except BaseException as e:
        setattr(e, COMMAND_ATTRIBUTE, command)  # the kernel records what ran, failed or not
        raise
    return CommandRan(returncode, command)


def _run(name: str, command: str, kwargs: dict[str, Any]) -> int:
    stdout, _ = _open_stream("stdout", kwargs.get("stdout"))
    stderr, stderr_path = _open_stream("stderr", kwargs.get("stderr"))
    walltime = kwargs.get("walltime")
    try:
        if stderr is not None:
            print(f"--> executable follows <--\n{command}\n--> end executable <--", file=stderr, flush=True)
        try:
            proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, shell=True, executable="/bin/bash",
                                    start_new_session=True)
        except Exception as e:
            raise AppException(f"App {name} could not start its command: {e}") from e
        try:
            returncode = proc.wait(timeout=walltime)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise AppTimeout(f"App {name} exceeded walltime: {walltime} seconds") from None
    finally:
        for stream in (stdout, stderr):
            if stream is not None:
                stream.close()
    if returncode != 0:
        raise BashExitFailure(name, returncode, stderr_path,
                              inherited_stderr=None if stderr is not None else _inherited_stderr())
    missing = [f for f in kwargs.get("outputs") or [] if not os.path.exists(getattr(f, "filepath", f))]
    if missing:
        raise MissingOutputs(f"Missing outputs from app {name}", missing)
    return returncode


def _inherited_stderr() -> str | None:
    """The absolute path of the regular file this process's fd 2 writes to (where a command given no
    ``stderr=`` file wrote its errors), or None for a terminal, a pipe, or a file that cannot be named.

    On a HighThroughputExecutor worker this is its block's ``submit_scripts/*.err`` file (the provider
    redirects the pool's streams there). The name comes from ``/proc/self/fd/2`` (Linux), and is
    checked to still be that same file (not deleted or replaced).
    """
    try:
        opened = os.fstat(2)
        if not stat.S_ISREG(opened.st_mode):
            return None
        path = os.readlink("/proc/self/fd/2")  # Linux; elsewhere OSError, and no name
        named = os.stat(path)
    except OSError:
        return None
    if not os.path.isabs(path) or (named.st_dev, named.st_ino) != (opened.st_dev, opened.st_ino):
        return None
    return path


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class BashApp(AppBase):
    """An app whose function returns a bash command line."""

    kind = "bash"

    def __init__(self, func: Callable, data_flow_kernel: Any = None, cache: bool = False,
                 executors: list[str] | Literal["all"] = "all",
                 ignore_for_cache: Sequence[str] | None = None, deterministic: bool = True) -> None:
        super().__init__(func, data_flow_kernel=data_flow_kernel, executors=executors, cache=cache,
                         ignore_for_cache=ignore_for_cache, deterministic=deterministic)
        # every default goes into the call's kwargs, so the command line can be formatted with them
        params = signature(func).parameters
        self.kwargs = {name: p.default for name, p in params.items() if p.default is not Parameter.empty}
        remote = partial(remote_side_bash_executor, func)
        update_wrapper(remote, func)
        self.wrapped_remote_function = remote

    def __call__(self, *args: Any, **kwargs: Any) -> AppFuture:
        return self._kernel().submit(self.wrapped_remote_function, app_args=args, executors=self.executors,
                                     cache=self.cache, ignore_for_cache=self.ignore_for_cache,
                                     app_kwargs={**self.kwargs, **kwargs}, app_kind="bash", func_name=self.__name__,
                                     deterministic=self.deterministic)
