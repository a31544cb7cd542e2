"""``LocalProvider``: blocks are bash processes on this machine.

Each block is a submit script (``worker_init``, ``JOBNAME``, then the launcher's text) run by
``bash`` in a new session, so the script and every process it starts share one process group,
and cancelling the block signals that whole group. A block's output goes to
``<script>.out`` and ``<script>.err`` beside its script in ``script_dir``. Blocks are not tied to
this process: one that is never cancelled keeps running after the workflow exits.

With a remote ``channel`` (an ``SSHChannel``), "local" means the channel's host: the script is
copied to the channel's ``script_dir`` there and started in a new session in the background
(``setsid``), its exit status written beside it (``<script>.ec``) when it ends; status asks the
host which blocks still run and reads those files, and cancel signals each block's process group
there. That is how a login node, or a workstation reached over SSH, serves blocks.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import Any

from parsl_repro.channels.base import Channel
from parsl_repro.channels.local.local import LocalChannel
from parsl_repro.errors import ConfigurationError
from parsl_repro.jobs.states import JobState, JobStatus
from parsl_repro.launchers import SingleNodeLauncher
from parsl_repro.launchers.base import Launcher
from parsl_repro.launchers.errors import BadLauncher
from parsl_repro.providers.base import ExecutionProvider
from parsl_repro.providers.cluster_provider import readable_output
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
        copying scripts through a channel; scripts are copied exactly when the channel is remote.
    channel : where blocks run (``LocalChannel()`` by default: this machine); see the module.

    The provider's record of a block, ``resources[job_id]``, holds ``job_id`` (the block
    process's pid, as a string), ``status``, ``remote_pid``, ``script_path`` and ``cancelled``.
    """

    CANCEL_GRACE = 1.0
    """Seconds ``cancel`` waits, in all, for the blocks it signalled to exit."""

    @typechecked_config
    def __init__(self, nodes_per_block: int = 1, launcher: Launcher = SingleNodeLauncher(), init_blocks: int = 1,
                 min_blocks: int = 0, max_blocks: int = 1, worker_init: str = "", cmd_timeout: int = 30,
                 parallelism: float = 1, move_files: bool | None = None, channel: Channel | None = None) -> None:
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
        self.channel: Channel = channel if channel is not None else LocalChannel()
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
        # the launcher's files go where the block runs: the channel's script_dir on a remote host
        block_dir = self.script_dir if self.channel.is_local else self.channel.script_dir
        script = (f"{self.worker_init}\nexport JOBNAME={job_name}\n"
                  + self.launcher(command, tasks_per_node, self.nodes_per_block, block_dir))
        try:
            os.makedirs(self.script_dir, exist_ok=True)
            with open(script_path, "w") as f:
                f.write(script)
        except OSError as e:
            raise ScriptPathError(script_path, e) from e

        digest = hashlib.sha256(script.encode()).hexdigest()
        if not self.channel.is_local:
            return self._submit_remote(job_name, script_path, digest)
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
                                      "remote_pid": process.pid, "script_path": script_path, "cancelled": False,
                                      "script_sha256": digest}
        logger.debug("Started block %s as pid %s: %s", job_name, job_id, script_path)
        return job_id

    # --- blocks on the channel's host -----------------------------------------------------------------
    def _submit_remote(self, job_name: str, local_path: str, digest: str) -> str:
        """Copy the script to the channel's host and start it there in a new session; its pid
        (the session's, so the block's process group) is the job id."""
        remote = self.channel.push_file(local_path, self.channel.script_dir)
        quoted = shlex.quote(remote)
        start = (f"setsid /bin/bash -c '/bin/bash \"$0\" > \"$0.out\" 2> \"$0.err\"; echo $? > \"$0.ec\"' "
                 f"{quoted} < /dev/null > /dev/null 2>&1 & echo $!")
        code, out, err = self.channel.execute_wait(start, self.cmd_timeout)
        pid = out.strip().splitlines()[-1] if out.strip() else ""
        if code != 0 or not pid.isdigit():
            raise SubmitException(job_name, f"could not start the block on {self.channel.hostname}",
                                  stdout=out, stderr=err, retcode=code)
        job_id = pid
        with self._lock:
            self.resources[job_id] = {"job_id": job_id, "status": JobStatus(JobState.RUNNING),
                                      "remote_pid": int(pid), "script_path": remote, "cancelled": False,
                                      "script_sha256": digest, "job_stdout_path": remote + ".out",
                                      "job_stderr_path": remote + ".err"}
        logger.debug("Started block %s on %s as pid %s: %s", job_name, self.channel.hostname, job_id, remote)
        return job_id

    def _status_remote(self) -> None:
        """One command asks the host about every live block: its exit status if it has one,
        else whether its process still runs."""
        with self._lock:
            live = {job_id: r for job_id, r in self.resources.items() if not r["status"].terminal}
        if not live:
            return
        probe = "; ".join(
            f"if [ -e {shlex.quote(r['script_path'] + '.ec')} ]; then echo {job_id} ec "
            f"$(cat {shlex.quote(r['script_path'] + '.ec')}); elif kill -0 {job_id} 2>/dev/null; then "
            f"echo {job_id} running; else echo {job_id} gone; fi" for job_id, r in live.items())
        code, out, err = self.channel.execute_wait(probe, self.cmd_timeout)
        if code != 0:
            logger.warning("Block status query on %s failed (exit code %s): %s", self.channel.hostname, code,
                           err.strip())
            return
        with self._lock:
            for line in out.splitlines():
                fields = line.split()
                if len(fields) < 2 or fields[0] not in live:
                    continue
                record = live[fields[0]]
                if fields[1] == "ec" and len(fields) == 3 and fields[2].lstrip("-").isdigit():
                    ended = self._final_status(record, int(fields[2]))
                elif fields[1] == "gone":  # ended without writing its status: a signal
                    ended = JobStatus(JobState.CANCELLED, message=None if record["cancelled"] else
                                      f"Block process {fields[0]} on {self.channel.hostname} ended by a signal, "
                                      f"not by parsl_repro")
                else:
                    continue
                # its output is on the host: the error handler gets copies (of a failed block's)
                stdout, stderr = readable_output(self.channel, self.script_dir, record, ended.state)
                record["status"] = JobStatus(ended.state, ended.message, ended.exit_code, stdout, stderr)

    def _cancel_remote(self, job_ids: Sequence[Any]) -> list[bool]:
        """SIGTERM each block's process group on the host, and SIGKILL it ``CANCEL_GRACE``
        seconds later from there (in the background), for blocks that ignore SIGTERM."""
        with self._lock:
            for job_id in job_ids:
                record = self.resources.get(str(job_id))
                if record is not None:
                    record["cancelled"] = True
        grace = self.CANCEL_GRACE + 1
        kills = "; ".join(f"kill -TERM -- -{int(job_id)} 2>/dev/null; echo {int(job_id)} $?; "
                          f"(sleep {grace}; kill -KILL -- -{int(job_id)}) >/dev/null 2>&1 < /dev/null &"
                          for job_id in job_ids)
        code, out, err = self.channel.execute_wait(kills, self.cmd_timeout)
        if code != 0:
            logger.error("Cancelling blocks %s on %s failed: %s", list(job_ids), self.channel.hostname, err.strip())
            return [False] * len(job_ids)
        return [True] * len(job_ids)  # an exit status 1 means the block had already ended

    def status(self, job_ids: Sequence[Any]) -> list[JobStatus]:
        """Each job's status, read from its process: RUNNING while the script runs, COMPLETED or
        FAILED (with exit code and output files) when it exits, CANCELLED when a signal ended it
        (message ``Killed by ...`` when parsl_repro did not send that signal)."""
        if not self.channel.is_local:
            self._status_remote()
            with self._lock:
                return [self.resources[str(job_id)]["status"] for job_id in job_ids]
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
        if not self.channel.is_local:
            return self._cancel_remote(job_ids)
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
