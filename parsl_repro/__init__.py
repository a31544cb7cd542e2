"""parsl_repro: Parsl's API for parallel workflows in Python, with every run recorded as provenance.

    import parsl_repro as parsl
    from parsl_repro import python_app

    parsl.load()              # default Config(): a ThreadPoolExecutor

    @python_app
    def hello():
        return "Hello World!"

    print(hello().result())
"""
import logging

from parsl_repro.app.app import App, bash_app, join_app, python_app
from parsl_repro.config import Config
from parsl_repro.data_provider.files import File
from parsl_repro.dataflow.dflow import DataFlowKernel, DataFlowKernelLoader
from parsl_repro.executors import ThreadPoolExecutor
from parsl_repro.log_utils import set_file_logger, set_stream_logger
from parsl_repro.monitoring import MonitoringHub
from parsl_repro.version import VERSION

__version__ = VERSION

AUTO_LOGNAME = -1
"""Give as ``stdout=`` or ``stderr=`` to have the kernel choose a file under the run directory."""

__all__ = [
    "App", "python_app", "bash_app", "join_app",
    "Config", "DataFlowKernel", "File", "ThreadPoolExecutor", "MonitoringHub",
    "set_stream_logger", "set_file_logger", "AUTO_LOGNAME",
    "load", "clear", "dfk", "wait_for_current_tasks",
]

load = DataFlowKernelLoader.load
clear = DataFlowKernelLoader.clear
dfk = DataFlowKernelLoader.dfk
wait_for_current_tasks = DataFlowKernelLoader.wait_for_current_tasks

logging.getLogger("parsl_repro").addHandler(logging.NullHandler())
