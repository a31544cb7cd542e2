"""Two runs, task by task: what ``parsl-repro diff RUN_A RUN_B`` reports.

Built on the Compare page's ``compare`` (environment, packages, app digests, script and git) and
adding what a reviewer asks of a re-run: the recorded sources of each app whose code changed (a
unified diff, and which parts of its identity changed), the configuration, and each pair of
matched tasks' differences: arguments (position by position), input files' contents, outcome,
result digest and output files' contents. Durations are compared per app.

Tasks are matched within each app name: first calls with the same arguments (the same
``args_digest``), in order; then the remaining calls in order. What is left is in one run only.
"""
from __future__ import annotations

import difflib
import json
import reprlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, select

from parsl_repro.memo.canonical import Uncacheable, digest
from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.read.common import require_run
from parsl_repro.monitoring.read.compare import Comparison, compare
from parsl_repro.monitoring.read.files import WRITES
from parsl_repro.serialize import deserialize_value

SOURCE_LINES = 80
_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 120


@dataclass
class Change:
    """One difference of a task pair: ``what`` (argument, input, outcome, result, output, code),
    ``name`` (``arg 0``, ``kwarg x``, a path) and the two sides as text."""
    what: str
    name: str
    a: str | None
    b: str | None


@dataclass
class TaskPair:
    app: str
    a_task: int | None
    b_task: int | None
    changes: list[Change] = field(default_factory=list)


@dataclass
class CodeChange:
    app: str
    a_digest: str | None
    b_digest: str | None
    components: list[str]  # the parts of the identity that differ (source, globals:NAME, ...)
    source_diff: list[str]  # unified diff of the recorded sources


@dataclass
class RunDiff:
    a: str
    b: str
    comparison: Comparison
    config_diff: list[str]
    code: list[CodeChange]
    pairs: list[TaskPair]  # matched pairs with changes, and tasks of one run only
    matched: int
    same: int
    only_a: int
    only_b: int
    durations: list[dict[str, Any]]

    @property
    def differs(self) -> bool:
        c = self.comparison
        env = any(not d.same for d in c.environment if d.label not in ("Host", "User"))
        return bool(self.config_diff or self.code or self.pairs or c.packages_added or c.packages_removed
                    or c.packages_changed or env)

    def as_dict(self) -> dict[str, Any]:
        c = self.comparison
        return {
            "a": self.a, "b": self.b, "differs": self.differs,
            "environment": [{"label": d.label, "a": d.a, "b": d.b} for d in c.environment if not d.same],
            "packages": {"added": c.packages_added, "removed": c.packages_removed, "upgraded": [
                list(p) for p in c.packages_changed], "known": c.packages_known},
            "provenance": [{"label": d.label, "a": d.a, "b": d.b} for d in c.provenance if not d.same],
            "config_diff": self.config_diff,
            "code": [vars(x) for x in self.code],
            "tasks": {"matched": self.matched, "same": self.same, "only_a": self.only_a, "only_b": self.only_b,
                      "differences": [{"app": p.app, "a_task": p.a_task, "b_task": p.b_task,
                                       "changes": [vars(ch) for ch in p.changes]} for p in self.pairs]},
            "durations": self.durations,
        }


@dataclass
class _Task:
    task_id: int
    app: str
    app_digest: str | None
    args_digest: str | None
    status: str | None
    result_digest: str | None
    error: str | None
    reads: dict[str, str | None] = field(default_factory=dict)  # url -> sha256
    writes: dict[str, str | None] = field(default_factory=dict)


def _tasks(conn: Connection, run_id: str) -> dict[str, list[_Task]]:
    t = m.Task
    by_id: dict[int, _Task] = {}
    for row in conn.execute(select(t.task_id, t.task_func_name, t.app_digest, t.args_digest, t.task_status_name,
                                   t.result_digest, t.error).where(t.run_id == run_id).order_by(t.task_id)):
        by_id[row.task_id] = _Task(row.task_id, row.task_func_name, row.app_digest, row.args_digest,
                                   row.task_status_name, row.result_digest, row.error)
    u, f = m.FileUse, m.File
    for row in conn.execute(select(u.task_id, u.role, f.url, f.sha256).join(f, f.file_id == u.file_id)
                            .where(u.run_id == run_id).order_by(u.id)):
        task = by_id.get(row.task_id)
        if task is not None:
            (task.writes if row.role in WRITES else task.reads)[row.url] = row.sha256
    by_app: dict[str, list[_Task]] = {}
    for task in by_id.values():
        by_app.setdefault(task.app, []).append(task)
    return by_app


def _match(mine: list[_Task], theirs: list[_Task]) -> tuple[list[tuple[_Task, _Task]], list[_Task], list[_Task]]:
    pairs: list[tuple[_Task, _Task]] = []
    waiting: dict[str, list[_Task]] = {}
    for task in theirs:
        if task.args_digest:
            waiting.setdefault(task.args_digest, []).append(task)
    left_a = []
    taken: set[int] = set()
    for task in mine:
        same = waiting.get(task.args_digest or "")
        if same:
            other = same.pop(0)
            taken.add(other.task_id)
            pairs.append((task, other))
        else:
            left_a.append(task)
    left_b = [t for t in theirs if t.task_id not in taken]
    pairs += list(zip(left_a, left_b, strict=False))
    return pairs, left_a[len(left_b):], left_b[len(left_a):]


def _arguments(conn: Connection, digests: Iterable[str]) -> dict[str, Any]:
    wanted = sorted({d for d in digests if d})
    found: dict[str, Any] = {}
    a = m.Argument
    for start in range(0, len(wanted), 500):
        for row in conn.execute(select(a.digest, a.serializer, a.value).where(a.digest.in_(wanted[start:start + 500]))):
            try:
                found[row.digest] = deserialize_value(row.serializer, bytes(row.value))
            except Exception:  # noqa: BLE001 - a class gone from this environment: compared by digest only
                continue
    return found


def _value_key(value: Any) -> str:
    try:
        return digest(value)
    except (Uncacheable, TypeError, ValueError):
        return repr(value)


def _argument_changes(a_call: Any, b_call: Any) -> list[Change]:
    (a_args, a_kwargs), (b_args, b_kwargs) = a_call, b_call
    changes = []
    for i in range(max(len(a_args), len(b_args))):
        left = a_args[i] if i < len(a_args) else _MISSING
        right = b_args[i] if i < len(b_args) else _MISSING
        if left is _MISSING or right is _MISSING or _value_key(left) != _value_key(right):
            changes.append(Change("argument", f"arg {i}", _show(left), _show(right)))
    for name in sorted(set(a_kwargs) | set(b_kwargs)):
        left, right = a_kwargs.get(name, _MISSING), b_kwargs.get(name, _MISSING)
        if left is _MISSING or right is _MISSING or _value_key(left) != _value_key(right):
            changes.append(Change("argument", f"kwarg {name}", _show(left), _show(right)))
    return changes


_MISSING = object()


def _show(value: Any) -> str | None:
    return None if value is _MISSING else _repr.repr(value)


def _file_changes(what: str, mine: dict[str, str | None], theirs: dict[str, str | None]) -> list[Change]:
    changes = []
    for url in sorted(set(mine) & set(theirs)):
        if mine[url] != theirs[url]:
            changes.append(Change(what, url, mine[url], theirs[url]))
    only_a, only_b = sorted(set(mine) - set(theirs)), sorted(set(theirs) - set(mine))
    for left, right in zip(only_a, only_b, strict=False):  # renamed between the runs: compared in order
        if mine[left] != theirs[right]:
            changes.append(Change(what, f"{left} / {right}", mine[left], theirs[right]))
    for url in only_a[len(only_b):]:
        changes.append(Change(what, url, mine[url], None))
    for url in only_b[len(only_a):]:
        changes.append(Change(what, url, None, theirs[url]))
    return changes


def _pair_changes(a: _Task, b: _Task, args: dict[str, Any]) -> list[Change]:
    changes = []
    if a.app_digest != b.app_digest:
        changes.append(Change("code", "app digest", a.app_digest, b.app_digest))
    if a.args_digest != b.args_digest:
        if a.args_digest in args and b.args_digest in args:
            changes += _argument_changes(args[a.args_digest], args[b.args_digest])
        else:
            changes.append(Change("argument", "arguments", a.args_digest, b.args_digest))
    changes += _file_changes("input", a.reads, b.reads)
    if a.status != b.status:
        changes.append(Change("outcome", "state", f"{a.status}" + (f" ({a.error})" if a.error else ""),
                              f"{b.status}" + (f" ({b.error})" if b.error else "")))
    elif a.result_digest != b.result_digest:
        changes.append(Change("result", "result digest", a.result_digest, b.result_digest))
    changes += _file_changes("output", a.writes, b.writes)
    return changes


def _code_changes(conn: Connection, comparison: Comparison) -> list[CodeChange]:
    found = []
    app = m.App
    for row in comparison.code:
        if row["difference"].startswith("only in"):
            continue
        a_digest = (row["a_digests"] or [None])[0]
        b_digest = (row["b_digests"] or [None])[0]
        recorded = {r.app_digest: r for r in conn.execute(select(app.app_digest, app.source, app.components)
                                                          .where(app.app_digest.in_([a_digest, b_digest])))}
        left, right = recorded.get(a_digest), recorded.get(b_digest)
        components: list[str] = []
        if left is not None and right is not None:
            mine, theirs = json.loads(left.components or "{}"), json.loads(right.components or "{}")
            components = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        source_diff = list(difflib.unified_diff(
            ((left.source if left is not None else None) or "").splitlines(),
            ((right.source if right is not None else None) or "").splitlines(),
            f"A {row['app']}", f"B {row['app']}", lineterm=""))[:SOURCE_LINES]
        found.append(CodeChange(row["app"], a_digest, b_digest, components, source_diff))
    return found


def _config_lines(summary: str | None) -> list[str]:
    return (summary or "").replace(", ", ",\n").splitlines()


def diff(engine: Engine, a: str, b: str) -> RunDiff:
    """Run ``a`` against run ``b``. Raises ``RunNotFound`` for an id not in the store."""
    comparison = compare(engine, a, b)
    with engine.connect() as conn:
        run_a, run_b = require_run(conn, a), require_run(conn, b)
        config_diff = list(difflib.unified_diff(_config_lines(run_a.config_summary),
                                                _config_lines(run_b.config_summary), "A config", "B config",
                                                lineterm=""))
        code = _code_changes(conn, comparison)
        tasks_a, tasks_b = _tasks(conn, a), _tasks(conn, b)
        matched: list[tuple[_Task, _Task]] = []
        lone: list[TaskPair] = []
        for app in sorted(set(tasks_a) | set(tasks_b)):
            pairs, only_a, only_b = _match(tasks_a.get(app, []), tasks_b.get(app, []))
            matched += pairs
            lone += [TaskPair(app, t.task_id, None) for t in only_a] + [TaskPair(app, None, t.task_id) for t in only_b]
        args = _arguments(conn, [d for x, y in matched if x.args_digest != y.args_digest
                                 for d in (x.args_digest, y.args_digest) if d])
    pairs = []
    same = 0
    for left, right in matched:
        changes = _pair_changes(left, right, args)
        if changes:
            pairs.append(TaskPair(left.app, left.task_id, right.task_id, changes))
        else:
            same += 1
    durations = [{"app": row["app"], "a_mean_seconds": row.get("a_mean_seconds"),
                  "b_mean_seconds": row.get("b_mean_seconds")} for row in comparison.apps]
    return RunDiff(a, b, comparison, config_diff, code, pairs + lone, len(matched), same,
                   sum(1 for p in lone if p.b_task is None), sum(1 for p in lone if p.a_task is None), durations)
