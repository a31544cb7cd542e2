"""A recorded run as a replay needs it: every task's app, arguments (by digest), where its call held
other tasks' futures, its command line, files and outcome; each app's identity and recipe; the
tasks each join app launched. ``parsl_repro.reproduce`` executes and verifies from this; the reads
are here so that no SQL lives above the store.

A run of a few tens of thousands of tasks is read whole (a replay holds every task's future
anyway); argument bytes are read in batches, when the replay submits.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.read.common import require_run
from parsl_repro.monitoring.read.files import WRITES, local_path


@dataclass
class RecordedFile:
    role: str  # input | output | stdout | stderr
    url: str
    path: str | None  # where it is on this machine (None: another scheme, or relative without a cwd)
    sha256: str | None


@dataclass
class RecordedTask:
    task_id: int
    func_name: str
    app_kind: str | None
    app_digest: str | None
    status: str | None
    args_digest: str | None
    args_note: str | None
    arg_futures: list[tuple[list, int, str]]
    command: str | None
    result_digest: str | None
    error: str | None
    files: list[RecordedFile] = field(default_factory=list)
    join_parent: int | None = None  # the join app task whose code launched it

    @property
    def writes(self) -> list[RecordedFile]:
        """The files it wrote (outputs and streams), the last record of each path."""
        found = {f.path or f.url: f for f in self.files if f.role in WRITES}
        return list(found.values())

    @property
    def reads(self) -> list[RecordedFile]:
        found = {f.path or f.url: f for f in self.files if f.role == "input"}
        return list(found.values())


@dataclass
class RecordedApp:
    digest: str
    qualname: str
    module: str
    kind: str
    source: str | None
    components: dict[str, str]
    recipe: str | None


@dataclass
class RecordedRun:
    run_id: str
    name: str | None
    cwd: str | None
    runinfo_dir: str | None
    tasks: dict[int, RecordedTask]
    apps: dict[str, RecordedApp]
    join_children: dict[int, list[int]]  # join app task -> the tasks its code launched, in order


def read_run(engine: Engine, run_id: str) -> RecordedRun:
    """Everything a replay of ``run_id`` reads, but the argument bytes. ``RunNotFound`` if absent."""
    t = m.Task
    with engine.connect() as conn:
        run = require_run(conn, run_id)
        cwd = run.cwd
        tasks: dict[int, RecordedTask] = {}
        joins: dict[int, list[int]] = {}
        for row in conn.execute(select(
                t.task_id, t.task_func_name, t.app_kind, t.app_digest, t.task_status_name,
                t.args_digest, t.args_note, t.arg_futures, t.command, t.result_digest, t.error, t.launched_by)
                .where(t.run_id == run_id).order_by(t.task_id)):
            futures = [(list(path), int(tid), kind) for path, tid, kind in json.loads(row.arg_futures)] \
                if row.arg_futures else []
            tasks[row.task_id] = RecordedTask(
                row.task_id, row.task_func_name, row.app_kind, row.app_digest, row.task_status_name,
                row.args_digest, row.args_note, futures, row.command, row.result_digest, row.error,
                join_parent=row.launched_by)
            if row.launched_by is not None:
                joins.setdefault(row.launched_by, []).append(row.task_id)
        if not joins:  # a store from before launched_by: what each join app returned is what it launched
            d = m.Dependency
            for row in conn.execute(select(d.task_id, d.depends_on).where(d.run_id == run_id, d.kind == "join")
                                    .order_by(d.task_id, d.depends_on)):
                child = tasks.get(row.depends_on)
                if row.task_id in tasks and child is not None:
                    joins.setdefault(row.task_id, []).append(row.depends_on)
                    child.join_parent = row.task_id
        u, f = m.FileUse, m.File
        for row in conn.execute(select(u.task_id, u.role, f.url, f.sha256).join(f, f.file_id == u.file_id)
                                .where(u.run_id == run_id).order_by(u.task_id, u.try_id, u.id)):
            task = tasks.get(row.task_id)
            if task is not None:
                task.files.append(RecordedFile(row.role, row.url, local_path(row.url, cwd), row.sha256))
        digests = {task.app_digest for task in tasks.values() if task.app_digest}
        apps = {}
        if digests:
            a = m.App
            for row in conn.execute(select(a.app_digest, a.qualname, a.module, a.kind, a.source, a.components,
                                           a.recipe).where(a.app_digest.in_(digests))):
                apps[row.app_digest] = RecordedApp(row.app_digest, row.qualname, row.module, row.kind, row.source,
                                                   json.loads(row.components or "{}"), row.recipe)
    return RecordedRun(run_id, run.workflow_name, cwd, run.runinfo_dir, tasks, apps, joins)


def read_arguments(engine: Engine, digests: Iterable[str], batch: int = 500) -> Iterator[tuple[str, str, bytes]]:
    """(digest, serializer, bytes) of the stored arguments among ``digests``, a batch at a time."""
    wanted = sorted(set(digests))
    a = m.Argument
    with engine.connect() as conn:
        for start in range(0, len(wanted), batch):
            chunk = wanted[start:start + batch]
            for row in conn.execute(select(a.digest, a.serializer, a.value).where(a.digest.in_(chunk))):
                yield row.digest, row.serializer, bytes(row.value)


@dataclass
class ReplayedTaskRecord:
    """What the store holds about one task of a replay run, to compare with the original."""
    task_id: int
    status: str | None
    result_digest: str | None
    error: str | None
    writes: list[RecordedFile]


def read_replayed(engine: Engine, run_id: str, task_ids: Iterable[int]) -> dict[int, ReplayedTaskRecord]:
    """The outcome, result digest and written files of some tasks of a (replay) run."""
    wanted = sorted(set(task_ids))
    if not wanted:
        return {}
    found: dict[int, ReplayedTaskRecord] = {}
    t, u, f = m.Task, m.FileUse, m.File
    with engine.connect() as conn:
        run = require_run(conn, run_id)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            for row in conn.execute(select(t.task_id, t.task_status_name, t.result_digest, t.error)
                                    .where(t.run_id == run_id, t.task_id.in_(chunk))):
                found[row.task_id] = ReplayedTaskRecord(row.task_id, row.task_status_name, row.result_digest,
                                                        row.error, [])
            for row in conn.execute(select(u.task_id, u.role, f.url, f.sha256).join(f, f.file_id == u.file_id)
                                    .where(u.run_id == run_id, u.task_id.in_(chunk), u.role.in_(WRITES))
                                    .order_by(u.task_id, u.try_id, u.id)):
                if row.task_id in found:
                    found[row.task_id].writes.append(RecordedFile(row.role, row.url, local_path(row.url, run.cwd),
                                                                  row.sha256))
    return found


def read_join_children(engine: Engine, run_id: str, join_ids: Iterable[int]) -> dict[int, list[int]]:
    """The tasks the code of each of ``join_ids`` launched in ``run_id``, in task order."""
    wanted = sorted(set(join_ids))
    found: dict[int, list[int]] = {}
    t = m.Task
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            for row in conn.execute(select(t.launched_by, t.task_id).where(
                    t.run_id == run_id, t.launched_by.in_(chunk)).order_by(t.launched_by, t.task_id)):
                found.setdefault(row.launched_by, []).append(row.task_id)
    return found
