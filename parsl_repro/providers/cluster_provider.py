"""``ClusterProvider``: what every batch-scheduler provider (Slurm, PBS, LSF, ...) shares.

A scheduler provider subclasses it and writes three things, using the helpers below:

* ``submit(command, tasks_per_node, job_name)``: ``_render_and_push`` names the script (a local
  path under ``script_dir`` and the path the scheduler's host sees, which differ when the
  channel is remote), renders its template with the launcher's text (given the HOST's script
  directory), writes the local copy and pushes it to the host, returning the host path and the
  script's sha256. The provider runs its submit command on that (``shlex``-quoted) path with
  ``execute_wait``, records the job with ``_record_job`` and returns the job id, or calls
  ``_submit_failed`` (which raises ``SubmitException`` with one message format for every
  scheduler, "<tool> was not found on <host>" for exit code 127 included);
* ``_status()``: ask the scheduler about ``_active_jobs()`` (the jobs not yet terminal), turn
  each code into a ``JobState`` with ``_translate_state`` (an unknown code is ``UNKNOWN``, with a
  warning), store it with ``_set_state``, and call ``_mark_unlisted_completed`` for the jobs the
  scheduler no longer lists; ``status(job_ids)`` calls it and answers from ``self.resources``;
* ``cancel(job_ids)``: usually just ``self._cancel_with("qdel", job_ids)``.

``status_polling_interval`` is 60 s (Parsl's, for every scheduler); ``walltime`` is checked once,
in ``__init__``, in the forms the subclass accepts (``walltime_hms_only``).

Every scheduler command goes through ``execute_wait``, which runs it through the provider's
``channel`` (``LocalChannel()`` unless given: an ``SSHChannel`` runs the same commands on a
remote login node) and bounds it by ``cmd_timeout``. Paths in the script and in the commands are
the scheduler host's; the local copy of each script stays in the run directory, so the record
of what was submitted (``script_sha256``) never depends on the remote side.

The job's output files are on the scheduler's host too. ``JobStatus.stdout_path`` and
``stderr_path`` are read by this process (the executor's block error handler quotes them), so
with a remote channel a ``JobStatus`` never carries the host's paths: when a job ends in a state
that needs explaining (``FAILED``, ``TIMEOUT``, ...; not ``COMPLETED`` or ``CANCELLED``) both
files are pulled into the local ``script_dir`` and the status names those copies; otherwise it
names no files. ``resources[job_id]['job_stdout_path']`` keeps the host's path.
"""
from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import re
import shlex
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from string import Template
from typing import Any, NoReturn

from parsl_repro.channels.base import Channel
from parsl_repro.channels.local.local import LocalChannel
from parsl_repro.errors import ConfigurationError
from parsl_repro.jobs.states import TERMINAL_STATES, JobState, JobStatus
from parsl_repro.launchers.base import Launcher
from parsl_repro.launchers.errors import BadLauncher
from parsl_repro.providers.base import ExecutionProvider
from parsl_repro.providers.errors import SchedulerMissingArgs, ScriptPathError, SubmitException

logger = logging.getLogger(__name__)

_OUTPUT_NOT_PULLED = (JobState.COMPLETED, JobState.CANCELLED)
"""Terminal states whose output nobody needs to read: the error handlers quote the output of
failed blocks only, so pulling it for these would copy files for nothing."""


class ClusterProvider(ExecutionProvider):
    """Base class of providers that submit script files to a batch scheduler.

    Parameters: ``label`` (provider name), ``nodes_per_block``, ``init_blocks``, ``min_blocks``,
    ``max_blocks``, ``parallelism`` (see ``ExecutionProvider``), ``walltime`` (``HH:MM:SS`` per
    block; see ``check_walltime``), ``launcher`` (a ``Launcher`` instance), ``cmd_timeout``
    (seconds any scheduler command may take) and ``channel`` (where the scheduler's commands run
    and its scripts go; ``LocalChannel()`` when None).

    Class attributes a subclass may set: ``scheduler_name`` (in error messages: "run where the
    <scheduler_name> commands are on PATH") and ``walltime_hms_only`` (accept only ``HH:MM:SS``).
    """

    scheduler_name: str = "scheduler"
    walltime_hms_only: bool = False

    def __init__(self, label: str, nodes_per_block: int, init_blocks: int, min_blocks: int, max_blocks: int,
                 parallelism: float, walltime: str, launcher: Launcher, cmd_timeout: int = 10,
                 channel: Channel | None = None) -> None:
        if not isinstance(launcher, Launcher):
            raise BadLauncher(launcher)
        check_walltime(type(self).__name__, walltime, hms_only=self.walltime_hms_only)
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

    @property
    def label(self) -> str:
        return self._label

    @property
    def status_polling_interval(self) -> int:
        """60 s between two questions to the scheduler (Parsl's value for every scheduler: their
        servers are shared, and a block's state rarely changes faster)."""
        return 60

    def execute_wait(self, cmd: str, timeout: float | None = None) -> tuple[int, str, str]:
        """Run a scheduler command in a shell through the channel: ``(exit code, stdout,
        stderr)``, exit code -1 when it ran longer than ``timeout`` (default ``cmd_timeout``)
        seconds. A channel that cannot reach its host raises its ``ChannelError``."""
        return self.channel.execute_wait(cmd, self.cmd_timeout if timeout is None else timeout)

    # --- submit -------------------------------------------------------------------------------------
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

    def _render_and_push(self, template: str, job_name: str, suffix: str, configs: dict[str, Any],
                         command: str | None = None, tasks_per_node: int = 1) -> tuple[str, str]:
        """Write ``job_name + suffix`` from ``template`` and put it on the scheduler's host:
        ``(its path there, its sha256)``.

        Beside ``jobname`` and ``configs``, the template may use ``submit_script_dir`` (the
        script's directory on the host) and ``job_stdout_path``/``job_stderr_path`` (the host
        path of the script plus ``.stdout``/``.stderr``); ``configs`` may override the last two.
        When ``command`` is given, ``user_script`` is the launcher's text for it, rendered with
        the host's directory, so any command file the launcher writes lands there, never in the
        local run directory. Raises ``SchedulerMissingArgs``, ``ScriptPathError`` (see
        ``_write_submit_script``) and the channel's ``FileCopyException``."""
        local_path, host_path = self._script_paths(job_name, suffix)
        host_dir = posixpath.dirname(host_path)
        values = {"submit_script_dir": host_dir, "job_stdout_path": host_path + ".stdout",
                  "job_stderr_path": host_path + ".stderr", **configs}
        if command is not None:
            values["user_script"] = self.launcher(command, tasks_per_node, self.nodes_per_block, host_dir)
        digest = self._write_submit_script(template, local_path, job_name, values)
        return self._push_script(local_path), digest

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

    def _submit_failed(self, job_name: str, tool: str, retcode: int, out: str, err: str,
                       expected: str = "") -> NoReturn:
        """Log and raise ``SubmitException`` for a submit command that gave no job id.

        The message says why: ``<tool> was not found on <host>`` (exit code 127: the shell found
        no such command), that it did not finish within ``cmd_timeout`` (-1), that it printed no
        job id (exit code 0; ``expected`` describes the answer looked for), or its exit code and
        error output. The exception carries the exit code, stdout and stderr."""
        if retcode == 127:
            message = (f"{tool} was not found on {self.channel.hostname}: run where the {self.scheduler_name} "
                       "commands are on PATH (or put them there in the channel's environment)")
        elif retcode == -1:
            message = f"{tool} did not finish within cmd_timeout={self.cmd_timeout} s"
        elif retcode == 0:
            message = f"{tool} printed no job id" + (f" ({expected})" if expected else "")
        else:
            message = f"{tool} failed with exit code {retcode}: {err.strip() or out.strip()}"
        logger.error("%s for %s: stdout %r, stderr %r", message, job_name, out.strip(), err.strip())
        raise SubmitException(job_name, message, stdout=out, stderr=err, retcode=retcode)

    def _record_job(self, job_id: str, script_sha256: str | None, stdout_path: str | None = None,
                    stderr_path: str | None = None, state: JobState = JobState.PENDING, **extra: Any) -> None:
        """Keep ``job_id`` in ``resources`` with its state, output paths (on the scheduler's
        host) and script digest."""
        self.resources[job_id] = {"job_id": job_id, "job_stdout_path": stdout_path, "job_stderr_path": stderr_path,
                                  "script_sha256": script_sha256, **extra}
        self._set_state(job_id, state)

    # --- status -------------------------------------------------------------------------------------
    def _active_jobs(self) -> list[str]:
        """The recorded jobs that are not terminal, in submission order: the ones to ask about."""
        return [job_id for job_id, job in self.resources.items() if not job["status"].terminal]

    def _translate_state(self, table: Mapping[str, JobState], code: str, job_id: str, tool: str) -> JobState:
        """``table[code]``; a code the table lacks is ``UNKNOWN`` (asked about again at the next
        poll), with a warning naming ``tool``, the code and the job."""
        state = table.get(code)
        if state is None:
            logger.warning("%s state %r of job %s is not one this provider knows; taken as UNKNOWN",
                           tool, code, job_id)
            return JobState.UNKNOWN
        return state

    def _mark_unlisted_completed(self, active: Iterable[str], seen: set[str], tool: str) -> None:
        """Set every job of ``active`` that ``tool``'s answer did not list (not in ``seen``) to
        ``COMPLETED``: these schedulers list only jobs that are queued or running (or ended
        recently), so a job they have forgotten has ended."""
        for job_id in active:
            if job_id not in seen:
                self._set_state(job_id, JobState.COMPLETED, message=f"{tool} no longer lists this job: it has ended")

    def _set_state(self, job_id: str, state: JobState, message: str | None = None,
                   exit_code: int | None = None) -> None:
        """Set a recorded job's state, with output paths this process can read (see the module)."""
        job = self.resources[job_id]
        stdout_path, stderr_path = readable_output(self.channel, self.script_dir, job, state)
        job["status"] = JobStatus(state, message=message, exit_code=exit_code,
                                  stdout_path=stdout_path, stderr_path=stderr_path)

    @abstractmethod
    def _status(self) -> None:
        """Refresh ``self.resources[job_id]['status']`` for the jobs that are not terminal."""

    def status(self, job_ids: Sequence[Any]) -> list[JobStatus]:
        """The status of each job in ``job_ids``, refreshed from the scheduler first."""
        if job_ids:
            self._status()
        return [self.resources[job_id]["status"] for job_id in job_ids]

    # --- cancel -------------------------------------------------------------------------------------
    def _cancel_with(self, tool: str, job_ids: Sequence[Any], chunk_size: int = 0,
                     command: Callable[[list[str]], str] | None = None) -> list[bool]:
        """Cancel ``job_ids`` with ``tool`` (``qdel``, ``bkill``, ...): one command per
        ``chunk_size`` jobs (all at once when 0), ``<tool> <quoted ids>`` unless ``command``
        builds it from the chunk's ids. For each job of a chunk whose command exits 0, True and
        the job ``CANCELLED`` (through ``_set_state``, so its output paths are kept); for each
        job of a chunk whose command fails, False and the state unchanged (the failure is
        logged)."""
        ids = [str(job_id) for job_id in job_ids]
        size = chunk_size if chunk_size > 0 else max(len(ids), 1)
        results: list[bool] = []
        for start in range(0, len(ids), size):
            chunk = ids[start:start + size]
            cmd = command(chunk) if command is not None else f"{tool} " + " ".join(map(shlex.quote, chunk))
            retcode, stdout, stderr = self.execute_wait(cmd)
            if retcode != 0:
                logger.error("%s of %s failed (exit code %s): %s", tool, chunk, retcode,
                             stderr.strip() or stdout.strip())
                results += [False] * len(chunk)
                continue
            for job_id in chunk:
                if job_id in self.resources:
                    self._set_state(job_id, JobState.CANCELLED, message=f"cancelled with {tool}")
            results += [True] * len(chunk)
        return results


def readable_output(channel: Channel, local_dir: str | None, job: dict[str, Any],
                    state: JobState) -> tuple[str | None, str | None]:
    """Paths of a job's output files (``job['job_stdout_path']``, ``job['job_stderr_path']``, on
    the channel's host) that this process can open: the host's own with a local channel; with a
    remote one, copies pulled into ``local_dir`` once the job has ended in a state other than
    ``COMPLETED``/``CANCELLED`` (kept in the record, so pulled once), else none. A file that
    cannot be copied (a job that never started has none) is left out, logged at debug level."""
    host_paths = (job.get("job_stdout_path"), job.get("job_stderr_path"))
    if channel.is_local:
        return host_paths
    if state not in TERMINAL_STATES or state in _OUTPUT_NOT_PULLED:
        return None, None
    if "local_output_paths" not in job:
        job["local_output_paths"] = tuple(_pull(channel, path, local_dir) for path in host_paths)
    return job["local_output_paths"]


def _pull(channel: Channel, host_path: str | None, local_dir: str | None) -> str | None:
    if host_path is None or not local_dir:
        return None
    try:
        return channel.pull_file(host_path, local_dir)
    except Exception as e:  # a channel's FileCopyException, or its connection failing
        logger.debug("Could not copy job output %s from %s: %s", host_path, channel.hostname, e)
        return None


_WALLTIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")
_HMS = re.compile(r"^\d+:\d{2}:\d{2}$")


def check_walltime(owner: str, walltime: str, hms_only: bool = False) -> None:
    """Raise ``ConfigurationError`` naming the field unless ``walltime`` is a form ``owner``'s
    scheduler reads as meant.

    By default: ``[D-]HH:MM:SS`` (or ``MM:SS``, ``MM``, ``D-HH:MM``...), Slurm's forms, which the
    Slurm, Grid Engine and HTCondor providers convert. With ``hms_only``: ``HH:MM:SS`` alone
    (hours may exceed 24), the only form PBS, Torque, LSF and Cobalt all read the same way
    (``-l walltime=30`` is 30 *seconds* to PBS, and ``1-00:00:00`` is not understood)."""
    if not isinstance(walltime, str):
        raise ConfigurationError(f"{owner}: field 'walltime' must be a string such as 'HH:MM:SS', got {walltime!r}")
    if hms_only and not _HMS.match(walltime.strip()):
        raise ConfigurationError(f"{owner}: field 'walltime' must be 'HH:MM:SS' (hours may exceed 24), "
                                 f"got {walltime!r}")
    if not _WALLTIME.match(walltime.strip()):
        raise ConfigurationError(f"{owner}: field 'walltime' must look like 'HH:MM:SS' (or 'D-HH:MM:SS'), "
                                 f"got {walltime!r}")
