"""SIGINT and SIGTERM end a run in order: recorded as ``interrupted``, its unfinished tasks as
``cancelled``, its blocks released, instead of a dead process whose run a later run must mark
``killed``.

Who calls what, and when:
  * the kernel calls ``install`` when it starts; only from the main thread (Python runs signal
    handlers there), and only for a signal whose handler is still Python's default (a ctrl-C
    raising ``KeyboardInterrupt``, SIGTERM ending the process), so a handler of the user's own,
    or a notebook's, is never replaced;
  * on the signal, ``on_interrupt(name)`` tells the kernel, then the main thread gets what
    Python's default would have given it in spirit: ``KeyboardInterrupt`` for SIGINT, and for
    SIGTERM ``SystemExit(128 + 15)`` (exit status 143, as a shell reports a process that
    SIGTERM ended), so ``with`` blocks, ``finally`` clauses and the kernel's cleanup run;
  * a signal that arrives while the kernel is already cleaning up is noted and ignored once (the
    cleanup is what it asks for); a second one acts at once, with Python's default;
  * the kernel calls ``restore`` at the end of its cleanup, putting back the default handlers.
"""
from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

_DEFAULTS: dict[signal.Signals, Any] = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


class InterruptHandlers:
    """The kernel's SIGINT and SIGTERM handlers (see the module docstring)."""

    def __init__(self, on_interrupt: Callable[[str], None], cleaning_up: Callable[[], bool]) -> None:
        self.on_interrupt = on_interrupt
        self.cleaning_up = cleaning_up
        self._installed: list[signal.Signals] = []
        self._ignored_during_cleanup = False

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for number, default in _DEFAULTS.items():
            if signal.getsignal(number) is default:
                signal.signal(number, self._handle)
                self._installed.append(number)

    def restore(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # cleanup from another thread: leave them; they only note a signal
        for number in self._installed:
            if signal.getsignal(number) == self._handle:
                signal.signal(number, _DEFAULTS[number])
        self._installed.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.cleaning_up() and not self._ignored_during_cleanup:
            self._ignored_during_cleanup = True
            logger.warning("%s received while the run is being cleaned up: finishing the cleanup (a second %s "
                           "stops at once)", name, name)
            return
        if not self.cleaning_up():
            logger.warning("%s received: the run is interrupted; its unfinished tasks will be cancelled", name)
            self.on_interrupt(name)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)
