"""Rarer garbage collections while a DataFlowKernel is loaded.

A workflow keeps every task's record and future alive until it is done with them, so the heap
holds hundreds of thousands of young container objects. With CPython's default thresholds
(700, 10, 10) the collector then spends a third of a memo replay's time walking them. While at
least one kernel is loaded, thresholds still at the interpreter's defaults become
``KERNEL_THRESHOLDS``; the last kernel's cleanup puts the defaults back. Thresholds a user has set
are left alone. Cycles are still collected, only less often: memory stays the same in our
benchmarks (``bench/store.py``).
"""
from __future__ import annotations

import gc
import logging
import threading

logger = logging.getLogger(__name__)

PYTHON_DEFAULTS = (700, 10, 10)
KERNEL_THRESHOLDS = (20_000, 50, 10)

_lock = threading.Lock()
_holders = 0
_changed = False


def acquire() -> None:
    """A kernel starts: raise the thresholds if they are the interpreter's defaults."""
    global _holders, _changed
    with _lock:
        _holders += 1
        if _holders == 1 and gc.get_threshold() == PYTHON_DEFAULTS:
            gc.set_threshold(*KERNEL_THRESHOLDS)
            gc.freeze()
            _changed = True
            logger.debug("Garbage collection thresholds raised to %s while the kernel runs", KERNEL_THRESHOLDS)


def release() -> None:
    """A kernel is cleaned up: the last one restores the defaults, unless someone changed them since."""
    global _holders, _changed
    with _lock:
        _holders = max(0, _holders - 1)
        if _holders == 0 and _changed:
            if gc.get_threshold() == KERNEL_THRESHOLDS:
                gc.set_threshold(*PYTHON_DEFAULTS)
            gc.unfreeze()
            _changed = False
