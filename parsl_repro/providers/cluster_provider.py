"""``ClusterProvider``: what every batch-scheduler provider (Slurm, PBS, LSF, ...) shares.

A scheduler provider subclasses it and writes four things:

* ``submit(command, tasks_per_node, job_name)``: render its script template with
  ``_write_submit_script`` (the launcher's text goes in as ``user_script``), run the scheduler's
  submit command with ``self.execute_wait``, record the job in ``self.resources[job_id]`` as
  ``{'job_id': ..., 'status': JobStatus(...), ...}`` and return the job id;
* ``_status()``: ask the scheduler about every job in ``self.resources`` that is not yet
  terminal and update each one's ``'status'``; ``status(job_ids)`` calls it and answers from
  ``self.resources``;
* ``cancel(job_ids)`` with the scheduler's cancel command;
* ``status_polling_interval``: how often the scheduler may be queried (Slurm uses 60 s).

Every scheduler command goes through ``execute_wait`` so that it is bounded by ``cmd_timeout``;
a later channel (SSH) can override that one method to run the same commands elsewhere.
"""
from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Sequence
from string import Template
from typing import Any

from parsl_repro.jobs.states import JobStatus
from parsl_repro.launchers.base import Launcher
from parsl_repro.launchers.errors import BadLauncher
from parsl_repro.providers.base import ExecutionProvider
from parsl_repro.providers.errors import SchedulerMissingArgs, ScriptPathError
from parsl_repro.utils import execute_wait

logger = logging.getLogger(__name__)


class ClusterProvider(ExecutionProvider):
    """Base class of providers that submit script files to a batch scheduler.

    Parameters: ``label`` (provider name), ``nodes_per_block``, ``init_blocks``, ``min_blocks``,
    ``max_blocks``, ``parallelism`` (see ``ExecutionProvider``), ``walltime`` (``HH:MM:SS`` per
    block), ``launcher`` (a ``Launcher`` instance) and ``cmd_timeout`` (seconds any scheduler
    command may take).
    """

    def __init__(self, label: str, nodes_per_block: int, init_blocks: int, min_blocks: int, max_blocks: int,
                 parallelism: float, walltime: str, launcher: Launcher, cmd_timeout: int = 10) -> None:
        if not isinstance(launcher, Launcher):
            raise BadLauncher(launcher)
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
        """Run a scheduler command in a shell: ``(exit code, stdout, stderr)``, exit code -1 when
        it ran longer than ``timeout`` (default ``cmd_timeout``) seconds."""
        return execute_wait(cmd, self.cmd_timeout if timeout is None else timeout)

    def _write_submit_script(self, template: str, script_filename: str, job_name: str,
                             configs: dict[str, Any]) -> None:
        """Fill ``template`` (``string.Template`` syntax: ``${name}``) with ``jobname`` and
        ``configs`` and write it to ``script_filename``.

        Raises ``SchedulerMissingArgs`` naming a placeholder that has no value, and
        ``ScriptPathError`` when the file cannot be written.
        """
        try:
            script = Template(template).substitute(jobname=job_name, **configs)
        except KeyError as e:
            logger.error("Submit script template for %s uses %s, which has no value", job_name, e)
            raise SchedulerMissingArgs(e.args, self.label) from e
        try:
            with open(script_filename, "w") as f:
                f.write(script)
        except OSError as e:
            logger.error("Could not write submit script %s: %s", script_filename, e)
            raise ScriptPathError(script_filename, e) from e

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
