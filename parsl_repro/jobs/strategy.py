"""The scaling strategy: how many blocks each executor should have, decided on every poll.

An executor's capacity is counted in task slots::

    active_blocks = running + pending blocks
    active_slots  = active_blocks * workers_per_node * nodes_per_block
    active_tasks  = executor.outstanding()          (waiting for a worker, or running)

``parallelism`` (the provider's, 0..1) is the number of slots wanted per active task: 1 asks for
a slot for every task, 0.5 lets two tasks queue per slot, 0 asks for as few blocks as will do.
Every strategy first launches the provider's ``init_blocks``, once. Then:

``'none'`` (or None)
    nothing more.
``'simple'``
    no active tasks: once the executor has been idle for ``max_idletime`` seconds, scale in
    down to ``min_blocks``;
    ``active_slots / active_tasks < parallelism``: scale out by
    ``ceil((active_tasks * parallelism - active_slots) / slots per block)`` blocks, never beyond
    ``max_blocks``;
    tasks but no slots (parallelism 0): scale out by one block, if below ``max_blocks``;
    otherwise: nothing.
``'htex_auto_scale'``
    as ``'simple'``, and also, when there are more slots than tasks, scale in
    ``floor((active_slots - active_tasks * parallelism) / slots per block)`` blocks, never
    below ``min_blocks``, choosing only blocks that run no task and have been idle longer than
    ``max_idletime`` (so possibly none). It needs the executor's per-block activity
    (``BlockProviderExecutor.block_activity``); for executors without it this case does nothing.

Executors in a bad state are left alone.
"""
from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from parsl_repro.jobs.states import JobState

if TYPE_CHECKING:
    from parsl_repro.executors.status_handling import BlockProviderExecutor

logger = logging.getLogger(__name__)


@dataclass
class ExecutorState:
    """What the strategy remembers about one executor between polls."""
    idle_since: float | None = None
    """When the executor was first seen with no active tasks (None while it has some)."""
    first: bool = True
    """Whether the executor has not been strategized yet (its init_blocks are still to launch)."""


class Strategy:
    """Applies one scaling strategy (``'none'``, ``'simple'`` or ``'htex_auto_scale'``) to the
    executors added to it; ``strategize(executors)`` runs one round of it."""

    def __init__(self, *, strategy: str | None, max_idletime: float) -> None:
        strategies: dict[str | None, Callable[[list[BlockProviderExecutor]], None]] = {
            None: self._strategy_init_only,
            "none": self._strategy_init_only,
            "simple": self._strategy_simple,
            "htex_auto_scale": self._strategy_htex_auto_scale,
        }
        if strategy not in strategies:
            raise ValueError(f"Unknown scaling strategy {strategy!r}: use 'none', 'simple' or 'htex_auto_scale'")
        if strategy is None:
            warnings.warn("strategy=None is deprecated; use strategy='none'", DeprecationWarning, stacklevel=2)
        self.strategy = strategy
        self.max_idletime = max_idletime
        self.executors: dict[str, ExecutorState] = {}
        self.strategize = strategies[strategy]
        logger.debug("Scaling strategy: %s", strategy)

    def add_executors(self, executors: Sequence[Any]) -> None:
        """Start remembering ``executors`` (their init_blocks launch on the next round)."""
        for executor in executors:
            self.executors[executor.label] = ExecutorState()

    def _strategy_init_only(self, executors: list[BlockProviderExecutor]) -> None:
        for executor in executors:
            self._launch_init_blocks(executor)

    def _strategy_simple(self, executors: list[BlockProviderExecutor]) -> None:
        self._general_strategy(executors, scale_in_idle_blocks=False)

    def _strategy_htex_auto_scale(self, executors: list[BlockProviderExecutor]) -> None:
        self._general_strategy(executors, scale_in_idle_blocks=True)

    def _launch_init_blocks(self, executor: BlockProviderExecutor) -> None:
        state = self.executors[executor.label]
        if state.first:
            state.first = False
            provider = _provider_of(executor)
            logger.debug("[Scaling executor %s] Scaling out %d initial blocks", executor.label, provider.init_blocks)
            executor.scale_out_facade(provider.init_blocks)

    def _general_strategy(self, executors: list[BlockProviderExecutor], *, scale_in_idle_blocks: bool) -> None:
        for executor in executors:
            try:
                self._strategize_one(executor, scale_in_idle_blocks)
            except Exception:
                # one executor's broken provider must not stop the others from scaling
                logger.exception("[Scaling executor %s] Scaling failed this round", executor.label)

    def _strategize_one(self, executor: BlockProviderExecutor, scale_in_idle_blocks: bool) -> None:
        prefix = f"[Scaling executor {executor.label}]"
        if executor.bad_state_is_set:
            logger.info("%s Not scaling: the executor is in a bad state", prefix)
            return
        self._launch_init_blocks(executor)
        provider = _provider_of(executor)
        state = self.executors[executor.label]

        active_tasks = _outstanding(executor)
        status = executor.status_facade
        running = sum(1 for s in status.values() if s.state == JobState.RUNNING)
        pending = sum(1 for s in status.values() if s.state == JobState.PENDING)
        active_blocks = running + pending
        slots_per_block = executor.workers_per_node * provider.nodes_per_block
        active_slots = active_blocks * slots_per_block
        min_blocks, max_blocks, parallelism = provider.min_blocks, provider.max_blocks, provider.parallelism
        logger.debug("%s %d active tasks, %d active slots, %d/%d running/pending blocks", prefix,
                     active_tasks, active_slots, running, pending)

        if active_tasks > 0:
            state.idle_since = None

        if active_tasks == 0:
            if active_blocks <= min_blocks:
                return
            now = time.time()
            if state.idle_since is None:
                logger.debug("%s Idle with %d blocks; scaling in after %.1f s more", prefix, active_blocks,
                             self.max_idletime)
                state.idle_since = now
            idle_for = now - state.idle_since
            # '>=' so that max_idletime=0 scales in on the first idle round, whatever the clock's resolution
            if idle_for >= self.max_idletime:
                logger.debug("%s Idle for %.1f s; scaling in to %d blocks", prefix, idle_for, min_blocks)
                executor.scale_in_facade(active_blocks - min_blocks)
        elif active_slots / active_tasks < parallelism:
            if active_blocks >= max_blocks:
                logger.debug("%s Overloaded, but already at max_blocks %d", prefix, max_blocks)
                return
            excess_slots = math.ceil(active_tasks * parallelism - active_slots)
            excess_blocks = min(math.ceil(excess_slots / slots_per_block), max_blocks - active_blocks)
            logger.debug("%s Overloaded; requesting %d more blocks", prefix, excess_blocks)
            executor.scale_out_facade(excess_blocks)
        elif active_slots == 0:
            # parallelism 0 with work waiting: the rule above asks for nothing, yet one block is needed
            if active_blocks < max_blocks:
                logger.debug("%s Tasks but no slots; requesting one block", prefix)
                executor.scale_out_facade(1)
        elif active_slots > active_tasks and scale_in_idle_blocks:
            if active_blocks <= min_blocks:
                return
            if executor.block_activity() is None:
                logger.error("%s htex_auto_scale cannot scale in %s: it does not report which blocks are idle",
                             prefix, type(executor).__name__)
                return
            excess_slots = math.floor(active_slots - active_tasks * parallelism)
            excess_blocks = min(math.floor(excess_slots / slots_per_block), active_blocks - min_blocks)
            if excess_blocks > 0:
                logger.debug("%s Underloaded; scaling in up to %d blocks idle for over %.1f s", prefix,
                             excess_blocks, self.max_idletime)
                executor.scale_in_facade(excess_blocks, max_idletime=self.max_idletime)


def _provider_of(executor: BlockProviderExecutor) -> Any:
    provider = executor.provider
    if provider is None:
        raise ValueError(f"executor {executor.label} has no provider; only executors with one can be scaled")
    return provider


def _outstanding(executor: BlockProviderExecutor) -> int:
    # Parsl's executors define outstanding() as a method; older ones as a property
    outstanding = executor.outstanding
    return int(outstanding() if callable(outstanding) else outstanding)
