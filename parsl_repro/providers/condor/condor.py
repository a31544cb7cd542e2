"""``CondorProvider``: blocks are HTCondor jobs.

A block is two files (``template.py``): a submit description for ``condor_submit`` and the job
script it runs with ``/bin/bash`` (``worker_init`` and the launcher's text), both put on the
scheduler's host by the channel. ``condor_submit`` answers ``N job(s) submitted to cluster C.``;
the block's job id is ``C.0``. States come from ``condor_q <ids> -af:jr JobStatus`` (one
``<id> <code>`` line per job) through ``translate_table``. The submit description keeps ended jobs
in the queue, so ``condor_q`` still reports how they ended; ``condor_rm`` cancels, then
``condor_rm -forcex`` purges them. Commands are sent ``cmd_chunk_size`` blocks at a time.

One block is one job id. Should ``scheduler_options`` queue more jobs, the block is still
``C.0``: its record lists them all (``cluster_job_ids``) and ``cancel`` removes every one, so
none outlives the run. Through a remote channel, ``transfer_input_files`` (paths on this
machine) are copied to the scheduler's host before ``condor_submit`` reads them.
"""
from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import re
import shlex
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
    transfer_input_files : more files or directories sent with the job. Paths on this machine:
        through a remote channel, each (a file, or a URL) is first copied to the scheduler's
        host (see ``_input_files_on_host``).
    walltime : ``HH:MM:SS``; kept for the strategy, not sent to HTCondor (as in Parsl).
    worker_init : shell lines run first in each block.
    launcher : how the block starts the executor's command (``SingleNodeLauncher()``).
    requirements : the job's ``requirements`` expression.
    cmd_timeout : seconds any HTCondor command may take.
    cmd_chunk_size : jobs named per ``condor_q``/``condor_rm`` call.
    channel : where the commands run and the files go (``LocalChannel()`` if None).
    """

    scheduler_name = "HTCondor"

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

    # --- submit -------------------------------------------------------------------------------------
    def submit(self, command: str, tasks_per_node: int, job_name: str = "parsl.condor") -> str:
        """Write the block's job script and submit description, put them (and, through a remote
        channel, ``transfer_input_files``) on the scheduler's host, ``condor_submit`` them, and
        return the block's job id (``<cluster>.0``).

        ``resources[job_id]`` records ``job_script_sha256`` (the job script, which holds the
        command), ``submit_sha256`` (the submit description) and ``script_sha256``: the sha256
        of both files concatenated, submit description first, so that it covers everything the
        job runs. When ``scheduler_options`` queue more than one job, ``cluster_job_ids`` lists
        them all: the block's state is its first job's, and ``cancel`` removes every one.

        Raises ``SubmitException`` with condor_submit's exit code and message when it fails or
        reports no cluster, or when an input file cannot be sent through a remote channel, and
        ``ScriptPathError`` when ``script_dir`` is not set."""
        job_name = f"parsl.{job_name}.{time.time()}"
        scheduler_options, worker_init = self.scheduler_options + "\n", self.worker_init + "\n"
        if self.mem_per_slot is not None:
            scheduler_options += f"RequestMemory = {self.mem_per_slot * 1024}\n"
            worker_init += f"export PARSL_MEMORY_GB={self.mem_per_slot}\n"
        if self.cores_per_slot is not None:
            scheduler_options += f"RequestCpus = {self.cores_per_slot}\n"
            worker_init += f"export PARSL_CORES={self.cores_per_slot}\n"
        host_job_script, job_script_sha256 = self._render_and_push(
            user_script_template, job_name, ".script", {"worker_init": worker_init}, command, tasks_per_node)
        host_dir = posixpath.dirname(host_job_script)
        environment = {**self.environment, "JOBNAME": job_name}
        host_submit, submit_sha256 = self._render_and_push(template_string, job_name, ".submit", {
            "job_name": job_name, "project": self.project, "nodes": self.nodes_per_block,
            "scheduler_options": scheduler_options, "worker_init": worker_init, "tasks_per_node": tasks_per_node,
            "requirements": self.requirements,
            "environment": " ".join(f"{key}={_classad_quoted(value)}" for key, value in environment.items()),
            "input_files": ",".join([host_job_script, *self._input_files_on_host(job_name)]),
            "job_script": posixpath.basename(host_job_script)})
        retcode, stdout, stderr = self.execute_wait(f"condor_submit {shlex.quote(host_submit)}")
        job_ids = [f"{match['cluster']}.{process}" for match in _SUBMITTED.finditer(stdout)
                   for process in range(int(match["count"]))] if retcode == 0 else []
        if not job_ids:
            self._submit_failed(job_name, "condor_submit", retcode, stdout, stderr,
                                expected="'N job(s) submitted to cluster C.'")
        if len(job_ids) > 1:  # scheduler_options added "queue" statements
            logger.warning("condor_submit queued %d jobs for block %s (%s): the block is %s, and cancelling it "
                           "removes them all", len(job_ids), job_name, ", ".join(job_ids), job_ids[0])
        self._record_job(job_ids[0], self._concatenated_sha256(job_name), f"{host_dir}/{job_name}.stdout",
                         f"{host_dir}/{job_name}.stderr", job_script_sha256=job_script_sha256,
                         submit_sha256=submit_sha256, cluster_job_ids=job_ids)
        return job_ids[0]

    def _concatenated_sha256(self, job_name: str) -> str:
        """sha256 of the local copies of the submit description and the job script, in that order."""
        digest = hashlib.sha256()
        for suffix in (".submit", ".script"):
            with open(self._script_paths(job_name, suffix)[0], "rb") as f:
                digest.update(f.read())
        return digest.hexdigest()

    def _input_files_on_host(self, job_name: str) -> list[str]:
        """``transfer_input_files`` as paths ``condor_submit`` can read on the scheduler's host.

        With a local channel they are used as given. With a remote one each local file is
        copied to ``<channel script_dir>/<job_name>.inputs/`` on the host (a directory per block,
        so files of the same name from different blocks never overwrite each other) and that
        path is used; an entry with ``://`` is a URL HTCondor fetches itself and is kept. A
        directory, or a path that is no file here, raises ``SubmitException``: the channel
        copies files only."""
        if self.channel.is_local:
            return list(self.transfer_input_files)
        dest_dir = posixpath.join(self.channel.script_dir, f"{job_name}.inputs")
        on_host = []
        for path in self.transfer_input_files:
            if "://" in path:
                on_host.append(path)
                continue
            if not os.path.isfile(path):
                raise SubmitException(job_name, f"transfer_input_files entry {path!r} is not a file on this machine: "
                                                f"through a channel to {self.channel.hostname} each entry is copied "
                                                "to the scheduler's host, and only files can be (list a directory's "
                                                "files, or give a URL)")
            on_host.append(self.channel.push_file(os.path.abspath(path), dest_dir))
        return on_host

    # --- status -------------------------------------------------------------------------------------
    def _status(self) -> None:
        for chunk in _chunks(self._active_jobs(), self.cmd_chunk_size):
            retcode, stdout, stderr = self.execute_wait(
                f"condor_q {' '.join(map(shlex.quote, chunk))} -af:jr JobStatus")
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
                self._set_state(job_id, self._translate_state(translate_table, code, job_id, "condor_q"))
                seen.add(job_id)
            # purged from the queue (condor_rm -forcex, or by hand)
            self._mark_unlisted_completed(chunk, seen, "condor_q")

    # --- cancel -------------------------------------------------------------------------------------
    def cancel(self, job_ids: Sequence[Any]) -> list[bool]:
        """``condor_rm`` the blocks' jobs (every job each block's submission queued), then purge
        them with ``condor_rm -forcex``; True (and ``CANCELLED``) for each block of a chunk whose
        commands succeeded, False for the others."""
        def remove_and_purge(blocks: list[str]) -> str:
            ids = " ".join(shlex.quote(job_id) for block in blocks
                           for job_id in self.resources.get(block, {}).get("cluster_job_ids", [block]))
            return f"condor_rm {ids}; condor_rm -forcex {ids}"

        return self._cancel_with("condor_rm", job_ids, self.cmd_chunk_size, remove_and_purge)
