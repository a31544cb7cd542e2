"""``SlurmProvider``: blocks are Slurm batch jobs.

A block is a batch script (``template.py``: ``#SBATCH`` directives for nodes, walltime, tasks
per node and the options below, then ``worker_init`` and the launcher's text) written under
``script_dir`` and submitted with ``sbatch``. Job states come from ``sacct`` where Slurm keeps
accounting, else from ``squeue`` (which forgets a job once it ends, so a job it no longer lists
counts as completed); ``scancel`` cancels. Every command runs through the provider's channel,
bounded by ``cmd_timeout``: with an ``SSHChannel`` the same commands run on a remote login node,
and the script is copied to the channel's ``script_dir`` there first.

The 2018 form, ``SlurmProvider('westmere', channel=SSHInteractiveLoginChannel(...),
nodes_per_block=1, tasks_per_node=4, overrides='module load python')``, keeps working:
``tasks_per_node`` fixes the copies of the worker command per node (the executor's own count is
used when it is None), and ``overrides`` holds lines put after the ``#SBATCH`` section
(``#SBATCH`` lines or shell lines), before ``worker_init``.
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
from parsl_repro.providers.slurm.template import template_string
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin, wtime_to_minutes

logger = logging.getLogger(__name__)

SACCT_STATES = {
    "PENDING": JobState.PENDING, "REQUEUED": JobState.PENDING, "RUNNING": JobState.RUNNING,
    "COMPLETED": JobState.COMPLETED, "CANCELLED": JobState.CANCELLED, "FAILED": JobState.FAILED,
    "NODE_FAIL": JobState.FAILED, "BOOT_FAIL": JobState.FAILED, "REVOKED": JobState.FAILED,
    "OUT_OF_MEMORY": JobState.FAILED, "TIMEOUT": JobState.TIMEOUT, "DEADLINE": JobState.TIMEOUT,
    "PREEMPTED": JobState.TIMEOUT, "SUSPENDED": JobState.HELD,
}
"""sacct's job state names (slurm.schedmd.com/sacct.html, JOB STATE CODES) as block states."""

SQUEUE_STATES = {
    "PD": JobState.PENDING, "CF": JobState.PENDING, "R": JobState.RUNNING, "CG": JobState.RUNNING,
    "CD": JobState.COMPLETED, "CA": JobState.CANCELLED, "F": JobState.FAILED, "NF": JobState.FAILED,
    "RV": JobState.FAILED, "SE": JobState.FAILED, "OOM": JobState.FAILED, "BF": JobState.FAILED,
    "TO": JobState.TIMEOUT, "DL": JobState.TIMEOUT, "PR": JobState.TIMEOUT, "S": JobState.HELD,
}
"""squeue's compact state codes (``%t``) as block states."""


class SlurmProvider(ClusterProvider, RepresentationMixin):
    """Blocks from a Slurm cluster.

    Parameters (Parsl's, with Parsl's defaults)
    -------------------------------------------
    partition, account, qos, constraint, clusters : the ``#SBATCH`` option of that name, when set.
    nodes_per_block : nodes each block asks for.
    cores_per_node : cores per node to ask for (``--cpus-per-task`` = cores / tasks per node, and
        ``PARSL_CORES`` in the job); None leaves it to Slurm.
    mem_per_node : GB per node to ask for (``--mem``, and ``PARSL_MEMORY_GB`` in the job).
    gpus_per_node, gres : ``--gpus-per-node`` and ``--gres``.
    init_blocks, min_blocks, max_blocks, parallelism : see ``ExecutionProvider``.
    walltime : ``HH:MM:SS`` per block (sent to Slurm in whole minutes).
    scheduler_options : extra lines for the script's ``#SBATCH`` section.
    regex_job_id : how to find the job id in ``sbatch``'s output (a group named ``id``).
    worker_init : shell lines run first in each block (activate an environment, load modules).
    cmd_timeout : seconds any Slurm command may take.
    status_batch_size : jobs asked about per ``sacct``/``squeue`` call.
    exclusive : ask for whole nodes (``--exclusive``).
    launcher : how the block starts the executor's command on its nodes (``SingleNodeLauncher()``
        by default; ``SrunLauncher()`` for several nodes).
    channel : where ``sbatch``, ``squeue``, ``sacct`` and ``scancel`` run (``LocalChannel()`` by
        default; an ``SSHChannel`` for a cluster reached from elsewhere).
    tasks_per_node, overrides, label : the 2018 API's copies per node, extra script lines and
        provider name (see the module).

    ``resources[job_id]`` holds ``job_id``, ``status``, ``job_stdout_path`` and
    ``job_stderr_path`` (the block's own output, on the scheduler's host; see ``ClusterProvider``
    for what the executor gets to read when the channel is remote) and ``script_sha256``.
    """

    scheduler_name = "Slurm"

    @typechecked_config
    def __init__(self, partition: str | None = None, account: str | None = None, qos: str | None = None,
                 constraint: str | None = None, clusters: str | None = None, nodes_per_block: int = 1,
                 cores_per_node: int | None = None, mem_per_node: int | None = None,
                 gpus_per_node: int | None = None, gres: str | None = None, init_blocks: int = 1,
                 min_blocks: int = 0, max_blocks: int = 1, parallelism: float = 1, walltime: str = "00:10:00",
                 scheduler_options: str = "", regex_job_id: str = r"Submitted batch job (?P<id>\S*)",
                 worker_init: str = "", cmd_timeout: int = 10, status_batch_size: int = 50,
                 exclusive: bool = True, launcher: Launcher = SingleNodeLauncher(), channel: Channel | None = None,
                 tasks_per_node: int | None = None, overrides: str = "", label: str = "slurm") -> None:
        super().__init__(label, nodes_per_block, init_blocks, min_blocks, max_blocks, parallelism, walltime,
                         launcher=launcher, cmd_timeout=cmd_timeout, channel=channel)
        if tasks_per_node is not None and tasks_per_node < 1:
            raise ConfigurationError(f"SlurmProvider: field 'tasks_per_node' must be at least 1, got {tasks_per_node}")
        self.tasks_per_node = tasks_per_node
        self.overrides = overrides
        if overrides:  # 2018: lines after the #SBATCH section, before the worker command
            worker_init = f"{overrides}\n{worker_init}"
        self.partition = partition
        self.account = account
        self.qos = qos
        self.constraint = constraint
        self.clusters = clusters
        self.cores_per_node = cores_per_node
        self.mem_per_node = mem_per_node
        self.gpus_per_node = gpus_per_node
        self.gres = gres
        self.exclusive = exclusive
        self.regex_job_id = regex_job_id
        self.status_batch_size = status_batch_size
        self.worker_init = worker_init + "\n"
        directives = [("exclusive", "" if exclusive else None), ("partition", partition), ("account", account),
                      ("qos", qos), ("constraint", constraint), ("clusters", clusters),
                      ("gpus-per-node", gpus_per_node), ("gres", gres)]
        self.scheduler_options = scheduler_options + "\n" + "".join(
            f"#SBATCH --{name}\n" if value == "" else f"#SBATCH --{name}={value}\n"
            for name, value in directives if value is not None)
        self._use_sacct: bool | None = None  # decided by the first status query

    def _clusters_option(self) -> str:
        return f" --clusters={self.clusters}" if self.clusters else ""

    # --- submit -------------------------------------------------------------------------------------
    def submit(self, command: str, tasks_per_node: int, job_name: str = "parsl.slurm") -> str:
        """Write the block's batch script and ``sbatch`` it; returns the Slurm job id.

        Raises ``SubmitException`` (with ``sbatch``'s exit code and output) when ``sbatch`` fails
        or prints no job id that ``regex_job_id`` matches."""
        if self.tasks_per_node is not None:
            tasks_per_node = self.tasks_per_node
        scheduler_options, worker_init = self.scheduler_options, self.worker_init
        if self.mem_per_node is not None:
            scheduler_options += f"#SBATCH --mem={self.mem_per_node}g\n"
            worker_init += f"export PARSL_MEMORY_GB={self.mem_per_node}\n"
        if self.cores_per_node is not None:
            cpus_per_task = math.floor(self.cores_per_node / tasks_per_node)
            scheduler_options += f"#SBATCH --cpus-per-task={cpus_per_task}\n"
            worker_init += f"export PARSL_CORES={cpus_per_task}\n"
        job_name = f"{job_name}.{time.time()}"
        script_path, sha256 = self._render_and_push(template_string, job_name, "", {
            "nodes": self.nodes_per_block, "tasks_per_node": tasks_per_node,
            "walltime": wtime_to_minutes(self.walltime), "scheduler_options": scheduler_options,
            "worker_init": worker_init}, command, tasks_per_node)
        logger.debug("Submitting block %s (%d nodes) with sbatch", job_name, self.nodes_per_block)
        retcode, stdout, stderr = self.execute_wait(f"sbatch{self._clusters_option()} {shlex.quote(script_path)}")
        if retcode == 0:
            for line in stdout.splitlines():
                match = re.match(self.regex_job_id, line)
                if match:
                    job_id = match.group("id")
                    self._record_job(job_id, sha256, script_path + ".stdout", script_path + ".stderr")
                    return job_id
        self._submit_failed(job_name, "sbatch", retcode, stdout, stderr,
                            expected=f"a line matching regex_job_id {self.regex_job_id!r}")

    # --- status -------------------------------------------------------------------------------------
    def _status(self) -> None:
        active = self._active_jobs()
        if not active:
            return
        if self._use_sacct is None:
            retcode, _, stderr = self.execute_wait(f"sacct{self._clusters_option()} -X --noheader -j {active[0]}")
            self._use_sacct = retcode == 0
            logger.debug("Block states come from %s%s", "sacct" if self._use_sacct else "squeue",
                         "" if self._use_sacct else f" (sacct: {stderr.strip()})")
        tool = "sacct" if self._use_sacct else "squeue"
        states = SACCT_STATES if self._use_sacct else SQUEUE_STATES
        seen: set[str] = set()
        for start in range(0, len(active), self.status_batch_size):
            ids = ",".join(active[start:start + self.status_batch_size])
            if self._use_sacct:
                cmd = f"sacct{self._clusters_option()} -X --noheader --format=jobid,state%20 --job '{ids}'"
            else:
                cmd = f"squeue{self._clusters_option()} --noheader --format='%i %t' --job '{ids}'"
            retcode, stdout, stderr = self.execute_wait(cmd)
            if retcode != 0 and not self._use_sacct and "invalid job id" in stderr.lower():
                retcode, stdout = 0, ""  # squeue asked only about jobs it has forgotten: they ended
            if retcode != 0:  # keep what is known; the next poll asks again
                logger.warning("Block status query failed (exit code %s): %s", retcode, stderr.strip())
                return
            for line in stdout.splitlines():
                fields = line.split()  # sacct may add words: "123 CANCELLED by 0"
                if len(fields) < 2 or fields[0] not in self.resources:
                    continue
                job_id = fields[0]
                self._set_state(job_id, self._translate_state(states, fields[1].rstrip("+"), job_id, tool))
                seen.add(job_id)
        if not self._use_sacct:  # squeue lists only jobs still queued or running
            self._mark_unlisted_completed(active, seen, "squeue")

    # --- cancel -------------------------------------------------------------------------------------
    def cancel(self, job_ids: Sequence[Any]) -> list[bool]:
        """``scancel`` the jobs; every entry True (and the jobs ``CANCELLED``, their output paths
        kept) when it succeeded, every one False when not."""
        return self._cancel_with(f"scancel{self._clusters_option()}", job_ids)
