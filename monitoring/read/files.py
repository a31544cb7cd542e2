"""Files as entities, for the Files pages: every file of the store with the task that made it and
how many tasks used it; one file with every use in any run and the other records of the same
content; a run's files by role; and whether a recorded file is still on this machine unchanged.

Lists are bounded (``Page``) and newest first; look-ups go through ``file_use``'s indexes on
``file_id`` and ``(run_id, task_id)`` and ``file``'s on ``sha256``."""
from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from sqlalchemy import Engine, and_, func, or_, select, true

from parsl_repro.errors import ParslError
from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.read.common import Page, require_run, row_dict, rows

FILE_LIMIT = 100
USE_LIMIT = 500
SAME_CONTENT_LIMIT = 100
ROLE_LIMIT = 50
HASH_LIMIT = 64 << 20
"""Files larger than this are not hashed to compare with the record (it would hold up the page)."""
ROLES = ("input", "output", "stdout", "stderr")
WRITES = ("output", "stdout", "stderr")
"""Roles of a task that wrote the file."""
_HEX = re.compile(r"[0-9a-fA-F]+")


class FileNotFound(ParslError):
    """A file id that is not in the store."""


@dataclass
class DiskCheck:
    """What is at a recorded file's path on this machine now."""

    path: str | None  # None: not a local path
    exists: bool = False
    matches: bool | None = None  # None: not checked
    size: int | None = None
    note: str = ""  # for a person: what was found, or why it was not checked


@dataclass
class FileDetail:
    """One file record, every use of it (bounded) and the other records of the same content."""

    file: dict[str, Any]
    producers: list[dict[str, Any]]
    uses: Page
    same_content: Page
    base_dir: str | None = None  # the working directory of a run that used it, for relative paths
    roles: dict[str, int] = field(default_factory=dict)


def files(engine: Engine, query: str = "", limit: int = FILE_LIMIT) -> Page:
    """The newest ``limit`` files whose URL contains ``query`` or whose sha256 starts with it
    (all of them for an empty query), each with the latest task that wrote it (``made_by``: role,
    run, task, try, app, time; None if no task wrote it), how many tasks wrote it (``producers``:
    as an output, stdout or stderr) and how many used it otherwise (``users``: as an input, the
    latest of them ``used_by``), in every run."""
    f = m.File
    where = _matching(query)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(f).where(where)).scalar_one()
        found = rows(conn.execute(select(f.file_id, f.url, f.sha256, f.size, f.mtime).where(where)
                                  .order_by(f.file_id.desc()).limit(limit)))
        _add_uses(conn, found)
    return Page(found, total, limit)


def _matching(query: str) -> Any:
    f = m.File
    text = query.strip()
    if not text:
        return true()
    in_url = f.url.contains(text, autoescape=True)
    if _HEX.fullmatch(text):
        return or_(in_url, f.sha256.startswith(text.lower(), autoescape=True))
    return in_url


def _add_uses(conn: Any, found: list[dict[str, Any]]) -> None:
    """Give each file its producers and users counts, its latest producer and latest user."""
    u, t = m.FileUse, m.Task
    ids = [item["file_id"] for item in found]
    for item in found:
        item.update(made_by=None, used_by=None, producers=0, users=0)
    if not ids:
        return
    by_id = {item["file_id"]: item for item in found}
    written = u.role.in_(WRITES)
    tasks = (select(u.file_id, written.label("written"), u.run_id, u.task_id).where(u.file_id.in_(ids))
             .group_by(u.file_id, written, u.run_id, u.task_id).subquery())
    for file_id, was_written, n in conn.execute(select(tasks.c.file_id, tasks.c.written, func.count())
                                                .group_by(tasks.c.file_id, tasks.c.written)):
        by_id[file_id]["producers" if was_written else "users"] = n
    latest = select(func.max(u.id)).where(u.file_id.in_(ids)).group_by(u.file_id, written).scalar_subquery()
    for use in rows(conn.execute(
            select(u.file_id, u.role, u.run_id, u.task_id, u.try_id, u.timestamp, t.task_func_name.label("app"))
            .outerjoin(t, and_(t.run_id == u.run_id, t.task_id == u.task_id)).where(u.id.in_(latest)))):
        by_id[use["file_id"]]["made_by" if use["role"] in WRITES else "used_by"] = use


def file_detail(engine: Engine, file_id: int, limit: int = USE_LIMIT) -> FileDetail:
    """File ``file_id`` with the tasks that wrote it (output, stdout, stderr), its newest
    ``limit`` uses in any run (role, run, task, try, app, time, the run's workflow name and working
    directory) and the other records of the same sha256. Raises ``FileNotFound``."""
    f, u, t, w = m.File, m.FileUse, m.Task, m.Workflow
    with engine.connect() as conn:
        row = conn.execute(select(f.file_id, f.url, f.sha256, f.size, f.mtime).where(f.file_id == file_id)).first()
        if row is None:
            raise FileNotFound(f"There is no file {file_id} in this store: the list of files shows the ones there are.")
        record = row_dict(row)
        roles = {role: n for role, n in conn.execute(
            select(u.role, func.count()).where(u.file_id == file_id).group_by(u.role))}
        use = (select(u.role, u.run_id, u.task_id, u.try_id, u.timestamp, t.task_func_name.label("app"),
                      w.workflow_name, w.cwd)
               .outerjoin(t, and_(t.run_id == u.run_id, t.task_id == u.task_id))
               .outerjoin(w, w.run_id == u.run_id).where(u.file_id == file_id))
        uses = rows(conn.execute(use.order_by(u.timestamp.desc(), u.id.desc()).limit(limit)))
        producers = rows(conn.execute(use.where(u.role.in_(WRITES)).order_by(u.timestamp.desc(), u.id.desc())
                                      .limit(limit)))
        same = Page([], 0, SAME_CONTENT_LIMIT)
        if record["sha256"]:
            others = and_(f.sha256 == record["sha256"], f.file_id != file_id)
            same.total = conn.execute(select(func.count()).select_from(f).where(others)).scalar_one()
            same.items = rows(conn.execute(select(f.file_id, f.url, f.size, f.mtime).where(others)
                                           .order_by(f.file_id.desc()).limit(SAME_CONTENT_LIMIT)))
    base = next((use_row["cwd"] for use_row in uses if use_row.get("cwd")), None)
    return FileDetail(record, producers, Page(uses, sum(roles.values()), limit), same, base, roles)


def run_files(engine: Engine, run_id: str, limit: int = ROLE_LIMIT,
              offsets: dict[str, int] | None = None) -> dict[str, Page]:
    """Run ``run_id``'s file uses by role (input, output, stdout, stderr, then any other), each
    ``limit`` of them by task, after the first ``offsets[role]`` (0), with the file's URL, sha256
    and size and the task's app. Raises ``RunNotFound``."""
    f, u, t = m.File, m.FileUse, m.Task
    with engine.connect() as conn:
        require_run(conn, run_id)
        counts = {role: n for role, n in conn.execute(
            select(u.role, func.count()).where(u.run_id == run_id).group_by(u.role))}
        pages: dict[str, Page] = {}
        for role in [*ROLES, *sorted(set(counts) - set(ROLES))]:
            if not counts.get(role):
                continue
            offset = max(0, min((offsets or {}).get(role, 0), counts[role] - 1))
            found = rows(conn.execute(
                select(u.task_id, u.try_id, u.file_id, u.timestamp, f.url, f.sha256, f.size,
                       t.task_func_name.label("app"))
                .join(f, f.file_id == u.file_id)
                .outerjoin(t, and_(t.run_id == u.run_id, t.task_id == u.task_id))
                .where(u.run_id == run_id, u.role == role)
                .order_by(u.task_id, u.try_id, u.id).limit(limit).offset(offset)))
            pages[role] = Page(found, counts[role], limit, offset)
    return pages


def local_path(url: str, base_dir: str | None = None) -> str | None:
    """The path on this machine a recorded URL names (``file://`` or a plain path, a relative one
    taken from ``base_dir``), or None for another scheme (http, globus, ...)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        path = unquote(parsed.path)
    elif parsed.scheme and len(parsed.scheme) > 1:  # one letter: a Windows drive
        return None
    else:
        path = url
    if not os.path.isabs(path):
        if not base_dir:
            return None
        path = os.path.join(base_dir, path)
    return os.path.normpath(path)


def check_on_disk(url: str, sha256: str | None, size: int | None, base_dir: str | None = None,
                  hash_limit: int = HASH_LIMIT) -> DiskCheck:
    """Whether the file recorded at ``url`` still exists here and still has the recorded content:
    hashed only when it is a regular file of at most ``hash_limit`` bytes (a larger one is compared
    by size only, and a FIFO or device is never opened)."""
    path = local_path(url, base_dir)
    if path is None:
        relative = not urlparse(url).scheme and not os.path.isabs(url)
        return DiskCheck(None, note="a relative path, and no run that used it recorded its working directory: "
                                    "not checked" if relative else "not a path on this machine: not checked")
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return DiskCheck(path, note="no longer exists at this path")
    except OSError as e:
        return DiskCheck(path, note=f"cannot be looked at: {e.strerror or e}")
    if not stat.S_ISREG(info.st_mode):
        return DiskCheck(path, exists=True, note="exists but is not a regular file: not checked")
    found = DiskCheck(path, exists=True, size=info.st_size)
    if size is not None and info.st_size != size:
        found.matches = False
        found.note = f"exists, but its content changed (now {info.st_size:,} bytes, recorded {size:,})"
        return found
    if not sha256:
        found.note = "exists; no sha256 was recorded to compare with"
        return found
    if info.st_size > hash_limit:
        found.note = (f"exists with the recorded size; its content was not checked (over "
                      f"{hash_limit >> 20} MiB, too large to hash here)")
        return found
    try:
        digest = file_sha256(path)
    except OSError as e:
        found.note = f"exists but cannot be read: {e.strerror or e}"
        return found
    found.matches = digest == sha256.lower()
    found.note = ("exists and its content still matches the recorded sha256" if found.matches
                  else "exists, but its content changed since it was recorded (sha256 differs)")
    return found


def file_sha256(path: str) -> str:
    """The sha256 of the file at ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
