"""A worker process of a worker pool: it runs the tasks its manager sends, one at a time.

The manager forks each worker (``worker_loop``) with one end of a pipe; a task arrives as its
8-byte id then its payload, and the worker answers with the id, one byte (``b"\\0"``, or
``b"\\1"`` followed by a ``sampling.SelfSample`` taken as the task ended) and the serialized
result or ``RemoteExceptionWrapper``. The pipe closing ends the worker, which is also how a
worker notices that its manager died. A task raising ``SystemExit`` or another
``BaseException`` that is not an ``Exception`` ends its worker (as in Parsl); the manager then
reports the task's ``WorkerLost`` and starts another worker.
"""
from __future__ import annotations

import importlib
import logging
import os
import pathlib
import signal
import sys
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from parsl_repro.executors.errors import RemoteExceptionWrapper
from parsl_repro.executors.high_throughput.protocol import CONTEXT_PAYLOAD, unpack_context_payload
from parsl_repro.executors.high_throughput.sampling import SelfSample
from parsl_repro.logconfigs.base import LogConfig, oneshot_initialize_logging, release_inherited_logging

logger = logging.getLogger(__name__)


class WorkerProcess:
    """The manager's handle on one worker: its process, its end of the pipe, and the task it
    runs (None when idle) with when it started and the resource samples taken meanwhile."""

    __slots__ = ("rank", "process", "conn", "task", "started", "samples", "next_sample")

    def __init__(self, rank: int, process: BaseProcess, conn: Connection) -> None:
        self.rank = rank
        self.process = process
        self.conn = conn
        self.task: bytes | None = None
        self.started = 0.0
        self.samples: list[list[Any]] = []
        self.next_sample = 0.0


def worker_loop(rank: int, conn: Connection, pool_id: str, count: int, block_id: str,
                cpus: list[int] | None, accelerator: str | None, siblings: list[Connection],
                log_setup: tuple[LogConfig, pathlib.Path] | None = None, sample_interval: float = 0.0) -> None:
    """One worker process: run the tasks the manager sends, one at a time, until the pipe closes.
    With ``log_setup`` (the run's ``LogConfig`` and the pool's log directory) it logs as
    ``worker_<rank>``; without, into the manager's log, whose handler it inherited. When
    ``sample_interval`` > 0 and that long has passed since this worker's last sample (always for
    its first task), the result carries a ``SelfSample`` taken as the task ended."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the manager decides when workers stop
    if log_setup is not None:
        release_inherited_logging()  # the manager's handlers and references came with the fork
        oneshot_initialize_logging(log_config=log_setup[0], log_dir=log_setup[1], log_name=f"worker_{rank}")
    logger.info("Worker %d of pool %s started (pid %d)", rank, pool_id, os.getpid())
    for inherited in siblings:  # the manager's ends of other workers' pipes, inherited by fork
        inherited.close()
    os.environ.update(PARSL_WORKER_RANK=str(rank), PARSL_WORKER_POOL_ID=pool_id, PARSL_WORKER_COUNT=str(count),
                      PARSL_WORKER_BLOCK_ID=block_id)
    if cpus:
        os.sched_setaffinity(0, cpus)
        os.environ["PARSL_CPU_AFFINITY"] = ",".join(map(str, cpus))
    if accelerator is not None:
        for name in ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK"):
            os.environ[name] = accelerator
        os.environ["PARSL_WORKER_ACCELERATOR"] = accelerator
    # what runs tasks is loaded here, in the worker, not in the manager that forks it (which
    # never runs one); a worker's first resource sample includes that start-up, as in Parsl
    from parsl_repro.executors.execute_task import execute_task_named
    from parsl_repro.serialize import serialize
    from parsl_repro.serialize.facade import serialize_result

    sampler = SelfSample() if sample_interval > 0 else None
    next_sample = 0.0
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        task_id, payload = message[:8], message[8:]
        # SystemExit and other BaseExceptions end this worker: the manager reports WorkerLost
        try:
            if payload.startswith(CONTEXT_PAYLOAD):
                out = serialize_result(*execute_with_context(payload))
            else:
                out = serialize_result(*execute_task_named(payload))
        except Exception:  # the app's own failure, or a result that cannot travel
            try:
                out = serialize(RemoteExceptionWrapper(*sys.exc_info()))
            except Exception as e:  # an exception that cannot be serialized either
                out = serialize(RemoteExceptionWrapper(RuntimeError, RuntimeError(
                    f"the task failed and its exception could not be sent back: {type(e).__name__}: {e}"), None))
        if sampler is not None and time.monotonic() >= next_sample:
            next_sample = time.monotonic() + sample_interval
            conn.send_bytes(task_id + b"\1" + sampler.take() + out)
        else:
            conn.send_bytes(task_id + b"\0" + out)


def execute_with_context(payload: bytes) -> tuple[str, Any]:
    """Run a task sent by ``submit_payload``: ``context["task_executor"]["f"]`` (a dotted import
    path) called as ``f(buffer, *a, **k)``, else the buffer as an apply message; with
    ``context["resource_spec"]`` set as ``PARSL_<KEY>`` environment variables meanwhile.
    Returns (the name of the function that ran, what it returned), as ``execute_task_named``."""
    from parsl_repro.executors.execute_task import _resource_environment, execute_task_named  # see worker_loop
    from parsl_repro.serialize import deserialize

    packed_context, buffer = unpack_context_payload(payload)
    context = deserialize(packed_context)
    task_executor = context.get("task_executor")
    if task_executor:
        module_name, _, name = task_executor["f"].rpartition(".")
        function = getattr(importlib.import_module(module_name), name)

        def run() -> tuple[str, Any]:
            return task_executor["f"], function(buffer, *task_executor.get("a", ()), **task_executor.get("k", {}))
    else:
        def run() -> tuple[str, Any]:
            return execute_task_named(buffer)
    resource_specification = context.get("resource_spec")
    if not resource_specification:
        return run()
    with _resource_environment(resource_specification):
        return run()
