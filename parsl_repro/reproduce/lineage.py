"""``parsl-repro lineage`` as text and as Graphviz DOT (the walk itself is
``parsl_repro.monitoring.read.lineage``; ``--format json`` is its ``as_dict``)."""
from __future__ import annotations

import datetime
import json
from typing import Any

from parsl_repro.monitoring.read.lineage import FileNode, Lineage, TaskNode


def _when(value: Any) -> str:
    if not isinstance(value, datetime.datetime):
        return "time not recorded"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _task(task: TaskNode, verb: str) -> str:
    args = task.args if task.args and len(task.args) <= 120 else (task.args or "")[:117] + "..."
    code = f", code {task.app_digest[:12]}" if task.app_digest else ""
    return (f"{verb} {task.app}{args} (task {task.task_id} of run {task.run_id[:8]} "
            f"{task.workflow_name or ''}, {task.status}, {_when(task.time)}{code})").replace(" ,", ",")


def _file(node: FileNode, forward: bool) -> str:
    sha = f"sha256 {node.sha256[:12]}" if node.sha256 else "no sha256 recorded"
    role = f"{node.role} " if node.role else ""
    tail = ""
    if node.raw:
        tail = " (a raw input: no recorded task wrote it)"
    elif node.unexpanded:
        tail = " (more beyond --depth)"
    return f"{role}{node.url} [{sha}]{tail}"


def as_text(lineage: Lineage) -> str:
    """The lineage as an indented tree, one node per line."""
    lines = [*(f"note: {n}" for n in lineage.located.notes), _file(lineage.root, lineage.forward)]

    def file_children(node: FileNode) -> list[tuple[str, Any]]:
        if lineage.forward:
            return [("read by", t) for t in node.consumers]
        return [("written by", t) for t in node.producers] + [("also written by", t) for t in node.also]

    def task_children(task: TaskNode) -> list[tuple[str, Any]]:
        verb = "used the result of" if not lineage.forward else "whose result was used by"
        # a task already reached through a file is not repeated as a result edge
        return [("file", f) for f in task.files] + [(verb, t) for t in task.tasks if not t.seen]

    def draw(children: list[tuple[str, Any]], prefix: str) -> None:
        for i, (label, item) in enumerate(children):
            last = i == len(children) - 1
            branch, extend = ("└─ ", "   ") if last else ("├─ ", "│  ")
            if isinstance(item, FileNode):
                lines.append(prefix + branch + _file(item, lineage.forward))
                draw(file_children(item), prefix + extend)
            else:
                seen = " (shown above)" if item.seen else ""
                lines.append(prefix + branch + _task(item, label) + seen)
                if label != "also written by" and not item.seen:
                    draw(task_children(item), prefix + extend)

    draw(file_children(lineage.root), "")
    if lineage.truncated:
        lines.append(f"(stopped after {lineage.tasks} tasks: ask for less with --depth)")
    return "\n".join(lines) + "\n"


def as_dot(lineage: Lineage) -> str:
    """The lineage as a Graphviz digraph: files as notes, tasks as boxes, edges in the direction data
    flowed (file -> task that read it -> file it wrote)."""
    nodes: dict[str, str] = {}
    edges: set[tuple[str, str, str]] = set()

    def file_id(node: FileNode) -> str:
        key = f"f_{node.sha256 or node.url}"
        if key not in nodes:
            label = node.url.rsplit("/", 1)[-1] + (f"\n{node.sha256[:12]}" if node.sha256 else "")
            nodes[key] = f'{json.dumps(key)} [shape=note, label={json.dumps(label)}' + (
                ", style=filled, fillcolor=lightyellow]" if node.raw else "]")
        return key

    def task_id(task: TaskNode) -> str:
        key = f"t_{task.run_id}_{task.task_id}"
        if key not in nodes:
            label = f"{task.app}\ntask {task.task_id} of {task.run_id[:8]}"
            nodes[key] = f"{json.dumps(key)} [shape=box, label={json.dumps(label)}]"
        return key

    def visit_file(node: FileNode) -> None:
        me = file_id(node)
        for t in node.producers + node.also:
            edges.add((task_id(t), me, "wrote"))
            if t in node.producers:
                visit_task(t)
        for t in node.consumers:
            edges.add((me, task_id(t), "read"))
            visit_task(t)

    def visit_task(task: TaskNode) -> None:
        me = task_id(task)
        for f in task.files:
            edges.add((me, file_id(f), "wrote") if lineage.forward else (file_id(f), me, "read"))
            visit_file(f)
        for t in task.tasks:
            edges.add((me, task_id(t), "result") if lineage.forward else (task_id(t), me, "result"))
            visit_task(t)

    visit_file(lineage.root)
    body = [f"  {n};" for n in nodes.values()]
    body += [f"  {json.dumps(a)} -> {json.dumps(b)} [label={json.dumps(label)}];" for a, b, label in sorted(edges)]
    return "digraph lineage {\n  rankdir=LR;\n" + "\n".join(body) + "\n}\n"
