"""parsl_repro: Parsl's API for parallel workflows in Python, with every run recorded as provenance.

    import parsl_repro as parsl
    from parsl_repro import python_app

    parsl.load()              # default Config(): a ThreadPoolExecutor

    @python_app
    def hello():
        return "Hello World!"

    print(hello().result())
"""
import importlib
import logging
from typing import Any

from parsl_repro.version import VERSION

__version__ = VERSION

AUTO_LOGNAME = -1
"""Give as ``stdout=`` or ``stderr=`` to have the kernel choose a file under the run directory."""

# Imported on first use (PEP 562), so that processes needing one corner of the package (the
# provenance writer, a worker) do not pay for loading the kernel, the apps and typeguard.
_LAZY = {
    "App": "parsl_repro.app.app", "python_app": "parsl_repro.app.app", "bash_app": "parsl_repro.app.app",
    "join_app": "parsl_repro.app.app", "Config": "parsl_repro.config", "File": "parsl_repro.data_provider.files",
    "DataFlowKernel": "parsl_repro.dataflow.dflow", "DataFlowKernelLoader": "parsl_repro.dataflow.dflow",
    "ThreadPoolExecutor": "parsl_repro.executors", "set_stream_logger": "parsl_repro.log_utils",
    "set_file_logger": "parsl_repro.log_utils", "MonitoringHub": "parsl_repro.monitoring",
    "HighThroughputExecutor": "parsl_repro.executors",
}
_LOADER_METHODS = ("load", "clear", "dfk", "wait_for_current_tasks")

__all__ = [
    "App", "python_app", "bash_app", "join_app",
    "Config", "DataFlowKernel", "File", "ThreadPoolExecutor", "HighThroughputExecutor", "MonitoringHub",
    "set_stream_logger", "set_file_logger", "AUTO_LOGNAME",
    "load", "clear", "dfk", "wait_for_current_tasks",
]


def __getattr__(name: str) -> Any:
    if name in _LOADER_METHODS:
        value = getattr(__getattr__("DataFlowKernelLoader"), name)
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'parsl_repro' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_LOADER_METHODS))


logging.getLogger("parsl_repro").addHandler(logging.NullHandler())
