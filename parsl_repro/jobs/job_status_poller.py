"""``JobStatusPoller``: the timer that keeps block executors' status fresh and runs the strategy.

Every ``strategy_period`` seconds, on its own thread, for each block executor added: refresh
the block status (``poll_facade``; the provider is asked at most every
``status_polling_interval``), let the block error handler judge it (``handle_errors``), then run
one round of the scaling strategy over all of them. ``close()`` stops the timer and cancels
every block of the executors that are not in a bad state.

The kernel owns one poller: it creates it before adding executors, passes each started
executor to ``add_executors``, and calls ``close()`` at cleanup before shutting executors down.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from parsl_repro.executors.base import ParslExecutor
from parsl_repro.executors.status_handling import BlockProviderExecutor
from parsl_repro.jobs.strategy import Strategy
from parsl_repro.utils import Timer

logger = logging.getLogger(__name__)


class JobStatusPoller(Timer):
    """Polls block executors and scales them with one ``Strategy``.

    ``strategy`` is ``'none'``, ``'simple'`` or ``'htex_auto_scale'``; ``max_idletime`` (seconds)
    is how long an executor may sit idle before its blocks are scaled in; ``strategy_period``
    (seconds) is the timer's period. ``monitoring`` is accepted for older callers and unused:
    block states leave through each executor's event sink.
    """

    def __init__(self, *, strategy: str | None = "simple", max_idletime: float = 120.0,
                 strategy_period: float = 5, monitoring: Any = None) -> None:
        # only executors with a provider (status_polling_interval > 0) are kept here
        self._executors: list[BlockProviderExecutor] = []
        self._strategy = Strategy(strategy=strategy, max_idletime=max_idletime)
        self.monitoring = monitoring
        self._closed = False
        # one round at a time: the timer's, and the first round of executors being added
        self._round_lock = threading.Lock()
        super().__init__(self.poll, interval=strategy_period, name="JobStatusPoller")

    @property
    def executors(self) -> list[BlockProviderExecutor]:
        """The executors being polled and scaled."""
        return list(self._executors)

    def poll(self) -> None:
        """One round: refresh status and handle errors for each executor, then scale them all."""
        with self._round_lock:
            if self._closed:
                return
            executors = list(self._executors)
            for executor in executors:
                try:
                    executor.poll_facade()
                    executor.handle_errors(executor.status_facade)
                except Exception:
                    # a provider that cannot answer this time must not stop the other executors
                    logger.exception("Polling the blocks of executor %s failed", executor.label)
            self._strategy.strategize(executors)

    def add_executors(self, executors: Sequence[ParslExecutor]) -> None:
        """Poll and scale those of ``executors`` that are block executors with a provider; others
        are ignored. A first strategy round for them runs now, in the caller's thread, so their
        init_blocks are submitted before this returns rather than a strategy period later."""
        block_executors = [e for e in executors
                           if isinstance(e, BlockProviderExecutor) and e.status_polling_interval > 0]
        if not block_executors:
            return
        with self._round_lock:
            if self._closed:
                raise RuntimeError("JobStatusPoller is closed; it cannot take more executors")
            for executor in block_executors:
                logger.debug("Polling executor %s every %s s", executor.label, self.interval)
            self._strategy.add_executors(block_executors)
            self._executors.extend(block_executors)
            self._strategy.strategize(block_executors)

    def close(self, timeout: float | None = None) -> None:
        """Stop polling, then scale in every block of each executor that is not in a bad state
        (a bad executor's blocks are left for its own shutdown). Safe to call more than once."""
        super().close(timeout)
        with self._round_lock:
            if self._closed:
                return
            self._closed = True
            for executor in self._executors:
                if executor.bad_state_is_set:
                    logger.warning("Not scaling in executor %s: it is in a bad state", executor.label)
                    continue
                logger.info("Scaling in all blocks of executor %s", executor.label)
                try:
                    executor.scale_in_facade(len(executor.status_facade))
                except Exception:
                    logger.exception("Scaling in the blocks of executor %s failed", executor.label)
