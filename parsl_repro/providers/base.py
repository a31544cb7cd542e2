"""The provider contract: how a block executor gets blocks of resources from a scheduler.

::

                      +--------------------+
      command, n ---->| submit             |----> job id
      [job ids]  ---->| status             |----> [JobStatus, ...]
      [job ids]  ---->| cancel             |----> [True | False, ...]
                      +--------------------+

Who calls what, and when:
  * the kernel sets ``script_dir`` (``<run_dir>/submit_scripts``, created) before the executor
    starts; submit scripts and each job's output go there;
  * the executor calls ``submit(command, tasks_per_node, job_name)`` once per block it scales out;
    the command starts that executor's workers, and the provider's launcher runs it
    ``tasks_per_node`` times on each of ``nodes_per_block`` nodes;
  * the job status poller calls ``status(job_ids)`` (via the executor) at most every
    ``status_polling_interval`` seconds, and ``cancel(job_ids)`` when scaling in and at cleanup.
    These calls come from the poller's thread, and from the kernel's thread at cleanup.

Required attributes, read by the strategy and the executors: ``label``, ``init_blocks``,
``min_blocks``, ``max_blocks``, ``nodes_per_block``, ``parallelism`` (0..1: task slots wanted per
outstanding task), ``script_dir`` and ``resources`` (the provider's own record of its jobs, by
job id). ``cores_per_node`` and ``mem_per_node`` (GB) default to None; a provider that sets them
asks the scheduler for that much and exports ``PARSL_CORES`` / ``PARSL_MEMORY_GB`` to the job, and
executors may use them to size their worker pools.
"""
from __future__ import annotations

import logging
from abc import ABCMeta, abstractmethod
from collections.abc import Sequence
from typing import Any

from parsl_repro.jobs.states import JobStatus

logger = logging.getLogger(__name__)


class ExecutionProvider(metaclass=ABCMeta):
    """Base class of every provider (Parsl's name, so Parsl provider plug-ins subclass it)."""

    @abstractmethod
    def __init__(self) -> None:
        self.min_blocks: int
        self.max_blocks: int
        self.init_blocks: int
        self.nodes_per_block: int
        self.script_dir: str | None
        self.parallelism: float
        self.resources: dict[Any, Any]
        self.cores_per_node: int | None = None
        self.mem_per_node: float | None = None

    @abstractmethod
    def submit(self, command: str, tasks_per_node: int, job_name: str = "parsl.auto") -> Any:
        """Start one block running ``command`` (``tasks_per_node`` copies on each node).

        Returns the job's id (any object the provider understands in ``status`` and ``cancel``).
        Raises ``SubmitException`` (or another ``ExecutionProviderException``) when the job could
        not be started; a false return value is also treated as a failed submit.
        """

    @abstractmethod
    def status(self, job_ids: Sequence[Any]) -> Sequence[JobStatus]:
        """The current status of each job, in the order of ``job_ids``."""

    @abstractmethod
    def cancel(self, job_ids: Sequence[Any]) -> Sequence[bool]:
        """Ask for each job to end; for each, whether the request was accepted."""

    @property
    @abstractmethod
    def label(self) -> str:
        """A short name for the provider, for logs and messages."""

    @property
    @abstractmethod
    def status_polling_interval(self) -> int:
        """Seconds between two ``status`` calls: how often the scheduler may be asked."""
