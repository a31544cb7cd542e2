"""Task states, at Parsl's module path: ``States``, ``FINAL_STATES``, ``FINAL_FAILURE_STATES`` and
the ``TRANSITIONS`` table, stated once in ``parsl_repro.task_states`` (below every layer, so the
store and the command line read the same names)."""
from parsl_repro.task_states import FINAL_FAILURE_STATES, FINAL_STATES, TRANSITIONS, States

__all__ = ["FINAL_FAILURE_STATES", "FINAL_STATES", "TRANSITIONS", "States"]
