"""``CondorProvider``: blocks are HTCondor jobs.

A block is two files (``template.py``): a submit description for ``condor_submit`` and the job
script it runs with ``/bin/bash`` (``worker_init`` and the launcher's text), both put on the
scheduler's host by the channel. ``condor_submit`` answers ``N job(s) submitted to cluster C.``;
the block's job id is ``C.0``. States come from ``condor_q <ids> -af:jr JobStatus`` (one
``<id> <code>`` line per job) through ``translate_table``. The submit description keeps ended jobs
in the queue, so ``condor_q`` still reports how they ended; ``condor_rm`` cancels, then
``condor_rm -forcex`` purges them. Commands are sent ``cmd_chunk_size`` jobs at a time.
"""
from __future__ import annotations

import logging
import posixpath
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

from parsl_repro.channels.base import Channel
from parsl_repro.jobs.states import JobState
from parsl_repro.launchers import SingleNodeLauncher
from parsl_repro.launchers.base import Launcher
from parsl_repro.providers.cluster_provider import ClusterProvider
from parsl_repro.providers.condor.template import template_string, user_script_template
from parsl_repro.providers.errors import SubmitException
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin

logger = logging.getLogger(__name__)

translate_table = {
    "1": JobState.PENDING,  # Idle
    "2": JobState.RUNNING,
    "3": JobState.CANCELLED,  # Removed
    "4": JobState.COMPLETED,
    "5": JobState.FAILED,  # Held: a job is held when it cannot go on (input missing, policy), so it never ends
    "6": JobState.FAILED,  # Transferring output
}
"""HTCondor's ``JobStatus`` codes (HTCondor manual, "Job ClassAd Attributes") as block states:
Parsl's table. Code 7 (Suspended) is not in it and reads as ``UNKNOWN``."""

_SUBMITTED = re.compile(r"(?P<count>\d+) job\(s\) submitted to cluster (?P<cluster>\d+)\.")


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), max(size, 1)):
        yield items[start:start + max(size, 1)]


def _classad_quoted(value: str) -> str:
    """``value`` as a single-quoted word of a submit file's ``environment = "..."`` (HTCondor's
    new syntax: a quote of either kind is written twice)."""
    return "'" + value.replace('"', '""').replace("'", "''") + "'"


class CondorProvider(RepresentationMixin, ClusterProvider):
    """Blocks from an HTCondor pool. To Parsl, a Condor slot is a node.

    Parameters (Parsl's, in Parsl's order, with Parsl's defaults)
    ------------------------------------------------------------
    nodes_per_block : ``machine_count`` of each block's job.
    cores_per_slot : cores to ask for per slot (``RequestCpus``, and ``PARSL_CORES`` in the job);
        None leaves it to the pool.
    mem_per_slot : GB per slot to ask for (``RequestMemory``, in MB, and ``PARSL_MEMORY_GB``).
    init_blocks, min_blocks, max_blocks, parallelism : see ``ExecutionProvider``.
    environment : variables set in the job (``environment = "..."``), plus ``JOBNAME``.
    project : ``+projectname`` of the job.
    scheduler_options : lines added to the submit description.
    transfer_input_files : more files or directories sent with the job.
    walltime : ``HH:MM:SS``; kept for the strategy, not sent to HTCondor (as in Parsl).
    worker_init : shell lines run first in each block.
    launcher : how the block starts the executor's command (``SingleNodeLauncher()``).
    requirements : the job's ``requirements`` expression.
    cmd_timeout : seconds any HTCondor command may take.
    cmd_chunk_size : jobs named per ``condor_q``/``condor_rm`` call.
    channel : where the commands run and the files go (``LocalChannel()`` if None).
    """

    @typechecked_config
    def __init__(self, nodes_per_block: int = 1, cores_per_slot: int | None = None, mem_per_slot: float | None = None,
                 init_blocks: int = 1, min_blocks: int = 0, max_blocks: int = 1, parallelism: float = 1,
                 environment: dict[str, str] | None = None, project: str = "", scheduler_options: str = "",
                 transfer_input_files: list[str] = [],  # noqa: B006 - Parsl's default; copied, never changed
                 walltime: str = "00:10:00", worker_init: str = "", launcher: Launcher = SingleNodeLauncher(),
                 requirements: str = "", cmd_timeout: int = 60, cmd_chunk_size: int = 100,
                 channel: Channel | None = None) -> None:
        super().__init__("condor", nodes_per_block, init_blocks, min_blocks, max_blocks, parallelism, walltime,
                         launcher, cmd_timeout=cmd_timeout, channel=channel)
        self.cores_per_slot = cores_per_slot
        self.mem_per_slot = mem_per_slot
        self.cores_per_node = cores_per_slot  # a slot is what Parsl calls a node
        self.mem_per_node = mem_per_slot
        self.environment = dict(environment or {})
        self.project = project
        self.scheduler_options = scheduler_options
        self.transfer_input_files = list(transfer_input_files)
        self.worker_init = worker_init
        self.requirements = requirements
        self.cmd_chunk_size = cmd_chunk_size

    @property
    def status_polling_interval(self) -> int:
        return 60

    # --- submit -------------------------------------------------------------------------------------
    def submit(self, command: str, tasks_per_node: int, job_name: str = "parsl.condor") -> str:
        """Write the block's job script and submit description, ``condor_submit`` them, and
        return the block's job id (``<cluster>.0``).

        Raises ``SubmitException`` with condor_submit's exit code and message when it fails or
        reports no cluster, and ``ScriptPathError`` when ``script_dir`` is not set."""
        job_name = f"parsl.{job_name}.{time.time()}"
        scheduler_options, worker_init = self.scheduler_options + "\n", self.worker_init + "\n"
        if self.mem_per_slot is not None:
            scheduler_options += f"RequestMemory = {self.mem_per_slot * 1024}\n"
            worker_init += f"export PARSL_MEMORY_GB={self.mem_per_slot}\n"
        if self.cores_per_slot is not None:
            scheduler_options += f"RequestCpus = {self.cores_per_slot}\n"
            worker_init += f"export PARSL_CORES={self.cores_per_slot}\n"
        local_submit, host_submit = self._script_paths(job_name, ".submit")
        local_job_script, host_job_script = self._script_paths(job_name, ".script")
        host_dir = posixpath.dirname(host_submit)
        job_script_digest = self._write_submit_script(user_script_template, local_job_script, job_name, {
            "worker_init": worker_init,
            "user_script": self.launcher(command, tasks_per_node, self.nodes_per_block, host_dir)})
        host_job_script = self._push_script(local_job_script)
        environment = {**self.environment, "JOBNAME": job_name}
        digest = self._write_submit_script(template_string, local_submit, job_name, {
            "job_name": job_name, "submit_script_dir": host_dir, "project": self.project,
            "nodes": self.nodes_per_block, "scheduler_options": scheduler_options, "worker_init": worker_init,
            "tasks_per_node": tasks_per_node, "requirements": self.requirements,
            "environment": " ".join(f"{key}={_classad_quoted(value)}" for key, value in environment.items()),
            "input_files": ",".join([host_job_script, *self.transfer_input_files]),
            "job_script": posixpath.basename(host_job_script)})
        retcode, stdout, stderr = self.execute_wait(f"condor_submit {self._push_script(local_submit)}")
        job_ids = [f"{match['cluster']}.{process}" for match in _SUBMITTED.finditer(stdout)
                   for process in range(int(match["count"]))] if retcode == 0 else []
        if job_ids:
            for job_id in job_ids:  # one per "queue" statement; scheduler_options may add some
                self._record_job(job_id, digest, f"{host_dir}/{job_name}.stdout", f"{host_dir}/{job_name}.stderr",
                                 job_script_sha256=job_script_digest)
            return job_ids[0]
        if retcode == 127:
            message = (f"condor_submit was not found on {self.channel.hostname}: run where the HTCondor "
                       "commands are on PATH")
        elif retcode == 0:
            message = "condor_submit reported no job ('N job(s) submitted to cluster C.')"
        else:
            message = f"condor_submit failed with exit code {retcode}: {stderr.strip() or stdout.strip()}"
        logger.error("%s for %s: stdout %r, stderr %r", message, job_name, stdout.strip(), stderr.strip())
        raise SubmitException(job_name, message, stdout=stdout, stderr=stderr, retcode=retcode)

    # --- status -------------------------------------------------------------------------------------
    def _status(self) -> None:
        active = [job_id for job_id, job in self.resources.items() if not job["status"].terminal]
        for chunk in _chunks(active, self.cmd_chunk_size):
            retcode, stdout, stderr = self.execute_wait(f"condor_q {' '.join(chunk)} -af:jr JobStatus")
            if retcode != 0:  # keep what is known; ask again next poll
                logger.warning("condor_q failed (exit code %s), block states not updated: %s",
                               retcode, stderr.strip())
                continue
            seen: set[str] = set()
            for line in stdout.splitlines():
                parts = line.split()
                if len(parts) != 2 or parts[0] not in chunk:
                    continue
                job_id, code = parts
                state = translate_table.get(code)
                if state is None:
                    logger.warning("HTCondor JobStatus %r of job %s is not one this provider knows", code, job_id)
                    state = JobState.UNKNOWN
                self._set_state(job_id, state)
                seen.add(job_id)
            for job_id in set(chunk) - seen:  # purged from the queue (condor_rm -forcex, or by hand)
                self._set_state(job_id, JobState.COMPLETED, message="condor_q no longer lists this job")

    # --- cancel -------------------------------------------------------------------------------------
    def cancel(self, job_ids: Sequence[Any]) -> list[bool]:
        """``condor_rm`` the jobs, then purge them with ``condor_rm -forcex``; True (and
        ``CANCELLED``) for each job of a chunk whose commands succeeded, False for the others."""
        results: list[bool] = []
        for chunk in _chunks([str(job_id) for job_id in job_ids], self.cmd_chunk_size):
            ids = " ".join(chunk)
            retcode, _, stderr = self.execute_wait(f"condor_rm {ids}; condor_rm -forcex {ids}")
            if retcode != 0:
                logger.error("condor_rm of %s failed (exit code %s): %s", list(chunk), retcode, stderr.strip())
                results += [False] * len(chunk)
                continue
            for job_id in chunk:
                if job_id in self.resources:
                    self._set_state(job_id, JobState.CANCELLED, message="cancelled with condor_rm")
            results += [True] * len(chunk)
        return results
