"""``LSFProvider``: blocks are IBM Spectrum LSF batch jobs.

A block is a ``#BSUB`` script (``template.py``) submitted with ``bsub`` (``bsub < script`` with
``bsub_redirection=True``, for LSF versions that read ``#BSUB`` lines only from standard input);
``bsub`` answers ``Job <id> is submitted to queue <name>.``. States come from
``bjobs -noheader -o 'jobid stat' <job ids>`` through ``translate_table``; LSF forgets a finished
job after ``CLEAN_PERIOD``, so a job ``bjobs`` no longer lists counts as ``COMPLETED``. ``bkill``
cancels.
"""
from __future__ import annotations

import logging
import math
import re
import shlex
import time
from collections.abc import Sequence
from typing import Any

from parsl_repro.channels.base import Channel
from parsl_repro.errors import ConfigurationError
from parsl_repro.jobs.states import JobState
from parsl_repro.launchers import SingleNodeLauncher
from parsl_repro.launchers.base import Launcher
from parsl_repro.providers.cluster_provider import ClusterProvider
from parsl_repro.providers.lsf.template import template_string
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin, wtime_to_minutes

logger = logging.getLogger(__name__)

translate_table = {
    "PEND": JobState.PENDING,
    "RUN": JobState.RUNNING,
    "DONE": JobState.COMPLETED,
    "EXIT": JobState.FAILED,
    "PSUSP": JobState.CANCELLED,  # suspended while pending
    "USUSP": JobState.CANCELLED,  # suspended by its owner or an administrator
    "SSUSP": JobState.CANCELLED,  # suspended by LSF
}
"""bjobs' job states (IBM's bjobs documentation, "Job states") as block states: Parsl's table,
which counts a suspended job as cancelled."""

_SUBMITTED = re.compile(r"^Job <(?P<id>[^>]+)> is submitted to", re.IGNORECASE)
_NOT_FOUND = re.compile(r"^Job <[^>]+> is not found", re.IGNORECASE)


class LSFProvider(ClusterProvider, RepresentationMixin):
    """Blocks from an LSF cluster.

    Parameters (Parsl's, in Parsl's order, with Parsl's defaults)
    ------------------------------------------------------------
    nodes_per_block : nodes each block asks for (``#BSUB -nnodes``), when ``request_by_nodes``.
    cores_per_block, cores_per_node : with ``request_by_nodes=False``, the block asks for
        ``cores_per_block`` cores (``#BSUB -n``), ``cores_per_node`` per host
        (``span[ptile=...]``), and ``nodes_per_block`` becomes ``ceil(cores_per_block /
        cores_per_node)``.
    init_blocks, min_blocks, max_blocks, parallelism : see ``ExecutionProvider``.
    walltime : ``HH:MM:SS`` per block (``#BSUB -W``, in whole minutes).
    scheduler_options : ``#BSUB`` lines put after the provider's own.
    worker_init : shell lines run first in each block.
    project : charged for the blocks (``#BSUB -P``), when set.
    queue : the queue to submit to (``#BSUB -q``), when set.
    cmd_timeout : seconds any LSF command may take.
    bsub_redirection : submit with ``bsub < script`` instead of ``bsub script``.
    request_by_nodes : ask for nodes (True) or for cores (False, see above).
    launcher : how the block starts the executor's command (``SingleNodeLauncher()``;
        ``JsrunLauncher()`` on IBM systems such as Summit).
    channel : where ``bsub``/``bjobs``/``bkill`` run and scripts go (``LocalChannel()`` if None).
    """

    scheduler_name = "LSF"
    walltime_hms_only = True

    @typechecked_config
    def __init__(self, nodes_per_block: int = 1, cores_per_block: int | None = None,
                 cores_per_node: int | None = None, init_blocks: int = 1, min_blocks: int = 0, max_blocks: int = 1,
                 parallelism: float = 1, walltime: str = "00:10:00", scheduler_options: str = "",
                 worker_init: str = "", project: str | None = None, queue: str | None = None, cmd_timeout: int = 120,
                 bsub_redirection: bool = False, request_by_nodes: bool = True,
                 launcher: Launcher = SingleNodeLauncher(), channel: Channel | None = None) -> None:
        super().__init__("LSF", nodes_per_block, init_blocks, min_blocks, max_blocks, parallelism, walltime,
                         launcher, cmd_timeout=cmd_timeout, channel=channel)
        self.project = project
        self.queue = queue
        self.cores_per_block = cores_per_block
        self.cores_per_node = cores_per_node
        self.bsub_redirection = bsub_redirection
        self.request_by_nodes = request_by_nodes
        self.scheduler_options = scheduler_options
        self.worker_init = worker_init
        directives = [f"#BSUB -P {project}"] if project else []
        if queue:
            directives.append(f"#BSUB -q {queue}")
        if request_by_nodes:
            directives.append(f"#BSUB -nnodes {nodes_per_block}")
        else:
            if not cores_per_block or not cores_per_node:
                raise ConfigurationError(
                    "LSFProvider: fields 'cores_per_block' and 'cores_per_node' must both be set (and non-zero) "
                    f"when request_by_nodes=False; got {cores_per_block!r} and {cores_per_node!r}")
            directives += [f"#BSUB -n {cores_per_block}", f'#BSUB -R "span[ptile={cores_per_node}]"']
            self.nodes_per_block = math.ceil(cores_per_block / cores_per_node)  # what the strategy counts
        self._directives = "".join(line + "\n" for line in directives)

    # --- submit -------------------------------------------------------------------------------------
    def submit(self, command: str, tasks_per_node: int, job_name: str = "parsl.lsf") -> str:
        """Write the block's ``#BSUB`` script and ``bsub`` it; returns LSF's job id.

        Raises ``SubmitException`` with bsub's exit code and message when bsub fails or its
        answer names no job, and ``ScriptPathError`` when ``script_dir`` is not set."""
        job_name = f"{job_name}.{time.time()}"
        logger.debug("Requesting one block with %d nodes for %s", self.nodes_per_block, job_name)
        host_path, digest = self._render_and_push(template_string, job_name, ".submit", {
            "nodes": self.nodes_per_block, "tasks_per_node": tasks_per_node,
            "walltime": wtime_to_minutes(self.walltime),
            "scheduler_options": self.scheduler_options + "\n" + self._directives, "worker_init": self.worker_init},
            command, tasks_per_node)
        quoted = shlex.quote(host_path)
        retcode, stdout, stderr = self.execute_wait(f"bsub < {quoted}" if self.bsub_redirection else f"bsub {quoted}")
        if retcode == 0:
            for line in stdout.splitlines():
                match = _SUBMITTED.match(line.strip())
                if match:
                    job_id = match.group("id")
                    self._record_job(job_id, digest, host_path + ".stdout", host_path + ".stderr")
                    return job_id
        self._submit_failed(job_name, "bsub", retcode, stdout, stderr, expected="'Job <id> is submitted to ...'")

    # --- status -------------------------------------------------------------------------------------
    def _status(self) -> None:
        active = self._active_jobs()
        if not active:
            return
        retcode, stdout, stderr = self.execute_wait(
            f"bjobs -noheader -o 'jobid stat' {' '.join(map(shlex.quote, active))}")
        # bjobs exits non-zero when any job asked about is unknown ("Job <12> is not found")
        forgotten_only = all(_NOT_FOUND.match(line.strip()) for line in stderr.splitlines() if line.strip())
        if retcode != 0 and not (stderr.strip() and forgotten_only):
            logger.warning("bjobs failed (exit code %s), block states not updated: %s", retcode, stderr.strip())
            return
        seen: set[str] = set()
        for line in stdout.splitlines():
            parts = line.split()
            if len(parts) != 2 or parts[0] not in active:
                continue
            job_id, lsf_state = parts
            self._set_state(job_id, self._translate_state(translate_table, lsf_state, job_id, "bjobs"))
            seen.add(job_id)
        self._mark_unlisted_completed(active, seen, "bjobs")

    # --- cancel -------------------------------------------------------------------------------------
    def cancel(self, job_ids: Sequence[Any]) -> list[bool]:
        """``bkill`` the jobs; every entry True (and the jobs ``CANCELLED``) when bkill
        succeeded, every one False when it did not."""
        return self._cancel_with("bkill", job_ids)
