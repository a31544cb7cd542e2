"""``ClusterProvider``: what every batch-scheduler provider (Slurm, PBS, LSF, ...) shares.

A scheduler provider subclasses it and writes four things:

* ``submit(command, tasks_per_node, job_name)``: name the script with ``_script_paths`` (a local
  path under ``script_dir`` and the path the scheduler's host sees, which differ when the
  channel is remote), render its template there with ``_write_submit_script`` (the launcher's
  text goes in as ``user_script``; it returns the script's sha256), move it with
  ``_push_script``, run the scheduler's submit command with ``self.execute_wait``, record the
  job with ``_record_job`` and return the job id;
* ``_status()``: ask the scheduler about every job in ``self.resources`` that is not yet
  terminal and update each one's ``'status'``; ``status(job_ids)`` calls it and answers from
  ``self.resources``;
* ``cancel(job_ids)`` with the scheduler's cancel command;
* ``status_polling_interval``: how often the scheduler may be queried (Slurm uses 60 s).

Every scheduler command goes through ``execute_wait``, which runs it through the provider's
``channel`` (``LocalChannel()`` unless given: an ``SSHChannel`` runs the same commands on a
remote login node) and bounds it by ``cmd_timeout``. Paths in the script and in the commands are
the scheduler host's; the local copy of each script stays in the run directory, so the record
of what was submitted (``script_sha256``) never depends on the remote side.
"""
from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import re
from abc import abstractmethod
from collections.abc import Sequence
from string import Template
from typing import Any

from parsl_repro.channels.base import Channel
from parsl_repro.channels.local.local import LocalChannel
from parsl_repro.errors import ConfigurationError
from parsl_repro.jobs.states import JobState, JobStatus
from parsl_repro.launchers.base import Launcher
from parsl_repro.launchers.errors import BadLauncher
from parsl_repro.providers.base import ExecutionProvider
from parsl_repro.providers.errors import SchedulerMissingArgs, ScriptPathError

logger = logging.getLogger(__name__)


class ClusterProvider(ExecutionProvider):
    """Base class of providers that submit script files to a batch scheduler.

    Parameters: ``label`` (provider name), ``nodes_per_block``, ``init_blocks``, ``min_blocks``,
    ``max_blocks``, ``parallelism`` (see ``ExecutionProvider``), ``walltime`` (``HH:MM:SS`` per
    block), ``launcher`` (a ``Launcher`` instance), ``cmd_timeout`` (seconds any scheduler
    command may take) and ``channel`` (where the scheduler's commands run and its scripts go;
    ``LocalChannel()`` when None).
    """

    def __init__(self, label: str, nodes_per_block: int, init_blocks: int, min_blocks: int, max_blocks: int,
                 parallelism: float, walltime: str, launcher: Launcher, cmd_timeout: int = 10,
                 channel: Channel | None = None) -> None:
        if not isinstance(launcher, Launcher):
            raise BadLauncher(launcher)
        check_walltime(type(self).__name__, walltime)
        for name, value in (("nodes_per_block", nodes_per_block), ("init_blocks", init_blocks),
                            ("min_blocks", min_blocks), ("max_blocks", max_blocks), ("parallelism", parallelism)):
            if value < 0:
                raise ConfigurationError(f"{type(self).__name__}: field {name!r} must not be negative, got {value!r}")
        self.channel: Channel = channel if channel is not None else LocalChannel()
        self._label = label
        self.nodes_per_block = nodes_per_block
        self.init_blocks = init_blocks
        self.min_blocks = min_blocks
        self.max_blocks = max_blocks
        self.parallelism = parallelism
        self.walltime = walltime
        self.launcher = launcher
        self.cmd_timeout = cmd_timeout
        self.script_dir: str | None = None
        self.resources: dict[Any, dict[str, Any]] = {}
        self.cores_per_node: int | None = None
        self.mem_per_node: float | None = None

    def execute_wait(self, cmd: str, timeout: float | None = None) -> tuple[int, str, str]:
        """Run a scheduler command in a shell through the channel: ``(exit code, stdout,
        stderr)``, exit code -1 when it ran longer than ``timeout`` (default ``cmd_timeout``)
        seconds. A channel that cannot reach its host raises its ``ChannelError``."""
        return self.channel.execute_wait(cmd, self.cmd_timeout if timeout is None else timeout)

    def _script_paths(self, job_name: str, suffix: str = ".submit") -> tuple[str, str]:
        """``(local path, scheduler host's path)`` of ``job_name``'s submit script: under
        ``script_dir`` here, under the channel's ``script_dir`` there (the same path when the
        channel is local). Raises ``ScriptPathError`` when ``script_dir`` is not set."""
        if not self.script_dir:
            raise ScriptPathError(job_name + suffix, "script_dir is not set: the kernel sets it to "
                                  "<run_dir>/submit_scripts; set it yourself when using a provider alone")
        local = os.path.abspath(os.path.join(self.script_dir, job_name + suffix))
        if self.channel.is_local:
            return local, local
        return local, posixpath.join(self.channel.script_dir, job_name + suffix)

    def _push_script(self, local_path: str) -> str:
        """Put the script where the scheduler's host reads it; its path there."""
        if self.channel.is_local:
            return local_path
        return self.channel.push_file(local_path, self.channel.script_dir)

    def _record_job(self, job_id: str, script_sha256: str | None, stdout_path: str | None = None,
                    stderr_path: str | None = None, state: JobState = JobState.PENDING, **extra: Any) -> None:
        """Keep ``job_id`` in ``resources`` with its state, output paths and script digest."""
        self.resources[job_id] = {"job_id": job_id, "status": JobStatus(state, stdout_path=stdout_path,
                                                                        stderr_path=stderr_path),
                                  "job_stdout_path": stdout_path, "job_stderr_path": stderr_path,
                                  "script_sha256": script_sha256, **extra}

    def _set_state(self, job_id: str, state: JobState, message: str | None = None,
                   exit_code: int | None = None) -> None:
        """Set a recorded job's state (with its output paths)."""
        job = self.resources[job_id]
        job["status"] = JobStatus(state, message=message, exit_code=exit_code,
                                  stdout_path=job.get("job_stdout_path"), stderr_path=job.get("job_stderr_path"))

    def _write_submit_script(self, template: str, script_filename: str, job_name: str,
                             configs: dict[str, Any]) -> str:
        """Fill ``template`` (``string.Template`` syntax: ``${name}``) with ``jobname`` and
        ``configs``, write it to ``script_filename`` and return its sha256 (hex).

        Raises ``SchedulerMissingArgs`` naming a placeholder that has no value, and
        ``ScriptPathError`` when the file cannot be written.
        """
        try:
            script = Template(template).substitute(jobname=job_name, **configs)
        except KeyError as e:
            logger.error("Submit script template for %s uses %s, which has no value", job_name, e)
            raise SchedulerMissingArgs(e.args, self.label) from e
        try:
            os.makedirs(os.path.dirname(script_filename) or ".", exist_ok=True)
            with open(script_filename, "w") as f:
                f.write(script)
        except OSError as e:
            logger.error("Could not write submit script %s: %s", script_filename, e)
            raise ScriptPathError(script_filename, e) from e
        return hashlib.sha256(script.encode()).hexdigest()

    @abstractmethod
    def _status(self) -> None:
        """Refresh ``self.resources[job_id]['status']`` for the jobs that are not terminal."""

    def status(self, job_ids: Sequence[Any]) -> list[JobStatus]:
        """The status of each job in ``job_ids``, refreshed from the scheduler first."""
        if job_ids:
            self._status()
        return [self.resources[job_id]["status"] for job_id in job_ids]

    @property
    def label(self) -> str:
        return self._label


_WALLTIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")


def check_walltime(owner: str, walltime: str) -> None:
    """Raise ``ConfigurationError`` naming the field unless ``walltime`` reads as ``[D-]HH:MM:SS``
    (or ``MM:SS``, ``MM``, ``D-HH:MM``...), the forms every scheduler here takes."""
    if not isinstance(walltime, str) or not _WALLTIME.match(walltime.strip()):
        raise ConfigurationError(f"{owner}: field 'walltime' must look like 'HH:MM:SS' (or 'D-HH:MM:SS'), "
                                 f"got {walltime!r}")
