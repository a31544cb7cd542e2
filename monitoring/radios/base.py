"""The radio contract at Parsl's path; it lives in ``parsl_repro.radios``, below the executors that make radios."""
from parsl_repro.radios import MonitoringRadioReceiver, MonitoringRadioSender, RadioConfig

__all__ = ["MonitoringRadioReceiver", "MonitoringRadioSender", "RadioConfig"]
