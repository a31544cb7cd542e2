"""``GridEngineProvider``: blocks are Grid Engine batch jobs.

A block is a batch script (``template.py``: ``#$`` directives for the shell, the output files,
the working directory and ``h_rt``, then ``scheduler_options``, ``worker_init`` and the
launcher's text) written under ``script_dir`` and submitted with ``qsub -terse``, which prints
only the job id. Job states come from ``qstat -xml``; Grid Engine forgets a job once it ends,
so a job ``qstat`` no longer lists counts as completed. ``qdel`` cancels. Every command runs
through ``execute_wait`` (the provider's channel, bounded by ``cmd_timeout``), so the same
commands can run on a remote login node.
"""
from __future__ import annotations

import logging
import re
import shlex
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from typing import Any

from parsl_repro.channels.base import Channel
from parsl_repro.jobs.states import JobState
from parsl_repro.launchers import SingleNodeLauncher
from parsl_repro.launchers.base import Launcher
from parsl_repro.providers.cluster_provider import ClusterProvider
from parsl_repro.providers.grid_engine.template import template_string
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin

logger = logging.getLogger(__name__)

translate_table = {
    "qw": JobState.PENDING, "hqw": JobState.PENDING, "hrwq": JobState.PENDING,
    "r": JobState.RUNNING,
    # "t" is "transferring" (qstat(1)): the job is being started on its host. Parsl maps it to
    # FAILED; here FAILED is terminal and never asked about again, so a block caught in those
    # few milliseconds would be lost for good.
    "t": JobState.RUNNING,
    "s": JobState.FAILED, "ts": JobState.FAILED,  # suspended
    "eqw": JobState.FAILED, "ehqw": JobState.FAILED, "ehrqw": JobState.FAILED,  # error states
    "d": JobState.COMPLETED, "dr": JobState.COMPLETED, "dt": JobState.COMPLETED,  # being deleted
    "drt": JobState.COMPLETED, "ds": JobState.COMPLETED, "drs": JobState.COMPLETED,
}
"""``qstat``'s job state letters, lowercased, as block states (Parsl's table, but for ``t``)."""

_QDEL_DELETED = re.compile(r"registered the job \S+ for deletion|has deleted job|already in deletion")
"""How ``qdel`` says it deleted a job ("root has registered the job 5 for deletion" for a running
one, "root has deleted job 7" for a waiting one)."""


class GridEngineProvider(ClusterProvider, RepresentationMixin):
    """Blocks from a Grid Engine cluster.

    Parameters (Parsl's, with Parsl's defaults)
    -------------------------------------------
    nodes_per_block : nodes each block asks for (passed to the launcher; Grid Engine itself is
        asked for one slot unless ``scheduler_options`` ask for a parallel environment).
    init_blocks, min_blocks, max_blocks, parallelism : see ``ExecutionProvider``.
    walltime : ``HH:MM:SS`` per block (``-l h_rt``).
    scheduler_options : extra lines for the script's ``#$`` section (``#$ -pe smp 8``).
    worker_init : shell lines run first in each block (activate an environment, load modules).
        Grid Engine does not pass the submitter's environment to the job (no ``-V``), so this
        is where ``PATH`` reaches the worker pool's command.
    launcher : how the block starts the executor's command (``SingleNodeLauncher()``).
    cmd_timeout : seconds any Grid Engine command may take.
    queue : the queue to submit to (``qsub -q``); None leaves it to Grid Engine.
    channel : where the commands run and the scripts go (``LocalChannel()`` when None).

    ``resources[job_id]`` holds ``job_id``, ``status``, ``job_stdout_path``, ``job_stderr_path``
    (the block's own output, on the scheduler's host) and ``script_sha256``.
    """

    scheduler_name = "Grid Engine"

    @typechecked_config
    def __init__(self, nodes_per_block: int = 1, init_blocks: int = 1, min_blocks: int = 0, max_blocks: int = 1,
                 parallelism: float = 1, walltime: str = "00:10:00", scheduler_options: str = "",
                 worker_init: str = "", launcher: Launcher = SingleNodeLauncher(), cmd_timeout: int = 60,
                 queue: str | None = None, channel: Channel | None = None) -> None:
        super().__init__("grid_engine", nodes_per_block, init_blocks, min_blocks, max_blocks, parallelism,
                         walltime, launcher=launcher, cmd_timeout=cmd_timeout, channel=channel)
        self.scheduler_options = scheduler_options
        self.worker_init = worker_init
        self.queue = queue

    # --- submit -------------------------------------------------------------------------------------
    def submit(self, command: str, tasks_per_node: int, job_name: str = "parsl.sge") -> str:
        """Write the block's batch script and ``qsub`` it; returns the Grid Engine job id.

        Raises ``ScriptPathError`` when ``script_dir`` is unset or unwritable, and
        ``SubmitException`` (with ``qsub``'s exit code and output) when ``qsub`` refuses the job
        or prints no job id."""
        job_name = f"{job_name}.{time.time()}"
        logger.debug("Requesting one block with %d nodes and %d tasks per node", self.nodes_per_block,
                     tasks_per_node)
        host_path, script_sha256 = self._render_and_push(template_string, job_name, ".submit", {
            "nodes": self.nodes_per_block, "walltime": h_rt(self.walltime),
            "scheduler_options": self.scheduler_options, "worker_init": self.worker_init}, command, tasks_per_node)
        queue_option = f" -q {shlex.quote(self.queue)}" if self.queue is not None else ""
        retcode, stdout, stderr = self.execute_wait(f"qsub -terse{queue_option} {shlex.quote(host_path)}")
        if retcode == 0:
            # -terse prints the id alone ("123"; "123.1-4:1" for an array job)
            job_id = next((line.strip() for line in stdout.splitlines() if line.strip()), "")
            if job_id:
                self._record_job(job_id, script_sha256, host_path + ".stdout", host_path + ".stderr")
                logger.debug("Block %s is Grid Engine job %s", job_name, job_id)
                return job_id
        self._submit_failed(job_name, "qsub", retcode, stdout, stderr)

    # --- status -------------------------------------------------------------------------------------
    def _status(self) -> None:
        active = self._active_jobs()
        if not active:
            return
        retcode, stdout, stderr = self.execute_wait("qstat -xml")
        if retcode != 0:  # keep what is known; the next poll asks again
            logger.warning("qstat failed (exit code %s): %s", retcode, stderr.strip())
            return
        try:
            listed = qstat_xml_states(stdout)
        except ElementTree.ParseError as e:
            logger.warning("qstat -xml printed something that is not XML (%s): %r", e, stdout[:200])
            return
        for job_id in active:
            if job_id in listed:
                self._set_state(job_id, self._translate_state(translate_table, listed[job_id].lower(), job_id,
                                                              "qstat"))
        # Grid Engine lists only jobs waiting or running
        self._mark_unlisted_completed(active, set(listed), "qstat")

    # --- cancel -------------------------------------------------------------------------------------
    def cancel(self, job_ids: Sequence[Any]) -> list[bool]:
        """``qdel`` the jobs: True for each job deleted (now ``CANCELLED``) or already gone
        (an unfinished record of it becomes ``COMPLETED``: it ended before the ``qdel``), False
        for each job ``qdel`` did not delete.

        ``qdel`` answers each job on a line of its own and exits 1 if any job was unknown, so
        the lines, not the exit code, say what became of each job: this is why Grid Engine does
        not use ``ClusterProvider._cancel_with``, which judges a whole command by its exit code."""
        if not job_ids:
            return []
        retcode, stdout, stderr = self.execute_wait("qdel " + " ".join(shlex.quote(str(j)) for j in job_ids))
        lines = (stdout + "\n" + stderr).splitlines()
        results = []
        for job_id in job_ids:
            mention = re.compile(rf'\bjob "?{re.escape(str(job_id))}"?(?![\w.])')
            said = " ".join(line for line in lines if mention.search(line))
            if "does not exist" in said:
                if job_id in self.resources and not self.resources[job_id]["status"].terminal:
                    self._set_state(job_id, JobState.COMPLETED, message="qdel: the job had already ended")
                results.append(True)
            elif _QDEL_DELETED.search(said) or (retcode == 0 and not said):
                if job_id in self.resources:
                    self._set_state(job_id, JobState.CANCELLED, message="cancelled with qdel")
                results.append(True)
            else:
                logger.error("qdel did not delete job %s (exit code %s): %s", job_id, retcode,
                             said or (stderr.strip() or stdout.strip()))
                results.append(False)
        return results


def qstat_xml_states(xml_text: str) -> dict[str, str]:
    """``{job id: state letters}`` for every job in ``qstat -xml``'s answer: running ones sit
    under ``queue_info``, waiting ones under ``job_info``; both are ``job_list`` elements."""
    states: dict[str, str] = {}
    for job in ElementTree.fromstring(xml_text).iter("job_list"):
        number, state = job.findtext("JB_job_number"), job.findtext("state")
        if number and state:
            states[number.strip()] = state.strip()
    return states


def h_rt(walltime: str) -> str:
    """``walltime`` (any form ``check_walltime`` accepts, read as Slurm does: ``MM``, ``MM:SS``,
    ``HH:MM:SS``, ``D-HH[:MM[:SS]]``) as Grid Engine's ``H:MM:SS``, for which a bare number
    would mean seconds, not minutes."""
    days, _, clock = walltime.strip().rpartition("-")
    parts = [int(part) for part in clock.split(":")]
    if days:
        hours, minutes, seconds = (parts + [0, 0])[:3]
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    else:
        hours, (minutes, seconds) = 0, (parts + [0])[:2]
    total = ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds
    return f"{total // 3600}:{total // 60 % 60:02d}:{total % 60:02d}"
