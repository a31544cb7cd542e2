"""``CobaltProvider``: blocks are Cobalt jobs (the scheduler of ALCF's Theta, Mira and Cooley).

Parsl removed this provider in 2024, with the machines; it is kept so that configurations written
for Parsl 1.x still load. A block is a script (``template.py``) submitted with
``qsub -n <nodes> -t <minutes> [-q queue] [-A account] -O <prefix> <script>``, whose last line of
output is the job id; ``-O`` names the job's output ``<script>.output`` and ``<script>.error``.
States come from ``qstat -u $USER`` (the ``State`` column, through ``translate_table``); a job no
longer listed has ended and counts as ``COMPLETED``. ``qdel`` cancels.
"""
from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Sequence
from typing import Any

from parsl_repro.channels.base import Channel
from parsl_repro.jobs.states import JobState
from parsl_repro.launchers import AprunLauncher
from parsl_repro.launchers.base import Launcher
from parsl_repro.providers.cluster_provider import ClusterProvider
from parsl_repro.providers.cobalt.template import template_string
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin, wtime_to_minutes

logger = logging.getLogger(__name__)

translate_table = {
    "queued": JobState.PENDING,
    "starting": JobState.PENDING,
    "running": JobState.RUNNING,
    "exiting": JobState.COMPLETED,
    "killing": JobState.COMPLETED,
}
"""Cobalt's job states, in the lower case ``qstat`` prints them in (the answer is lower-cased
before the look-up), as block states: Parsl 1.2's table. Hold states (``user_hold``,
``dep_hold``...) read as ``UNKNOWN``, with a warning."""


class CobaltProvider(ClusterProvider, RepresentationMixin):
    """Blocks from a Cobalt system.

    Parameters (Parsl 1.2's, in its order, with its defaults)
    --------------------------------------------------------
    channel : where ``qsub``/``qstat``/``qdel`` run and scripts go (``LocalChannel()`` if None;
        Parsl 1.2 had ``channel`` first too).
    nodes_per_block : nodes each block asks for (``qsub -n``).
    init_blocks, min_blocks, max_blocks, parallelism : see ``ExecutionProvider``; note that
        ``init_blocks`` defaults to 0 here, as in Parsl.
    walltime : ``HH:MM:SS`` per block (``qsub -t``, in whole minutes).
    account : charged for the blocks (``qsub -A``), when set.
    queue : the queue to submit to (``qsub -q``), when set.
    scheduler_options : lines put at the top of the script (``#COBALT`` directives).
    worker_init : shell lines run first in each block.
    launcher : how the block starts the executor's command (``AprunLauncher()``: Theta is a Cray).
    cmd_timeout : seconds any Cobalt command may take.
    """

    scheduler_name = "Cobalt"
    walltime_hms_only = True

    @typechecked_config
    def __init__(self, channel: Channel | None = None, nodes_per_block: int = 1, init_blocks: int = 0,
                 min_blocks: int = 0, max_blocks: int = 1, parallelism: float = 1, walltime: str = "00:10:00",
                 account: str | None = None, queue: str | None = None, scheduler_options: str = "",
                 worker_init: str = "", launcher: Launcher = AprunLauncher(), cmd_timeout: int = 10) -> None:
        super().__init__("cobalt", nodes_per_block, init_blocks, min_blocks, max_blocks, parallelism, walltime,
                         launcher, cmd_timeout=cmd_timeout, channel=channel)
        self.account = account
        self.queue = queue
        self.scheduler_options = scheduler_options
        self.worker_init = worker_init

    # --- submit -------------------------------------------------------------------------------------
    def submit(self, command: str, tasks_per_node: int, job_name: str = "parsl.cobalt") -> str:
        """Write the block's script and ``qsub`` it; returns Cobalt's job id.

        Raises ``SubmitException`` with qsub's exit code and message when qsub fails or its last
        line is not a job id, and ``ScriptPathError`` when ``script_dir`` is not set."""
        job_name = f"parsl.{job_name}.{time.time()}"
        logger.debug("Requesting %d nodes, %d tasks per node for %s", self.nodes_per_block, tasks_per_node, job_name)
        host_path, digest = self._render_and_push(template_string, job_name, ".submit", {
            "scheduler_options": self.scheduler_options, "worker_init": self.worker_init}, command, tasks_per_node)
        options = f"-n {self.nodes_per_block} -t {wtime_to_minutes(self.walltime)}"
        options += f" -q {shlex.quote(self.queue)}" if self.queue is not None else ""
        options += f" -A {shlex.quote(self.account)}" if self.account is not None else ""
        quoted = shlex.quote(host_path)
        retcode, stdout, stderr = self.execute_wait(f"qsub {options} -O {quoted} {quoted}")
        lines = [line.strip() for line in stdout.splitlines() if line.strip()]
        # Theta's qsub first says where the job was routed; the id is the last line
        if retcode == 0 and lines and lines[-1].isdigit():
            job_id = lines[-1]
            self._record_job(job_id, digest, host_path + ".output", host_path + ".error")  # what -O names them
            return job_id
        self._submit_failed(job_name, "qsub", retcode, stdout, stderr, expected="its last line is not a job id")

    # --- status -------------------------------------------------------------------------------------
    def _status(self) -> None:
        """One ``qstat -u $USER`` lists every job of the user (Cobalt's qstat takes no list of
        ids to report on); the rows of recorded active jobs are read, the other rows ignored, and
        an active job with no row has ended. Any non-zero exit leaves the states as they were."""
        active = self._active_jobs()
        if not active:
            return
        retcode, stdout, stderr = self.execute_wait("qstat -u $USER")
        if retcode != 0:  # keep what is known; ask again next poll
            logger.warning("qstat failed (exit code %s), block states not updated: %s", retcode, stderr.strip())
            return
        seen: set[str] = set()
        for line in stdout.splitlines():
            # the table: "JobID User WallTime Nodes State Location", a line of "=", one row per job
            parts = line.split()
            if len(parts) < 5 or parts[0] not in active:
                continue
            job_id = parts[0]
            self._set_state(job_id, self._translate_state(translate_table, parts[4].lower(), job_id, "qstat"))
            seen.add(job_id)
        self._mark_unlisted_completed(active, seen, "qstat")

    # --- cancel -------------------------------------------------------------------------------------
    def cancel(self, job_ids: Sequence[Any]) -> list[bool]:
        """``qdel`` the jobs; every entry True (and the jobs ``CANCELLED``) when qdel succeeded,
        every one False when it did not."""
        return self._cancel_with("qdel", job_ids)
