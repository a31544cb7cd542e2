"""Moving bytes for the staging providers: HTTP(S) and FTP downloads, and the wrapper that runs
such a transfer where the task runs ("in-task" staging).

The functions here run on workers as well as in the submitting process, so they use only the
standard library and raise errors that name the URL and what went wrong.
"""
from __future__ import annotations

import ftplib
import logging
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from functools import partial, update_wrapper
from typing import Any
from urllib.parse import unquote, urlparse

from parsl_repro.errors import ParslError
from parsl_repro.utils import redact_secrets

logger = logging.getLogger(__name__)

#: seconds a transfer may wait on a silent server before it fails
TIMEOUT = 60.0


class StagingTransferError(ParslError):
    """A file could not be fetched or written while staging; the message names the URL."""


def local_destination(filename: str, working_dir: str | None) -> str:
    """Where a fetched file lands: in ``working_dir`` when the executor has one, else in the
    task's current directory."""
    return os.path.join(working_dir, filename) if working_dir else filename


def _prepare(path: str) -> None:
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)


def fetch_http(url: str, local_path: str) -> None:
    """Download an ``http``/``https`` URL to ``local_path``."""
    _prepare(local_path)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(local_path, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except urllib.error.HTTPError as e:
        raise StagingTransferError(f"Cannot stage in {redact_secrets(url)}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = e.reason if isinstance(e, urllib.error.URLError) else e
        raise StagingTransferError(f"Cannot stage in {redact_secrets(url)} to {local_path}: {reason}") from None
    logger.debug("Fetched %s to %s", redact_secrets(url), local_path)


def fetch_ftp(url: str, local_path: str) -> None:
    """Download an ``ftp`` URL (``ftp://[user[:password]@]host[:port]/path``; anonymous when no
    user is given) to ``local_path``."""
    parsed = urlparse(url)
    directory, name = os.path.split(unquote(parsed.path))
    _prepare(local_path)
    try:
        with ftplib.FTP(timeout=TIMEOUT) as ftp, open(local_path, "wb") as out:
            ftp.connect(parsed.hostname or "", parsed.port or 21)
            ftp.login(unquote(parsed.username or "anonymous"), unquote(parsed.password or ""))
            if directory:
                ftp.cwd(directory)
            ftp.retrbinary(f"RETR {name}", out.write)
    except ftplib.all_errors as e:
        try:
            os.remove(local_path)
        except OSError:
            pass
        raise StagingTransferError(f"Cannot stage in {redact_secrets(url)}: {type(e).__name__}: {e}") from None
    logger.debug("Fetched %s to %s", redact_secrets(url), local_path)


class InTaskStaging:
    """The app function with transfers run just before it (stage in) or just after it returns
    (stage out), in the worker that runs the task. Picklable when the function is; wraps it as
    ``functools.wraps`` would, so the app keeps its name and its identity for memoization."""

    def __init__(self, func: Callable, before: Sequence[Callable[[], Any]] = (),
                 after: Sequence[Callable[[], Any]] = ()) -> None:
        update_wrapper(self, func)
        self.func = func
        self.before = tuple(before)
        self.after = tuple(after)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for step in self.before:
            step()
        result = self.func(*args, **kwargs)
        for step in self.after:
            step()
        return result

    def __repr__(self) -> str:
        return f"<InTaskStaging of {self.func!r}: {len(self.before)} before, {len(self.after)} after>"


def stage_in_download(fetch: Callable[[str, str], None], parent_fut: Any = None, outputs: Sequence[Any] = (),
                      _parsl_staging_inhibit: bool = True) -> None:
    """The body of a separate stage-in task: fetch the File ``outputs[0]`` from its URL to its
    local path. (The URL travels inside the File, whose record in the store hides a password.)"""
    fetch(outputs[0].url, os.fspath(outputs[0]))


class DownloadStaging:
    """Stage-in by download, for the FTP and HTTP providers: as a separate task on the same
    executor before the app (``in_task=False``, needs a file system the app's worker shares
    with the staging task's), or inside the app's own task (``in_task=True``, needs nothing
    shared). The file lands in the executor's ``working_dir`` if it has one, else in the
    worker's current directory, under the URL's file name."""

    schemes: tuple[str, ...] = ()
    in_task = False

    @staticmethod
    def fetch(url: str, local_path: str) -> None:
        raise NotImplementedError

    def can_stage_in(self, file: Any) -> bool:
        return file.scheme in self.schemes

    def stage_in(self, dm: Any, executor: str, file: Any, parent_fut: Any) -> Any:
        file.local_path = local_destination(file.filename, getattr(dm.dfk.executors[executor], "working_dir", None))
        if self.in_task:
            return None
        app_fu = dm.submit_staging(stage_in_download, executor, self.fetch, outputs=[file],
                                   _parsl_staging_inhibit=True, parent_fut=parent_fut)
        return app_fu.outputs[0]

    def replace_task(self, dm: Any, executor: str, file: Any, func: Callable) -> Callable | None:
        if not self.in_task:
            return None
        return InTaskStaging(func, before=[partial(self.fetch, file.url, file.local_path)])
