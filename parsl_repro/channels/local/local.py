"""``LocalChannel``: commands and files on this machine."""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
from typing import IO, cast

from parsl_repro.channels.base import Channel, ChannelProcess
from parsl_repro.channels.errors import FileCopyException, FileExists
from parsl_repro.utils import RepresentationMixin

logger = logging.getLogger(__name__)


class _LocalProcess:
    """A local ``subprocess.Popen`` as a ``ChannelProcess``."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.stdin = cast(IO[bytes], proc.stdin)
        self.stdout = cast(IO[bytes], proc.stdout)
        self.pid = proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired as e:
            raise TimeoutError(str(e)) from e

    def terminate(self) -> None:
        try:
            self.stdin.close()
        except OSError:
            pass
        _signal_group(self.proc, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL it and the commands its shell started."""
        _signal_group(self.proc, signal.SIGKILL)

    @property
    def returncode(self) -> int | None:
        """Its exit status once it has ended (as ``Popen.returncode``), else None."""
        return self.proc.poll()


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    """Signal the process group ``proc`` leads (it was started in a session of its own), so that
    the commands its shell started get it too."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


class LocalChannel(Channel, RepresentationMixin):
    """Runs commands with ``/bin/bash`` here, in ``userhome`` (default: the working directory),
    with ``envs`` added to the environment; files are copied with the file system. Paths on "the
    host" (``dest_dir``, ``remote_source``, ``makedirs``, ``isdir``) that are relative start at
    ``userhome``, as the commands' do; local paths (``source``, ``local_dir``) at the working
    directory.

    ``script_dir`` is set by the kernel (``<run_dir>/submit_scripts``) unless given."""

    def __init__(self, userhome: str = ".", envs: dict[str, str] | None = None,
                 script_dir: str | None = None) -> None:
        self.userhome = os.path.abspath(userhome)
        self.envs = dict(envs or {})
        self._script_dir = os.path.abspath(script_dir) if script_dir else None
        self.hostname = "localhost"

    @property
    def is_local(self) -> bool:
        return True

    def _env(self, envs: dict[str, str] | None) -> dict[str, str]:
        return {**os.environ, **self.envs, **(envs or {})}

    def execute_wait(self, cmd: str, walltime: float | None = None,
                     envs: dict[str, str] | None = None) -> tuple[int, str, str]:
        # a session of its own, so that at the walltime the commands its shell started (which
        # hold its output pipes open) are killed with it
        proc = subprocess.Popen(["/bin/bash", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, cwd=self.userhome, env=self._env(envs),
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=walltime)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            out, err = proc.communicate()
            logger.warning("Command %r timed out after %s s", cmd, walltime)
            return -1, out.decode(errors="replace"), err.decode(errors="replace")
        return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    def execute_no_wait(self, cmd: str, envs: dict[str, str] | None = None) -> ChannelProcess:
        proc = subprocess.Popen(["/bin/bash", "-c", cmd], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                cwd=self.userhome, env=self._env(envs), start_new_session=True)
        return _LocalProcess(proc)

    @property
    def script_dir(self) -> str | None:  # type: ignore[override]
        """Set by the kernel (``<run_dir>/submit_scripts``) unless given; None until then."""
        return self._script_dir

    @script_dir.setter
    def script_dir(self, value: str | None) -> None:
        self._script_dir = os.path.abspath(value) if value else None

    def push_file(self, source: str, dest_dir: str) -> str:
        dest_dir = self.abspath(dest_dir)
        dest = os.path.join(dest_dir, os.path.basename(source))
        if os.path.abspath(dest) == os.path.abspath(source):
            return os.path.abspath(source)
        try:
            os.makedirs(dest_dir, exist_ok=True)
            shutil.copy2(source, dest)
        except OSError as e:
            raise FileCopyException(e, self.hostname, f"could not copy {source} to {dest_dir}") from e
        return os.path.abspath(dest)

    def pull_file(self, remote_source: str, local_dir: str) -> str:
        source = self.abspath(remote_source)
        dest = os.path.join(local_dir, os.path.basename(source))
        if os.path.abspath(dest) == source:
            return source
        try:
            os.makedirs(local_dir, exist_ok=True)
            shutil.copy2(source, dest)
        except OSError as e:
            raise FileCopyException(e, self.hostname, f"could not copy {remote_source} to {local_dir}") from e
        return os.path.abspath(dest)

    def makedirs(self, path: str, mode: int = 0o700, exist_ok: bool = False) -> None:
        path = self.abspath(path)
        try:
            os.makedirs(path, mode, exist_ok)
        except FileExistsError as e:
            raise FileExists(e, self.hostname, path) from e

    def isdir(self, path: str) -> bool:
        return os.path.isdir(self.abspath(path))

    def abspath(self, path: str) -> str:
        """``path`` made absolute; relative paths start at ``userhome``, where commands run."""
        return os.path.abspath(os.path.join(self.userhome, os.path.expanduser(path)))

    def close(self) -> bool:
        return False
