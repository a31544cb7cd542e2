"""``HTEXRadio`` at Parsl's path: monitoring messages from tasks on a HighThroughputExecutor
travel back on the executor's own result channel, so the radio starts nothing and opens no port.
The classes live in ``parsl_repro.executors.high_throughput.radio`` (the executor makes its
default radio, and executors sit below the monitoring package).
"""
from parsl_repro.executors.high_throughput.radio import (
    HTEXRadio,
    HTEXRadioReceiver,
    HTEXRadioSender,
    set_result_channel,
)

__all__ = ["HTEXRadio", "HTEXRadioReceiver", "HTEXRadioSender", "set_result_channel"]
