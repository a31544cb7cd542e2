"""``TorqueProvider``: blocks are Torque (OpenPBS-descended) batch jobs.

A block is a ``#PBS`` script (``template.py``) written under ``script_dir``, put on the
scheduler's host by the channel and submitted with ``qsub``, whose only output is the job id.
States come from ``qstat <job ids>`` (the ``S`` column, through ``translate_table``); a job that
``qstat`` has forgotten has ended, so it counts as ``COMPLETED``. ``qdel`` cancels. Every command
runs through ``execute_wait``, bounded by ``cmd_timeout``.

``PBSProProvider`` (``providers.pbspro``) subclasses this one, as in Parsl, and shares its state
table, ``qsub`` handling and ``qdel``.
"""
from __future__ import annotations

import logging
import re
import shlex
import time
from collections.abc import Sequence
from typing import Any

from parsl_repro.channels.base import Channel
from parsl_repro.jobs.states import JobState
from parsl_repro.launchers import AprunLauncher
from parsl_repro.launchers.base import Launcher
from parsl_repro.providers.cluster_provider import ClusterProvider
from parsl_repro.providers.torque.template import template_string
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin

logger = logging.getLogger(__name__)

translate_table = {
    "B": JobState.RUNNING,  # an array job, some of whose subjobs run (PBS Pro)
    "R": JobState.RUNNING,
    "C": JobState.COMPLETED,  # completed after having run (Torque)
    "E": JobState.COMPLETED,  # exiting after having run
    "F": JobState.COMPLETED,  # finished (PBS Pro, shown with qstat -x)
    "H": JobState.HELD,
    "Q": JobState.PENDING,  # queued, eligible to run
    "W": JobState.PENDING,  # waiting for its start time (qsub -a)
    "S": JobState.HELD,  # suspended
    "T": JobState.PENDING,  # being moved to a new location
    "U": JobState.HELD,  # suspended because the workstation is busy (PBS Pro)
    "X": JobState.COMPLETED,  # a finished subjob (PBS Pro)
}
"""qstat's single-letter job states (the qstat(1B) man pages of Torque and PBS Pro) as block
states: Parsl's table."""

_FORGOTTEN = re.compile(r"Unknown Job Id|Job has finished", re.IGNORECASE)
"""What qstat says on stderr about a job it no longer knows (Torque) or keeps only in its
history (PBS Pro without ``-x``): the job has ended."""


def only_forgotten_jobs(stderr: str) -> bool:
    """Whether every line qstat wrote to stderr says that a job has ended (so its non-zero exit
    code is no failure of the query itself)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return bool(lines) and all(_FORGOTTEN.search(line) for line in lines)


def match_job_id(shown: str, job_ids: Sequence[str]) -> str | None:
    """The recorded job id that qstat's (possibly truncated) ``shown`` id stands for, if any."""
    if shown in job_ids:
        return shown
    for job_id in job_ids:
        if job_id.startswith(shown):
            logger.debug("qstat's job id %s taken as %s", shown, job_id)
            return job_id
    return None


class TorqueProvider(ClusterProvider, RepresentationMixin):
    """Blocks from a Torque cluster.

    Parameters (Parsl's, in Parsl's order, with Parsl's defaults)
    ------------------------------------------------------------
    account : charged for the blocks (``qsub -A``), when set.
    queue : the queue to submit to (``qsub -q``), when set.
    scheduler_options : ``#PBS`` lines put before the provider's own (no trailing newline needed).
    worker_init : shell lines run first in each block (activate an environment, load modules).
    nodes_per_block : nodes each block asks for (``-l nodes=N:ppn=<tasks per node>``).
    init_blocks, min_blocks, max_blocks, parallelism : see ``ExecutionProvider``.
    launcher : how the block starts the executor's command on its nodes; ``AprunLauncher()``
        by default (Parsl's: Torque was mostly met on Cray systems).
    walltime : ``HH:MM:SS`` per block.
    cmd_timeout : seconds any Torque command may take.
    channel : where ``qsub``/``qstat``/``qdel`` run and scripts go (``LocalChannel()`` if None).

    ``resources[job_id]`` holds ``job_id``, ``status``, ``job_stdout_path``/``job_stderr_path``
    (paths on the scheduler's host) and ``script_sha256``.
    """

    scheduler_name = "Torque"
    walltime_hms_only = True

    @typechecked_config
    def __init__(self, account: str | None = None, queue: str | None = None, scheduler_options: str = "",
                 worker_init: str = "", nodes_per_block: int = 1, init_blocks: int = 1, min_blocks: int = 0,
                 max_blocks: int = 1, parallelism: float = 1, launcher: Launcher = AprunLauncher(),
                 walltime: str = "00:20:00", cmd_timeout: int = 120, channel: Channel | None = None) -> None:
        super().__init__("torque", nodes_per_block, init_blocks, min_blocks, max_blocks, parallelism, walltime,
                         launcher, cmd_timeout=cmd_timeout, channel=channel)
        self.account = account
        self.queue = queue
        self.scheduler_options = scheduler_options
        self.worker_init = worker_init
        self.template_string = template_string

    # --- submit -------------------------------------------------------------------------------------
    def submit(self, command: str, tasks_per_node: int, job_name: str = "parsl.torque") -> str:
        """Write the block's ``#PBS`` script and ``qsub`` it; returns the job id qsub printed.

        Raises ``SubmitException`` with qsub's exit code and output when qsub fails or prints
        nothing, and ``ScriptPathError`` when ``script_dir`` is not set."""
        job_name = f"parsl.{job_name}.{time.time()}"
        logger.debug("Requesting %d nodes, %d tasks per node for %s", self.nodes_per_block, tasks_per_node, job_name)
        host_path, digest = self._render_and_push(self.template_string, job_name, ".submit", {
            "nodes": self.nodes_per_block, "task_blocks": self.nodes_per_block * tasks_per_node,
            "nodes_per_block": self.nodes_per_block, "tasks_per_node": tasks_per_node, "walltime": self.walltime,
            "scheduler_options": self.scheduler_options, "worker_init": self.worker_init}, command, tasks_per_node)
        job_id = self._qsub(job_name, host_path)
        self._record_job(job_id, digest, host_path + ".stdout", host_path + ".stderr")
        return job_id

    def _qsub(self, job_name: str, script_on_host: str) -> str:
        """Run ``qsub`` (with ``-q``/``-A`` when set) on the script; the job id it printed.
        Raises ``SubmitException`` (``_submit_failed``) when it fails or prints nothing."""
        options = (f" -q {shlex.quote(self.queue)}" if self.queue is not None else "") + (
            f" -A {shlex.quote(self.account)}" if self.account is not None else "")
        retcode, stdout, stderr = self.execute_wait(f"qsub{options} {shlex.quote(script_on_host)}")
        lines = [line.strip() for line in stdout.splitlines() if line.strip()]
        if retcode == 0 and lines:
            return lines[-1]  # the job id, e.g. "4807.torqueserver"; any notices come before it
        self._submit_failed(job_name, "qsub", retcode, stdout, stderr)

    # --- status -------------------------------------------------------------------------------------
    def _status(self) -> None:
        active = self._active_jobs()
        if not active:
            return
        retcode, stdout, stderr = self.execute_wait("qstat " + " ".join(map(shlex.quote, active)))
        if retcode != 0 and not only_forgotten_jobs(stderr):  # keep what is known; ask again next poll
            logger.warning("qstat failed (exit code %s), block states not updated: %s", retcode, stderr.strip())
            return
        seen: set[str] = set()
        for line in stdout.splitlines():
            parts = line.split()
            # the table: "Job ID  Name  User  Time Use  S  Queue", a line of dashes, one row per job
            if len(parts) < 6 or parts[0].upper().startswith("JOB") or parts[0].startswith("-"):
                continue
            job_id = match_job_id(parts[0], active)
            if job_id is None:
                continue
            self._set_state(job_id, self._translate_state(translate_table, parts[4], job_id, "qstat"))
            seen.add(job_id)
        self._mark_unlisted_completed(active, seen, "qstat")

    # --- cancel -------------------------------------------------------------------------------------
    def cancel(self, job_ids: Sequence[Any]) -> list[bool]:
        """``qdel`` the jobs; every entry True (and the jobs ``CANCELLED``) when qdel succeeded,
        every one False when it did not."""
        return self._cancel_with("qdel", job_ids)
