"""A file's lineage, by content: what produced it, from what, back to raw inputs; or (forward)
everything derived from it. ``parsl-repro lineage``, the dashboard's file page and the PROV
export share this module: the rule (``derivations``: whatever a task wrote was derived from
whatever it read) and the walk over the store.

A file is found by its sha256, so a file that was moved or renamed after the run is still found;
``locate`` says how it was found (by content, or only by its path when the content has changed
since, or not at all, with the files of the same name the store knows). The walk goes from a
content to the tasks that wrote it (the earliest is followed; later ones, such as replays, are
listed as also producing it), to the files those tasks read and the tasks whose results they used,
and so on, ``depth`` task levels deep (unbounded by default) and at most ``max_nodes`` tasks.
Forward, it goes from a content to the tasks that read it, the files they wrote and the tasks that
used their results.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, and_, or_, select

from parsl_repro.errors import ParslError
from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.read.common import aware
from parsl_repro.monitoring.read.files import WRITES, file_sha256, local_path

MAX_NODES = 2000
NAME_MATCHES = 5


class NotInStore(ParslError):
    """Neither the content nor the path of the file asked about is recorded."""


def derivations(made: Iterable[str], used: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(derived, source) pairs for one task: whatever it wrote was derived from whatever it read
    (itself excepted). The lineage walk and the PROV export's ``prov:wasDerivedFrom`` both follow it."""
    sources = sorted(set(used))
    for entity in made:
        for source in sources:
            if source != entity:
                yield entity, source


@dataclass
class Located:
    """How a file asked about was found: ``sha256`` of the content followed, ``how`` (``content``,
    ``path``: only the path is recorded and the content now differs, or ``sha256`` when asked by
    digest), the recorded URLs of that content, and notes for a person."""
    target: str
    sha256: str
    how: str
    urls: list[str]
    notes: list[str] = field(default_factory=list)
    here: list[str] = field(default_factory=list)  # the recorded URLs of this content at the path asked about


@dataclass
class TaskNode:
    run_id: str
    task_id: int
    app: str
    app_digest: str | None
    args: str | None
    status: str | None
    time: Any
    workflow_name: str | None
    files: list[FileNode] = field(default_factory=list)  # read (back) or written (forward)
    tasks: list[TaskNode] = field(default_factory=list)  # whose results it used (back) / that used its result
    seen: bool = False  # already shown elsewhere in the tree: not expanded again

    def as_dict(self) -> dict[str, Any]:
        found = {k: getattr(self, k) for k in ("run_id", "task_id", "app", "app_digest", "args", "status",
                                               "workflow_name", "seen")}
        found["time"] = self.time.isoformat() if self.time is not None else None
        found["files"] = [f.as_dict() for f in self.files]
        found["tasks"] = [t.as_dict() for t in self.tasks]
        return found


@dataclass
class FileNode:
    sha256: str | None
    url: str
    role: str | None = None  # how the task above used it (input, output, stdout, stderr)
    file_id: int | None = None  # the record of this URL and content
    producers: list[TaskNode] = field(default_factory=list)  # back: the earliest writer, expanded
    also: list[TaskNode] = field(default_factory=list)  # back: later writers of the same content
    consumers: list[TaskNode] = field(default_factory=list)  # forward
    raw: bool = False  # back: no recorded task wrote this content
    unexpanded: bool = False  # it has producers (back) or consumers (forward) beyond the depth asked for

    def as_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "url": self.url, "role": self.role, "file_id": self.file_id, "raw": self.raw,
                "unexpanded": self.unexpanded,
                "producers": [t.as_dict() for t in self.producers], "also": [t.as_dict() for t in self.also],
                "consumers": [t.as_dict() for t in self.consumers]}


@dataclass
class Lineage:
    located: Located
    forward: bool
    root: FileNode
    tasks: int = 0
    truncated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.located.target, "sha256": self.located.sha256, "found_by": self.located.how,
                "recorded_urls": self.located.urls, "notes": self.located.notes, "forward": self.forward,
                "tasks": self.tasks, "truncated": self.truncated, "root": self.root.as_dict()}


# --- finding the file --------------------------------------------------------------------------------

def _urls_of(conn: Connection, sha256: str) -> list[str]:
    return list(conn.execute(select(m.File.url).where(m.File.sha256 == sha256).order_by(m.File.file_id)).scalars())


def _recorded_at(conn: Connection, path: str) -> list[tuple[str, str | None]]:
    """(url, sha256) of the records whose URL names ``path`` on this machine, newest first (a
    relative URL taken from the working directory of a run that used it)."""
    f, u, w = m.File, m.FileUse, m.Workflow
    name = os.path.basename(path)
    candidates = conn.execute(
        select(f.file_id, f.url, f.sha256, w.cwd).join(u, u.file_id == f.file_id).join(w, w.run_id == u.run_id)
        .where(or_(f.url == path, f.url == "file://" + path, f.url.endswith("/" + name), f.url == name))
        .order_by(f.file_id.desc()))
    found: dict[int, tuple[str, str | None]] = {}
    for row in candidates:
        if row.file_id not in found and local_path(row.url, row.cwd) == path:
            found[row.file_id] = (row.url, row.sha256)
    return list(found.values())


def locate(engine: Engine, target: str, cwd: str | None = None) -> Located:
    """Which recorded content ``target`` (a path, or ``sha256:HEX``) is. Raises ``NotInStore``."""
    with engine.connect() as conn:
        if target.startswith("sha256:"):
            sha = target[7:].lower()
            urls = _urls_of(conn, sha)
            if not urls:
                raise NotInStore(f"No file with sha256 {sha} is recorded in this store")
            return Located(target, sha, "sha256", urls)
        path = os.path.normpath(os.path.join(cwd or os.getcwd(), target))
        on_disk = os.path.isfile(path)
        sha = file_sha256(path) if on_disk else None
        urls = _urls_of(conn, sha) if sha else []
        if urls:
            here = [url for url, recorded in _recorded_at(conn, path) if recorded == sha]
            located = Located(target, sha, "content", urls, here=here)  # type: ignore[arg-type]
            if not here:
                located.notes.append(f"found by its content: it was recorded as {urls[0]}"
                                     + (f" (and {len(urls) - 1} other paths)" if len(urls) > 1 else "")
                                     + "; it has been moved or renamed since")
            return located
        at_path = _recorded_at(conn, path)
        if at_path:
            url, recorded = at_path[0]
            if recorded is None:
                raise NotInStore(f"{target} was recorded at {url}, but without its sha256: its lineage cannot be "
                                 f"followed by content")
            located = Located(target, recorded, "path", _urls_of(conn, recorded), here=[url])
            located.notes.append(
                f"only the path matches: {target} is not on this machine now; this is what was recorded there"
                if not on_disk else
                f"only the path matches: the content of {target} changed since it was recorded (now sha256 "
                f"{sha[:12]}, recorded {recorded[:12]}); this is the lineage of the recorded content")
            return located
        name = os.path.basename(path)
        same_name = list(conn.execute(select(m.File.url).where(or_(m.File.url.endswith("/" + name), m.File.url == name))
                                      .distinct().limit(NAME_MATCHES)).scalars())
    said = f"{target} is not in this store: no file with its content" + (f" (sha256 {sha[:12]})" if sha else "") \
        + " or at its path was recorded"
    said += (f". Files named {name} are: {', '.join(same_name)}" if same_name else f", nor any file named {name}")
    raise NotInStore(said)


# --- walking -------------------------------------------------------------------------------------------

_TaskKey = tuple[str, int]


class _Walk:
    def __init__(self, conn: Connection, depth: int | None, max_nodes: int) -> None:
        self.conn = conn
        self.depth = depth
        self.max_nodes = max_nodes
        self.count = 0
        self.truncated = False
        self.seen: set[_TaskKey] = set()

    def tasks(self, keys: list[_TaskKey]) -> dict[_TaskKey, TaskNode]:
        if not keys:
            return {}
        t, w = m.Task, m.Workflow
        found = {}
        for start in range(0, len(keys), 300):
            chunk = keys[start:start + 300]
            rows = self.conn.execute(
                select(t.run_id, t.task_id, t.task_func_name, t.app_digest, t.args_repr, t.task_status_name,
                       t.task_time_returned, t.task_time_invoked, w.workflow_name)
                .join(w, w.run_id == t.run_id)
                .where(or_(*(and_(t.run_id == r, t.task_id == i) for r, i in chunk))))
            for row in rows:
                found[(row.run_id, row.task_id)] = TaskNode(
                    row.run_id, row.task_id, row.task_func_name, row.app_digest, row.args_repr, row.task_status_name,
                    aware(row.task_time_returned or row.task_time_invoked), row.workflow_name)
        return found

    def uses(self, sha: str, roles: Iterable[str], prefer: Iterable[str] = ()) -> list[tuple[_TaskKey, Any]]:
        """The task uses of a content in ``roles``, oldest first: ((run, task), time); uses under a URL
        in ``prefer`` (the path asked about) first, so that the same bytes written elsewhere (an empty
        file, a "0") are not taken for this file's making."""
        u, f = m.FileUse, m.File
        rows = self.conn.execute(select(u.run_id, u.task_id, u.timestamp, f.url).join(f, f.file_id == u.file_id)
                                 .where(f.sha256 == sha, u.role.in_(tuple(roles)))
                                 .order_by(u.timestamp, u.id))
        preferred = set(prefer)
        first: dict[_TaskKey, Any] = {}
        rest: dict[_TaskKey, Any] = {}
        for row in rows:
            key = (row.run_id, row.task_id)
            (first if row.url in preferred else rest).setdefault(key, row.timestamp)
        return list(first.items()) + [item for item in rest.items() if item[0] not in first]

    def files_of(self, key: _TaskKey, roles: Iterable[str]) -> list[FileNode]:
        u, f = m.FileUse, m.File
        rows = self.conn.execute(select(u.role, f.url, f.sha256, f.file_id).join(f, f.file_id == u.file_id)
                                 .where(u.run_id == key[0], u.task_id == key[1], u.role.in_(tuple(roles)))
                                 .order_by(u.id))
        found: dict[tuple[str, str | None], FileNode] = {}
        for row in rows:
            found.setdefault((row.url, row.sha256), FileNode(row.sha256, row.url, row.role, row.file_id))
        return list(found.values())

    def linked_tasks(self, key: _TaskKey, upstream: bool) -> list[_TaskKey]:
        d = m.Dependency
        if upstream:
            query = select(d.depends_on).where(d.run_id == key[0], d.task_id == key[1], d.kind == "data")
        else:
            query = select(d.task_id).where(d.run_id == key[0], d.depends_on == key[1], d.kind == "data")
        return [(key[0], n) for n in self.conn.execute(query.order_by(query.selected_columns[0])).scalars()]

    def result_links(self, key: _TaskKey, files: list[FileNode], upstream: bool) -> list[TaskNode]:
        """The tasks whose results this one used (upstream) or that used its result, but for those
        linked through a file already in ``files`` (a DataFuture is a data edge too)."""
        linked = self.tasks(self.linked_tasks(key, upstream=upstream))
        shown = {f.sha256 for f in files if f.sha256}
        kept = []
        for other_key, node in linked.items():
            through = self.files_of(other_key, WRITES if upstream else ("input",))
            if not shown & {f.sha256 for f in through if f.sha256}:
                kept.append(node)
        return kept

    def admit(self, key: _TaskKey) -> bool:
        if self.count >= self.max_nodes:
            self.truncated = True
            return False
        self.seen.add(key)
        self.count += 1
        return True

    def deeper(self, level: int) -> bool:
        return self.depth is None or level <= self.depth

    # backward
    def back_file(self, node: FileNode, level: int) -> None:
        """Find the tasks that wrote ``node``'s content, those that wrote it at ``node``'s URL first;
        they are at ``level``."""
        if node.sha256 is None:
            return
        writers = self.uses(node.sha256, WRITES, prefer=(node.url,))
        if not writers:
            node.raw = True
            return
        if not self.deeper(level):
            node.unexpanded = True
            return
        tasks = self.tasks([key for key, _time in writers])
        found = [tasks[key] for key, _time in writers if key in tasks]
        if found:
            node.producers, node.also = found[:1], found[1:]
            self.task(found[0], level, forward=False)

    def task(self, task: TaskNode, level: int, forward: bool) -> None:
        """Expand a task at ``level``: the files it read (back) or wrote (forward), then the tasks
        whose results it used (back) or that used its result (forward)."""
        key = (task.run_id, task.task_id)
        if key in self.seen or not self.admit(key):
            task.seen = key in self.seen
            return
        task.files = self.files_of(key, WRITES if forward else ("input",))
        for node in task.files:
            (self.forward_file if forward else self.back_file)(node, level + 1)
        if self.deeper(level + 1):
            task.tasks = self.result_links(key, task.files, upstream=not forward)
            for node in task.tasks:
                self.task(node, level + 1, forward)

    # forward
    def forward_file(self, node: FileNode, level: int) -> None:
        """Find the tasks that read ``node``'s content; they are at ``level``."""
        if node.sha256 is None:
            return
        readers = self.uses(node.sha256, ("input",))
        if readers and not self.deeper(level):
            node.unexpanded = True
            return
        node.consumers = list(self.tasks([key for key, _time in readers]).values())
        for task in node.consumers:
            self.task(task, level, forward=True)


def walk(engine: Engine, located: Located, *, depth: int | None = None, forward: bool = False,
         max_nodes: int = MAX_NODES) -> Lineage:
    """The lineage of ``located``'s content (see the module docstring)."""
    with engine.connect() as conn:
        walker = _Walk(conn, depth, max_nodes)
        root = FileNode(located.sha256, (located.here or located.urls or [located.target])[0])
        if forward:
            walker.forward_file(root, 1)
        else:
            walker.back_file(root, 1)
    return Lineage(located, forward, root, walker.count, walker.truncated)


def of_record(engine: Engine, file_id: int, *, depth: int | None = 3, forward: bool = False,
              max_nodes: int = 200) -> Lineage | None:
    """The lineage of the content of file record ``file_id`` (the dashboard's file page); None when
    that record has no sha256 (nothing to follow by content)."""
    with engine.connect() as conn:
        row = conn.execute(select(m.File.url, m.File.sha256).where(m.File.file_id == file_id)).first()
    if row is None or row.sha256 is None:
        return None
    found = walk(engine, Located(f"sha256:{row.sha256}", row.sha256, "sha256", [row.url]), depth=depth,
                 forward=forward, max_nodes=max_nodes)
    found.root.file_id = file_id
    return found


def lineage(engine: Engine, target: str, *, depth: int | None = None, forward: bool = False,
            cwd: str | None = None, max_nodes: int = MAX_NODES) -> Lineage:
    """``locate`` then ``walk``: the lineage of the file at ``target`` (a path or ``sha256:HEX``)."""
    return walk(engine, locate(engine, target, cwd), depth=depth, forward=forward, max_nodes=max_nodes)
