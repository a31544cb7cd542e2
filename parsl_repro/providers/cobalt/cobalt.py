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
import posixpath
import time
from collections.abc import Sequence
from typing import Any

from parsl_repro.channels.base import Channel
from parsl_repro.jobs.states import JobState
from parsl_repro.launchers import AprunLauncher
from parsl_repro.launchers.base import Launcher
from parsl_repro.providers.cluster_provider import ClusterProvider
from parsl_repro.providers.cobalt.template import template_string
from parsl_repro.providers.errors import SubmitException
from parsl_repro.providers.torque.torque import check_hms_walltime
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin, wtime_to_minutes

logger = logging.getLogger(__name__)

translate_table = {
    "QUEUED": JobState.PENDING,
    "STARTING": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "EXITING": JobState.COMPLETED,
    "KILLING": JobState.COMPLETED,
}
"""Cobalt's job states, upper-cased as ``qstat`` prints them in lower case, as block states:
Parsl 1.2's table. Hold states (``user_hold``, ``dep_hold``...) read as ``UNKNOWN``."""


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

    @typechecked_config
    def __init__(self, channel: Channel | None = None, nodes_per_block: int = 1, init_blocks: int = 0,
                 min_blocks: int = 0, max_blocks: int = 1, parallelism: float = 1, walltime: str = "00:10:00",
                 account: str | None = None, queue: str | None = None, scheduler_options: str = "",
                 worker_init: str = "", launcher: Launcher = AprunLauncher(), cmd_timeout: int = 10) -> None:
        super().__init__("cobalt", nodes_per_block, init_blocks, min_blocks, max_blocks, parallelism, walltime,
                         launcher, cmd_timeout=cmd_timeout, channel=channel)
        check_hms_walltime(type(self).__name__, walltime)
        self.account = account
        self.queue = queue
        self.scheduler_options = scheduler_options
        self.worker_init = worker_init

    @property
    def status_polling_interval(self) -> int:
        return 60

    # --- submit -------------------------------------------------------------------------------------
    def submit(self, command: str, tasks_per_node: int, job_name: str = "parsl.cobalt") -> str:
        """Write the block's script and ``qsub`` it; returns Cobalt's job id.

        Raises ``SubmitException`` with qsub's exit code and message when qsub fails or its last
        line is not a job id, and ``ScriptPathError`` when ``script_dir`` is not set."""
        job_name = f"parsl.{job_name}.{time.time()}"
        local_path, host_path = self._script_paths(job_name, ".submit")
        stdout_path, stderr_path = host_path + ".output", host_path + ".error"  # what -O names them
        logger.debug("Requesting %d nodes, %d tasks per node for %s", self.nodes_per_block, tasks_per_node, job_name)
        digest = self._write_submit_script(template_string, local_path, job_name, {
            "scheduler_options": self.scheduler_options, "worker_init": self.worker_init,
            "user_script": self.launcher(command, tasks_per_node, self.nodes_per_block,
                                         posixpath.dirname(host_path))})
        options = f"-n {self.nodes_per_block} -t {wtime_to_minutes(self.walltime)}"
        options += f" -q {self.queue}" if self.queue is not None else ""
        options += f" -A {self.account}" if self.account is not None else ""
        retcode, stdout, stderr = self.execute_wait(
            f"qsub {options} -O {host_path} {self._push_script(local_path)}")
        lines = [line.strip() for line in stdout.splitlines() if line.strip()]
        # Theta's qsub first says where the job was routed; the id is the last line
        if retcode == 0 and lines and lines[-1].isdigit():
            job_id = lines[-1]
            self._record_job(job_id, digest, stdout_path, stderr_path)
            return job_id
        if retcode == 127:
            message = f"qsub was not found on {self.channel.hostname}: run where the Cobalt commands are on PATH"
        elif retcode == 0:
            message = "qsub's last line is not a job id"
        else:
            message = f"qsub failed with exit code {retcode}: {stderr.strip() or stdout.strip()}"
        logger.error("%s for %s: stdout %r, stderr %r", message, job_name, stdout.strip(), stderr.strip())
        raise SubmitException(job_name, message, stdout=stdout, stderr=stderr, retcode=retcode)

    # --- status -------------------------------------------------------------------------------------
    def _status(self) -> None:
        active = [job_id for job_id, job in self.resources.items() if not job["status"].terminal]
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
            job_id, cobalt_state = parts[0], parts[4].upper()
            state = translate_table.get(cobalt_state)
            if state is None:
                logger.warning("Cobalt state %r of job %s is not one this provider knows", parts[4], job_id)
                state = JobState.UNKNOWN
            self._set_state(job_id, state)
            seen.add(job_id)
        for job_id in set(active) - seen:
            self._set_state(job_id, JobState.COMPLETED, message="qstat no longer lists this job: it has ended")

    # --- cancel -------------------------------------------------------------------------------------
    def cancel(self, job_ids: Sequence[Any]) -> list[bool]:
        """``qdel`` the jobs; every entry True (and the jobs ``CANCELLED``) when qdel succeeded,
        every one False when it did not."""
        if not job_ids:
            return []
        retcode, _, stderr = self.execute_wait("qdel " + " ".join(map(str, job_ids)))
        if retcode != 0:
            logger.error("qdel of %s failed (exit code %s): %s", list(job_ids), retcode, stderr.strip())
            return [False] * len(job_ids)
        for job_id in job_ids:
            if job_id in self.resources:
                self._set_state(job_id, JobState.CANCELLED, message="cancelled with qdel")
        return [True] * len(job_ids)
