"""Zip archives as files: ``zip:/path/to/archive.zip/inside/name.txt`` names the member
``inside/name.txt`` of ``/path/to/archive.zip``.

Stage out writes the task's output into the executor's ``working_dir`` and then, in a task of
its own on the submitting side, adds it to the archive (creating it) and removes the loose copy.
Stage in extracts the member to ``working_dir`` (or the current directory) before the app runs.
Writers of one archive take an exclusive ``fcntl`` lock on ``<archive>.lock``, so concurrent
stage-outs from this or other runs on the same host never corrupt it (the lock does not protect
against programs that do not take it), and each writes a new archive that replaces the old one
whole, so readers, who take no lock, never see one half written.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from parsl_repro.data_provider.files import File
from parsl_repro.data_provider.staging import Staging
from parsl_repro.errors import ParslError
from parsl_repro.utils import RepresentationMixin

logger = logging.getLogger(__name__)


class ZipAuthorityError(ParslError):
    """A ``zip:`` URL with a host part (``zip://host/...``), which has no meaning here."""

    def __init__(self, file: File) -> None:
        super().__init__(file.url)
        self.file = file

    def __str__(self) -> str:
        return (f"ZipFileStaging cannot stage {self.file.url!r}: zip URLs have no authority (host) part, "
                f"but this one has {self.file.netloc!r}. Write zip:/path/to/archive.zip/member")


def zip_path_split(path: str) -> tuple[str, str]:
    """``(archive path, member path)`` of the path part of a ``zip:`` URL, split after the first
    ``.zip/``."""
    index = path.find(".zip/")
    if index < 0:
        raise ValueError(f"zip URL path {path!r} names no member: expected /path/to/archive.zip/member")
    return path[:index + 4], path[index + 5:]


@contextmanager
def _locked(zip_file: str) -> Iterator[None]:
    with open(zip_file + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def zip_stage_out(zip_file: str, inside_path: str, working_dir: str | None, parent_fut: Any = None,
                  inputs: Sequence[Any] = (), _parsl_staging_inhibit: bool = True) -> None:
    """The stage-out task: add ``inputs[0]`` to ``zip_file`` as ``inside_path``, then remove it."""
    path = os.fspath(inputs[0])
    directory = os.path.dirname(zip_file)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with _locked(zip_file):
        # the new archive is written beside the old and renamed over it, so a reader (which takes
        # no lock: another task's output already staged, say) sees the old archive or the new
        # one, never one half appended to
        partial = f"{zip_file}.{os.getpid()}.partial"
        try:
            if os.path.exists(zip_file):
                shutil.copy2(zip_file, partial)
            with zipfile.ZipFile(partial, mode="a", compression=zipfile.ZIP_DEFLATED) as archive:
                archive.write(path, arcname=inside_path)
            os.replace(partial, zip_file)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise
    os.remove(path)


def zip_stage_in(zip_file: str, inside_path: str, working_dir: str | None, parent_fut: Any = None,
                 outputs: Sequence[Any] = (), _parsl_staging_inhibit: bool = True) -> None:
    """The stage-in task: write member ``inside_path`` of ``zip_file`` to ``outputs[0]``."""
    target = os.fspath(outputs[0])
    directory = os.path.dirname(target)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with _locked(zip_file), zipfile.ZipFile(zip_file, mode="r") as archive:
        content = archive.read(inside_path)
    with open(target, "wb") as out:
        out.write(content)


class ZipFileStaging(Staging, RepresentationMixin):
    """Stages ``zip:`` files in and out (see the module docstring). Stage out needs the
    executor to have a ``working_dir``."""

    def can_stage_in(self, file: File) -> bool:
        return self.is_zip_url(file)

    def can_stage_out(self, file: File) -> bool:
        return self.is_zip_url(file)

    def is_zip_url(self, file: File) -> bool:
        if file.scheme != "zip":
            return False
        if file.netloc:
            raise ZipAuthorityError(file)
        return True

    def stage_out(self, dm: Any, executor: str, file: File, app_fu: Any) -> Any:
        zip_file, inside_path = zip_path_split(file.path)
        working_dir = getattr(dm.dfk.executors[executor], "working_dir", None)
        if not working_dir:
            raise ParslError(f"Cannot stage out {file.url!r}: zip stage out needs a working_dir on executor "
                             f"{executor!r}, where the task writes the file before it goes into the archive")
        file.local_path = os.path.join(working_dir, inside_path)
        os.makedirs(os.path.dirname(file.local_path), exist_ok=True)
        return dm.submit_staging(zip_stage_out, "_parsl_internal", zip_file, inside_path, working_dir, inputs=[file],
                                 _parsl_staging_inhibit=True, parent_fut=app_fu)

    def stage_in(self, dm: Any, executor: str, file: File, parent_fut: Any) -> Any:
        zip_file, inside_path = zip_path_split(file.path)
        working_dir = getattr(dm.dfk.executors[executor], "working_dir", None)
        file.local_path = os.path.join(working_dir, inside_path) if working_dir else inside_path
        app_fu = dm.submit_staging(zip_stage_in, "_parsl_internal", zip_file, inside_path, working_dir,
                                   outputs=[file], _parsl_staging_inhibit=True, parent_fut=parent_fut)
        return app_fu.outputs[0]
