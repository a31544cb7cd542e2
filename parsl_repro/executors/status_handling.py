"""``BlockProviderExecutor``: the base of executors whose workers run in blocks from a provider.

It keeps the book of blocks (block id <-> provider job id, the last known ``JobStatus`` of
each), starts and stops blocks through the provider, hands status to the block error handler,
and emits one ``BlockState`` event for every change of a block's state. It never touches the
store: the event sink is the only way out.

Who calls what, and when::

    kernel        start()                      once, after setting run_id, run_dir, event_sink
    poller timer  poll_facade()                every strategy period; asks the provider for
                                               status at most every status_polling_interval
                  handle_errors(status_facade) then runs block_error_handler
                  strategy: outstanding(), status_facade, workers_per_node,
                            scale_out_facade(n), scale_in_facade(n, max_idletime)
    poller close  scale_in_facade(all blocks)  at kernel cleanup, unless the executor is bad

A subclass implements ``submit``/``shutdown`` (``ParslExecutor``), ``_get_launch_command``
(the shell command that starts its workers in one block), ``outstanding`` and
``workers_per_node``. One that knows how busy each block is (a HighThroughputExecutor asking
its interchange) overrides ``block_activity``, which lets the ``htex_auto_scale`` strategy scale
in idle blocks only, and ``_hold_block`` to stop sending work to a block about to be cancelled.
"""
from __future__ import annotations

import logging
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, NamedTuple

from parsl_repro.events import BlockState
from parsl_repro.executors.base import ParslExecutor
from parsl_repro.executors.errors import BadStateException, ScalingFailed
from parsl_repro.jobs.error_handlers import noop_error_handler, simple_error_handler
from parsl_repro.jobs.states import TERMINAL_STATES, JobState, JobStatus
from parsl_repro.providers.base import ExecutionProvider
from parsl_repro.utils import AtomicIDCounter

logger = logging.getLogger(__name__)

BlockErrorHandler = Callable[["BlockProviderExecutor", dict[str, JobStatus]], None]


class BlockActivity(NamedTuple):
    """How busy one block is, as its executor sees it."""
    tasks: int
    """Tasks running in the block now."""
    idle: float
    """Seconds since the block last had work: the shortest idle time of its connected worker
    pools, ``inf`` when none is connected."""


class BlockProviderExecutor(ParslExecutor):
    """Base class of executors that scale in blocks obtained from an ``ExecutionProvider``.

    ``provider`` may be None for an executor that does not scale (then it is never polled).
    ``block_error_handler`` is True (``simple_error_handler``), False (``noop_error_handler``)
    or a callable ``handler(executor, {block_id: JobStatus})``.

    Block ids are the strings "0", "1", ... in launch order. A block that could not be launched
    gets a FAILED status with the provider's error as its message, so the error handler sees it
    like any other failed block.
    """

    launch_cmd: str | None = None
    """The command template that starts the executor's workers, where the executor has one."""

    def __init__(self, *, provider: ExecutionProvider | None, block_error_handler: bool | BlockErrorHandler) -> None:
        super().__init__()
        self._provider = provider
        self.block_error_handler: BlockErrorHandler
        if isinstance(block_error_handler, bool):
            self.block_error_handler = simple_error_handler if block_error_handler else noop_error_handler
        else:
            self.block_error_handler = block_error_handler

        self._executor_bad_state = threading.Event()
        self._executor_exception: BaseException | None = None
        self._block_id_counter = AtomicIDCounter()
        self._tasks: dict[Any, Future] = {}
        self._last_poll_time = 0.0

        # scale-out, polling and scale-in may run on the poller's and the kernel's threads
        self._blocks_lock = threading.RLock()
        self.blocks_to_job_id: dict[str, Any] = {}
        self.job_ids_to_block: dict[Any, str] = {}
        # states decided here rather than by the provider (a failed launch, a scale-in); they
        # override whatever the provider says about the same block
        self._simulated_status: dict[str, JobStatus] = {}
        # the last known status of every block ever launched, as of the last poll or scaling step
        self._status: dict[str, JobStatus] = {}
        # the state last emitted for each block: an event goes out only when this changes
        self._emitted_states: dict[str, JobState] = {}

    @property
    def _scale_prefix(self) -> str:
        return f"[Scaling executor {self.label}]"

    # --- what subclasses provide -----------------------------------------------------------------------
    @abstractmethod
    def outstanding(self) -> int:
        """Tasks this executor holds now: waiting for a worker or running."""

    @property
    @abstractmethod
    def workers_per_node(self) -> int | float:
        """Task slots on each node of a block."""

    @abstractmethod
    def _get_launch_command(self, block_id: str) -> str:
        """The shell command that starts this executor's workers in block ``block_id``."""

    def block_activity(self) -> dict[str, BlockActivity] | None:
        """Running tasks and idle time of each block whose workers are connected, or None when
        the executor cannot tell (the default): then ``htex_auto_scale`` does not scale in."""
        return None

    def _hold_block(self, block_id: str) -> None:
        """Stop giving work to ``block_id`` before it is cancelled (nothing to do by default)."""

    # --- state -----------------------------------------------------------------------------------------
    @property
    def provider(self) -> ExecutionProvider | None:
        return self._provider

    @property
    def tasks(self) -> dict[Any, Future]:
        """The futures of tasks submitted and not yet finished, by executor task id."""
        return self._tasks

    @property
    def status_polling_interval(self) -> float:
        """Seconds between provider status queries (the provider's); 0 without a provider, which
        means the executor is never polled."""
        return 0 if self._provider is None else self._provider.status_polling_interval

    @property
    def bad_state_is_set(self) -> bool:
        """Whether the executor has given up; ``executor_exception`` says why."""
        return self._executor_bad_state.is_set()

    @property
    def executor_exception(self) -> BaseException | None:
        """Why the executor gave up, once ``bad_state_is_set``."""
        return self._executor_exception

    def set_bad_state_and_fail_all(self, exception: BaseException) -> None:
        """Give up for good: every task held now fails with a ``BadStateException`` carrying
        ``exception``. ``submit`` must check ``bad_state_is_set`` and raise
        ``executor_exception`` for tasks that come later."""
        logger.error("Executor %s is now in a bad state and fails all its tasks: %s", self.label, exception)
        self._executor_exception = exception
        self._executor_bad_state.set()
        for future in list(self._tasks.values()):
            if not future.done():
                future.set_exception(BadStateException(self, exception))

    def handle_errors(self, status: dict[str, JobStatus]) -> None:
        """Let the block error handler judge the latest status of every block."""
        self.block_error_handler(self, status)

    # --- status --------------------------------------------------------------------------------------
    def status(self) -> dict[str, JobStatus]:
        """Ask the provider now for the status of every block launched, by block id."""
        with self._blocks_lock:
            block_ids = list(self.blocks_to_job_id)
            job_ids = [self.blocks_to_job_id[b] for b in block_ids]
            simulated = dict(self._simulated_status)
        status: dict[str, JobStatus] = {}
        if self._provider is not None and job_ids:
            answers = self._provider.status(job_ids)
            if len(answers) != len(job_ids):
                raise IndexError(f"provider {self._provider.label} answered {len(answers)} statuses "
                                 f"for {len(job_ids)} jobs")
            status = dict(zip(block_ids, answers, strict=True))
        status.update(simulated)
        return status

    @property
    def status_facade(self) -> dict[str, JobStatus]:
        """The last known status of every block, without asking the provider."""
        return self._status

    def poll_facade(self) -> None:
        """Refresh ``status_facade`` from the provider if ``status_polling_interval`` has passed
        since the last refresh, and emit a ``BlockState`` event for each block whose state moved."""
        now = time.time()
        if now < self._last_poll_time + self.status_polling_interval:
            return
        fresh = self.status()
        with self._blocks_lock:
            # blocks launched, and states decided here, while the provider was being asked
            for block_id, s in self._status.items():
                fresh.setdefault(block_id, s)
            fresh.update(self._simulated_status)
            self._status = fresh
            self._last_poll_time = now
            self._emit_block_states(fresh)

    # --- scaling -------------------------------------------------------------------------------------
    def scale_out_facade(self, n: int) -> list[str]:
        """Launch ``n`` more blocks; returns the ids of those the provider accepted.

        A block the provider refused is recorded as FAILED, with the error as its message."""
        if self._provider is None:
            raise ScalingFailed(self, "no provider to scale out with")
        launched = []
        logger.info("%s Scaling out by %d blocks", self._scale_prefix, n)
        for _ in range(n):
            block_id = str(self._block_id_counter.get_id())
            try:
                job_id = self._launch_block(block_id)
            except Exception as e:
                logger.error("%s Block %s could not be launched: %s", self._scale_prefix, block_id, e)
                failed = JobStatus(JobState.FAILED, f"Failed to start block {block_id}: {type(e).__name__}: {e}")
                with self._blocks_lock:
                    self._simulated_status[block_id] = failed
                    self._status[block_id] = failed
                    self._emit_block_states({block_id: failed})
                continue
            pending = JobStatus(JobState.PENDING)
            # recorded and emitted together: a poll cannot report the block before its PENDING
            with self._blocks_lock:
                self.blocks_to_job_id[block_id] = job_id
                self.job_ids_to_block[job_id] = block_id
                self._status[block_id] = pending
                self._emit_block_states({block_id: pending})
            launched.append(block_id)
        return launched

    def _launch_block(self, block_id: str) -> Any:
        """Submit one block to the provider; returns its job id or raises ``ScalingFailed``."""
        if self._provider is None:
            raise ScalingFailed(self, "no provider to launch blocks with")
        launch_cmd = self._get_launch_command(block_id)
        job_name = f"parsl.{self.label}.block-{block_id}"
        logger.debug("%s Submitting block %s as %s", self._scale_prefix, block_id, job_name)
        job_id = self._provider.submit(launch_cmd, 1, job_name)
        if not job_id:
            raise ScalingFailed(self, f"provider {self._provider.label} returned no job id for block {block_id}")
        logger.debug("%s Launched block %s as job %s", self._scale_prefix, block_id, job_id)
        return job_id

    def scale_in(self, blocks: int, max_idletime: float | None = None) -> list[str]:
        """Cancel up to ``blocks`` live blocks; returns the ids of those the provider cancelled.

        Without ``max_idletime`` any live blocks go, the idlest first as far as
        ``block_activity`` tells (oldest first when it tells nothing). With it, only blocks
        running no task and idle for longer than ``max_idletime`` seconds go, so fewer may.
        """
        if self._provider is None:
            logger.error("%s No provider to scale in with", self._scale_prefix)
            return []
        with self._blocks_lock:
            live = [b for b, s in self._status.items() if s.state not in TERMINAL_STATES and b in self.blocks_to_job_id]
            job_id_of = dict(self.blocks_to_job_id)
        activity = self.block_activity() or {}
        unknown = BlockActivity(tasks=0, idle=float("inf"))
        ranked = sorted(live, key=lambda b: (-activity.get(b, unknown).idle, activity.get(b, unknown).tasks))
        if max_idletime is not None:
            ranked = [b for b in ranked
                      if activity.get(b, unknown).tasks == 0 and activity.get(b, unknown).idle > max_idletime]
        chosen = ranked[:blocks]
        if len(chosen) < blocks:
            logger.debug("%s Asked to scale in %d blocks, found %d that may go", self._scale_prefix, blocks,
                         len(chosen))
        if not chosen:
            return []
        for block_id in chosen:
            self._hold_block(block_id)
        job_ids = [job_id_of[b] for b in chosen]
        logger.info("%s Scaling in blocks %s (jobs %s)", self._scale_prefix, chosen, job_ids)
        cancelled = self._provider.cancel(job_ids)
        block_of = {job_id_of[b]: b for b in chosen}
        return [block_of[j] for j in self._filter_scale_in_ids(job_ids, cancelled)]

    def _filter_scale_in_ids(self, to_kill: Sequence[Any], killed: Sequence[bool]) -> list[Any]:
        """The job ids of ``to_kill`` whose cancel succeeded (``killed`` is the provider's answer)."""
        if len(to_kill) != len(killed):
            raise ScalingFailed(self, f"provider answered {len(killed)} cancel results for {len(to_kill)} jobs")
        refused = [job for job, ok in zip(to_kill, killed, strict=True) if not ok]
        if refused:
            logger.warning("%s The provider did not cancel jobs %s", self._scale_prefix, refused)
        return [job for job, ok in zip(to_kill, killed, strict=True) if ok]

    def scale_in_facade(self, n: int, max_idletime: float | None = None) -> list[str]:
        """Scale in by up to ``n`` blocks (see ``scale_in``) and mark those SCALED_IN, which no
        error handler counts as a failure and no later provider status overrides."""
        # the lock keeps a concurrent poll from reporting these blocks CANCELLED in between
        with self._blocks_lock:
            if max_idletime is None:
                block_ids = self.scale_in(n)
            else:
                block_ids = self.scale_in(n, max_idletime=max_idletime)
            changes = {}
            for block_id in block_ids:
                scaled_in = JobStatus(JobState.SCALED_IN)
                self._status[block_id] = scaled_in
                self._simulated_status[block_id] = scaled_in
                changes[block_id] = scaled_in
            self._emit_block_states(changes)
        return block_ids

    # --- events --------------------------------------------------------------------------------------
    def _emit_block_states(self, statuses: dict[str, JobStatus]) -> None:
        """Emit a ``BlockState`` for each block whose state differs from the one last emitted."""
        with self._blocks_lock:
            changed = {b: s for b, s in statuses.items() if self._emitted_states.get(b) != s.state}
            for block_id, s in changed.items():
                self._emitted_states[block_id] = s.state
            sink = getattr(self, "event_sink", None)
            if sink is None or not changed:
                return
            now = time.time()
            run_id = self.run_id or ""
            # emitted under the lock, so that each block's events reach the sink in order
            provider = self._provider
            described = "" if provider is None else f"{type(provider).__name__} {getattr(provider, 'label', '')}"
            channel = getattr(provider, "channel", None)  # cloud providers have none: no host to name
            host = getattr(channel, "hostname", None) if channel is not None else None
            resources = getattr(provider, "resources", None) or {}
            for block_id, s in changed.items():
                job_id = self.blocks_to_job_id.get(block_id)
                job = resources.get(job_id) if job_id is not None else None
                digest = job.get("script_sha256") if isinstance(job, dict) else None
                sink.emit(BlockState(run_id, self.label, block_id, now, s.status_name,
                                     None if job_id is None else str(job_id), s.message, described.strip() or None,
                                     host, digest))
