"""Reproduce and explain recorded runs: ``replay`` (run a recorded run again from the record and
verify it). It sits above the kernel and the app layer, whose objects it builds."""
from parsl_repro.reproduce.replay import ReplayError, ReplayReport, TaskVerdict, replay

__all__ = ["ReplayError", "ReplayReport", "TaskVerdict", "replay"]
