"""Executors: where tasks run."""
from parsl_repro.executors.base import ParslExecutor
from parsl_repro.executors.threads import ThreadPoolExecutor

__all__ = ["ParslExecutor", "ThreadPoolExecutor"]
