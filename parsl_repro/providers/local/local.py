"""``LocalProvider``: blocks are bash processes on this machine.

Each block is a submit script (``worker_init``, ``JOBNAME``, then the launcher's text) run by
``bash`` in a new session, so the script and every process it starts share one process group,
and cancelling the block signals that whole group. A block's output goes to
``<script>.out`` and ``<script>.err`` beside its script in ``script_dir``. Blocks are not tied to
this process: one that is never cancelled keeps running after the workflow exits.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import Any

from parsl_repro.errors import ConfigurationError
from parsl_repro.jobs.states import JobState, JobStatus
from parsl_repro.launchers import SingleNodeLauncher
from parsl_repro.launchers.base import Launcher
from parsl_repro.launchers.errors import BadLauncher
from parsl_repro.providers.base import ExecutionProvider
from parsl_repro.providers.errors import ScriptPathError, SubmitException
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin

logger = logging.getLogger(__name__)


class LocalProvider(ExecutionProvider, RepresentationMixin):
    """Runs each block as a process tree on the local host.

    Parameters
    ----------
    nodes_per_block : nodes per block, passed to the launcher (this host counts as each of them).
    launcher : renders how the block's script starts ``tasks_per_node * nodes_per_block`` copies
        of the executor's command (default ``SingleNodeLauncher()``).
    init_blocks, min_blocks, max_blocks : blocks started at the beginning, kept at least, and
        allowed at most.
    worker_init : shell lines run at the top of every block's script, e.g. activating an
        environment.
    cmd_timeout : kept for Parsl compatibility; a local block starts without any scheduler
        command, so nothing here waits on it.
    parallelism : task slots wanted per outstanding task, from 0 (as few blocks as possible)
        to 1 (a slot for every task).
    move_files : accepted for configurations written for older Parsl, where it controlled
        copying scripts through a channel; local blocks read their scripts in place.

    The provider's record of a block, ``resources[job_id]``, holds ``job_id`` (the block
    process's pid, as a string), ``status``, ``remote_pid``, ``script_path`` and ``cancelled``.
    """

    CANCEL_GRACE = 1.0
    """Seconds ``cancel`` waits, in all, for the blocks it signalled to exit."""

    @typechecked_config
    def __init__(self, nodes_per_block: int = 1, launcher: Launcher = SingleNodeLauncher(), init_blocks: int = 1,
                 min_blocks: int = 0, max_blocks: int = 1, worker_init: str = "", cmd_timeout: int = 30,
                 parallelism: float = 1, move_files: bool | None = None) -> None:
        if not isinstance(launcher, Launcher):
            raise BadLauncher(launcher)
        for name, value in (("nodes_per_block", nodes_per_block), ("init_blocks", init_blocks),
                            ("min_blocks", min_blocks), ("max_blocks", max_blocks), ("parallelism", parallelism)):
            if value < 0:
                raise ConfigurationError(f"LocalProvider: field {name!r} must not be negative, got {value!r}")
        self._label = "local"
        self.nodes_per_block = nodes_per_block
        self.launcher = launcher
        self.init_blocks = init_blocks
        self.min_blocks = min_blocks
        self.max_blocks = max_blocks
        self.worker_init = worker_init
        self.cmd_timeout = cmd_timeout
        self.parallelism = parallelism
        self.move_files = move_files
        self.script_dir: str | None = None
        self.resources: dict[str, dict[str, Any]] = {}
        self.cores_per_node: int | None = None
        self.mem_per_node: float | None = None
        self._processes: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        return self._label

    @property
    def status_polling_interval(self) -> int:
        return 5

    def submit(self, command: str, tasks_per_node: int, job_name: str = "parsl.localprovider") -> str:
        """Write the block's script to ``script_dir`` and start it; returns the job id (its pid).

        Raises ``ScriptPathError`` when the script cannot be written (``script_dir`` unset or not
        writable) and ``SubmitException`` when bash cannot be started.
        """
        if not self.script_dir:
            raise ScriptPathError(f"{job_name}.sh", "script_dir is not set: the kernel sets it to "
                                  "<run_dir>/submit_scripts; set it yourself when using a provider alone")
        job_name = f"{job_name}.{time.time()}"
        script_path = os.path.abspath(os.path.join(self.script_dir, f"{job_name}.sh"))
        script = (f"{self.worker_init}\nexport JOBNAME={job_name}\n"
                  + self.launcher(command, tasks_per_node, self.nodes_per_block, self.script_dir))
        try:
            os.makedirs(self.script_dir, exist_ok=True)
            with open(script_path, "w") as f:
                f.write(script)
        except OSError as e:
            raise ScriptPathError(script_path, e) from e

        stdout_path, stderr_path = script_path + ".out", script_path + ".err"
        try:
            with open(stdout_path, "w") as out, open(stderr_path, "w") as err:
                # a new session makes the script the leader of its own process group, which
                # cancel() signals as a whole; nothing else in this process is in that group
                process = subprocess.Popen(["/bin/bash", script_path], stdin=subprocess.DEVNULL, stdout=out,
                                           stderr=err, start_new_session=True)
        except OSError as e:
            raise SubmitException(job_name, f"could not start /bin/bash {script_path}: {e}") from e

        job_id = str(process.pid)
        with self._lock:
            self._processes[job_id] = process
            self.resources[job_id] = {"job_id": job_id, "status": JobStatus(JobState.RUNNING),
                                      "remote_pid": process.pid, "script_path": script_path, "cancelled": False}
        logger.debug("Started block %s as pid %s: %s", job_name, job_id, script_path)
        return job_id

    def status(self, job_ids: Sequence[Any]) -> list[JobStatus]:
        """Each job's status, read from its process: RUNNING while the script runs, COMPLETED or
        FAILED (with exit code and output files) when it exits, CANCELLED when a signal ended it
        (message ``Killed by ...`` when parsl_repro did not send that signal)."""
        with self._lock:
            for job_id, record in self.resources.items():
                if record["status"].terminal:
                    continue
                returncode = self._processes[job_id].poll()
                if returncode is not None:
                    record["status"] = self._final_status(record, returncode)
                    self._processes.pop(job_id)
            return [self.resources[str(job_id)]["status"] for job_id in job_ids]

    @staticmethod
    def _final_status(record: dict[str, Any], returncode: int) -> JobStatus:
        script_path = record["script_path"]
        outputs = {"stdout_path": script_path + ".out", "stderr_path": script_path + ".err"}
        if returncode < 0:
            if record["cancelled"]:
                return JobStatus(JobState.CANCELLED, **outputs)
            name = signal.Signals(-returncode).name
            return JobStatus(JobState.CANCELLED, message=f"Killed by {name}, not by parsl_repro", **outputs)
        state = JobState.COMPLETED if returncode == 0 else JobState.FAILED
        return JobStatus(state, exit_code=returncode, **outputs)

    def cancel(self, job_ids: Sequence[Any]) -> list[bool]:
        """Send SIGTERM to each block's whole process group, then give the blocks up to
        ``CANCEL_GRACE`` seconds (together) to exit, so that their processes are reaped.

        True for each job that was signalled or had already ended; False when the signal was
        refused. Its status becomes CANCELLED once the script has exited.
        """
        results = []
        signalled = []
        for job_id in job_ids:
            with self._lock:
                record = self.resources[str(job_id)]
                record["cancelled"] = True
                process = self._processes.get(str(job_id))
            try:
                os.killpg(record["remote_pid"], signal.SIGTERM)
                logger.debug("Sent SIGTERM to block process group %s", job_id)
                results.append(True)
                if process is not None:
                    signalled.append(process)
            except ProcessLookupError:
                logger.debug("Block %s had already ended when cancelled", job_id)
                results.append(True)
            except PermissionError as e:
                logger.warning("Could not cancel block %s (process group %s): %s", job_id, record["remote_pid"], e)
                results.append(False)
        # blocks are our children: one that exits unwatched stays a zombie until someone waits
        deadline = time.monotonic() + self.CANCEL_GRACE
        for process in signalled:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.debug("Block pid %s still running %.1f s after SIGTERM", process.pid, self.CANCEL_GRACE)
        return results
