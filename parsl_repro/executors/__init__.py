"""Executors: where tasks run."""
from typing import Any

from parsl_repro.executors.base import ParslExecutor
from parsl_repro.executors.threads import ThreadPoolExecutor

__all__ = ["ParslExecutor", "ThreadPoolExecutor", "HighThroughputExecutor", "MPIExecutor"]


def __getattr__(name: str) -> Any:
    # imported on first use: it pulls in zmq, the providers and the block machinery
    if name == "HighThroughputExecutor":
        from parsl_repro.executors.high_throughput.executor import HighThroughputExecutor
        return HighThroughputExecutor
    if name == "MPIExecutor":
        from parsl_repro.executors.high_throughput.mpi_executor import MPIExecutor
        return MPIExecutor
    raise AttributeError(f"module 'parsl_repro.executors' has no attribute {name!r}")
