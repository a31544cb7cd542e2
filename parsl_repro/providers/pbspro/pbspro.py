"""``PBSProProvider``: blocks are PBS Professional (or OpenPBS) batch jobs.

As ``TorqueProvider`` (which it subclasses, as in Parsl), with PBS Pro's resource syntax: a block
asks for ``-l select=<nodes>:ncpus=<cpus_per_node><select_options>``. States come from
``qstat -x -f -F json <job ids>``: JSON rather than a table, and ``-x`` keeps finished jobs in the
answer, so a job that ended is reported ``F`` with its ``Exit_status`` (kept as the block's
``exit_code``) instead of vanishing.
"""
from __future__ import annotations

import json
import logging
import shlex
import time

from parsl_repro.channels.base import Channel
from parsl_repro.launchers import SingleNodeLauncher
from parsl_repro.launchers.base import Launcher
from parsl_repro.providers.pbspro.template import template_string
from parsl_repro.providers.torque.torque import (
    TorqueProvider,
    match_job_id,
    only_forgotten_jobs,
    translate_table,
)
from parsl_repro.typecheck import typechecked_config

logger = logging.getLogger(__name__)


class PBSProProvider(TorqueProvider):
    """Blocks from a PBS Pro cluster.

    Parameters (Parsl's, in Parsl's order, with Parsl's defaults)
    ------------------------------------------------------------
    account : charged for the blocks (``qsub -A``), when set.
    queue : the queue to submit to (``qsub -q``), when set.
    scheduler_options : ``#PBS`` lines put after the provider's own.
    select_options : appended to the ``select`` chunk, e.g. ``ngpus=4`` (a leading ``:`` is
        added when missing).
    worker_init : shell lines run first in each block.
    nodes_per_block : ``select`` chunks (nodes) each block asks for.
    cpus_per_node : ``ncpus`` per chunk.
    init_blocks, min_blocks, max_blocks, parallelism : see ``ExecutionProvider``.
    launcher : how the block starts the executor's command (``SingleNodeLauncher()``; for
        several nodes, ``MpiExecLauncher()`` or ``GnuParallelLauncher()``).
    walltime : ``HH:MM:SS`` per block.
    cmd_timeout : seconds any PBS command may take.
    channel : where ``qsub``/``qstat``/``qdel`` run and scripts go (``LocalChannel()`` if None).
    """

    scheduler_name = "PBS Pro"

    @typechecked_config
    def __init__(self, account: str | None = None, queue: str | None = None, scheduler_options: str = "",
                 select_options: str = "", worker_init: str = "", nodes_per_block: int = 1, cpus_per_node: int = 1,
                 init_blocks: int = 1, min_blocks: int = 0, max_blocks: int = 1, parallelism: float = 1,
                 launcher: Launcher = SingleNodeLauncher(), walltime: str = "00:20:00", cmd_timeout: int = 120,
                 channel: Channel | None = None) -> None:
        super().__init__(account, queue, scheduler_options, worker_init, nodes_per_block, init_blocks, min_blocks,
                         max_blocks, parallelism, launcher, walltime, cmd_timeout=cmd_timeout, channel=channel)
        self._label = "pbspro"
        self.template_string = template_string
        self.cpus_per_node = cpus_per_node
        self.select_options = select_options

    def submit(self, command: str, tasks_per_node: int, job_name: str = "parsl") -> str:
        """Write the block's ``#PBS`` script and ``qsub`` it; returns the job id qsub printed
        (``<number>.<server>``). Raises ``SubmitException`` as ``TorqueProvider.submit`` does."""
        job_name = f"{job_name}.{time.time()}"
        select_options = self.select_options
        if select_options and not select_options.startswith(":"):
            select_options = ":" + select_options
        logger.debug("Requesting %d nodes, %d tasks per node for %s", self.nodes_per_block, tasks_per_node, job_name)
        host_path, digest = self._render_and_push(self.template_string, job_name, "", {
            "nodes_per_block": self.nodes_per_block, "ncpus": self.cpus_per_node,
            "select_options": select_options, "walltime": self.walltime,
            "scheduler_options": self.scheduler_options, "worker_init": self.worker_init}, command, tasks_per_node)
        job_id = self._qsub(job_name, host_path)
        self._record_job(job_id, digest, host_path + ".stdout", host_path + ".stderr")
        return job_id

    def _status(self) -> None:
        active = self._active_jobs()
        if not active:
            return
        retcode, stdout, stderr = self.execute_wait("qstat -x -f -F json " + " ".join(map(shlex.quote, active)))
        if retcode != 0 and not only_forgotten_jobs(stderr):  # keep what is known; ask again next poll
            logger.warning("qstat failed (exit code %s), block states not updated: %s", retcode, stderr.strip())
            return
        try:
            jobs = json.loads(stdout).get("Jobs", {}) if stdout.strip() else {}
        except (ValueError, AttributeError) as e:
            logger.warning("qstat's JSON could not be read (%s), block states not updated: %.200r", e, stdout)
            return
        seen: set[str] = set()
        for shown_id, job in jobs.items():
            job_id = match_job_id(shown_id, active)
            if job_id is None:
                continue
            exit_status = job.get("Exit_status")
            state = self._translate_state(translate_table, str(job.get("job_state")), job_id, "qstat")
            self._set_state(job_id, state, message=job.get("comment"),
                            exit_code=exit_status if isinstance(exit_status, int) else None)
            seen.add(job_id)
        # with -x, only a job purged from the server's history is missing: it ended long ago
        self._mark_unlisted_completed(active, seen, "qstat")
