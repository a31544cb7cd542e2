"""Log configurations: objects that say how a run and its helper processes write their logs.

Give one as ``Config(initialize_logging=...)``. The kernel initialises it for ``parsl.log``; the
provenance writer, and a HighThroughputExecutor's interchange, manager and workers, receive a
pickled copy and initialise it in their own process under their own log name.
"""
from parsl_repro.logconfigs.base import LogConfig, oneshot_initialize_logging, oneshot_uninitialize_logging
from parsl_repro.logconfigs.file import FileLogging
from parsl_repro.logconfigs.json import JSONLogging
from parsl_repro.logconfigs.noop import NoOpLogging, NoopLogging

__all__ = ["FileLogging", "JSONLogging", "LogConfig", "NoOpLogging", "NoopLogging",
           "oneshot_initialize_logging", "oneshot_uninitialize_logging"]
