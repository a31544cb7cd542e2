"""The provider whose blocks are Torque jobs."""
from parsl_repro.providers.torque.torque import TorqueProvider

__all__ = ["TorqueProvider"]
