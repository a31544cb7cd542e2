"""One file: its URL, sha256 and size, whether it is still at that path on this machine with the
same content, the tasks that made it, its lineage (what it came from, three task levels back, and
what was derived from it, two levels on: the walk ``parsl-repro lineage`` makes), every task that
used it in any run, and the other file records with the same content."""
from __future__ import annotations

import datetime
import posixpath
from typing import Any

from dash import Dash, dcc, html

from parsl_repro.monitoring.read.files import check_on_disk, file_detail
from parsl_repro.monitoring.read.lineage import FileNode, TaskNode, of_record
from parsl_repro.viz import context
from parsl_repro.viz.components import (
    file_href,
    fmt_bytes,
    fmt_time,
    frame,
    kv_table,
    more_note,
    notice,
    run_href,
    table,
    task_href,
)

PATH = "/file/<file_id>"
TITLE = "File"

USE_COLUMNS = [("role", "Role"), ("run_id", "Run"), ("workflow_name", "Workflow"), ("task_id", "Task"),
               ("try_id", "Try"), ("app", "App"), ("timestamp", "Recorded")]


def _uses_table(uses: list[dict[str, Any]], table_id: str) -> html.Table:
    return table(USE_COLUMNS, uses, table_id=table_id,
                 links={"run_id": lambda use: run_href(use["run_id"]),
                        "task_id": lambda use: task_href(use["run_id"], use["task_id"])},
                 formats={"run_id": lambda run_id: run_id[:8], "timestamp": fmt_time})


def _mtime(value: float | None) -> str:
    if value is None:
        return ""
    return fmt_time(datetime.datetime.fromtimestamp(value, datetime.UTC))


def layout(file_id: str = "", **_: Any) -> html.Div:
    try:
        number = int(file_id)
    except ValueError:
        return frame(TITLE, notice(f"{file_id!r} is not a file id: file ids are numbers, as the list of files "
                                   f"links them."))
    detail = file_detail(context.engine(), number)
    record = detail.file
    disk = check_on_disk(record["url"], record["sha256"], record["size"], detail.base_dir)
    state = "matches" if disk.matches else ("changed" if disk.matches is False else
                                            ("missing" if disk.path and not disk.exists else "unchecked"))
    on_disk = html.Span([disk.note, html.Span(f" ({disk.path})", className="path") if disk.path else ""],
                        id="file-disk", className=f"disk-{state}")
    sha256 = html.Code(record["sha256"] or "not recorded", id="file-sha256")
    facts = kv_table([("URL", record["url"]), ("sha256", sha256),
                      ("Size", f"{fmt_bytes(record['size'])} ({record['size']:,} bytes)" if record["size"] is not None
                       else None),
                      ("Modified (recorded)", _mtime(record["mtime"])),
                      ("On this machine now", on_disk),
                      ("Uses", ", ".join(f"{role} {n}" for role, n in sorted(detail.roles.items())) or "none")],
                     "file-facts")
    parts: list[Any] = [facts, html.H2("Made by")]
    if detail.producers:
        parts.append(_uses_table(detail.producers, "file-producers"))
    else:
        parts.append(notice("No task recorded writing this file: it was an input from outside the workflow.", "info"))
    parts += [html.H2("Lineage"), *_lineage(number)]
    parts += [html.H2("Every use, in every run"), _uses_table(detail.uses.items, "file-uses"),
              more_note(detail.uses.more, "uses")]
    parts.append(html.H2("The same content elsewhere"))
    if detail.same_content.items:
        parts += [table([("file_id", "File"), ("url", "URL"), ("size", "Size"), ("mtime", "Modified (recorded)")],
                        detail.same_content.items, table_id="file-same",
                        links={"file_id": lambda item: file_href(item["file_id"]),
                               "url": lambda item: file_href(item["file_id"])},
                        formats={"size": fmt_bytes, "mtime": _mtime}),
                  more_note(detail.same_content.more, "records of the same content")]
    else:
        parts.append(html.Div("No other file record has this sha256." if record["sha256"] else
                              "No sha256 was recorded, so other copies cannot be found.", className="subtitle",
                              id="file-same-none"))
    name = posixpath.basename(record["url"].rstrip("/")) or record["url"]
    return frame(f"{TITLE}: {name}", *parts, subtitle=[dcc.Link("all files", href="/files"), f" · file {number}"])


LINEAGE_BACK = 3
LINEAGE_FORWARD = 2


def _file_item(node: FileNode, forward: bool) -> html.Li:
    name = posixpath.basename(node.url.rstrip("/")) or node.url
    label: Any = dcc.Link(name, href=file_href(node.file_id)) if node.file_id is not None else name
    notes = " raw input: no recorded task wrote it" if node.raw else (" ..." if node.unexpanded else "")
    children = node.consumers if forward else node.producers
    verb = "read by" if forward else "written by"
    nested = [_task_item(t, verb, forward) for t in children]
    nested += [_task_item(t, "also written by", forward, expand=False) for t in node.also]
    return html.Li([html.Span(node.role or "", className="role"), " ", label,
                    html.Code(f" {node.sha256[:12]}" if node.sha256 else ""), notes,
                    html.Ul(nested) if nested else ""], className="lineage-file")


def _task_item(task: TaskNode, verb: str, forward: bool, expand: bool = True) -> html.Li:
    link = dcc.Link(f"{task.app} (task {task.task_id})", href=task_href(task.run_id, task.task_id))
    head = [f"{verb} ", link, " of run ", dcc.Link(task.run_id[:8], href=run_href(task.run_id)),
            f" · {task.status or ''} · {fmt_time(task.time) if task.time else ''}"]
    nested: list[Any] = []
    if expand and not task.seen:
        nested = [_file_item(f, forward) for f in task.files]
        edge = "whose result was used by" if forward else "used the result of"
        nested += [_task_item(t, edge, forward) for t in task.tasks if not t.seen]
    return html.Li([*head, html.Ul(nested) if nested else ""], className="lineage-task",
                   **{"data-task": f"{task.run_id}:{task.task_id}"})


def _lineage(file_id: int) -> list[Any]:
    engine = context.engine()
    back = of_record(engine, file_id, depth=LINEAGE_BACK)
    if back is None:
        return [html.Div("No sha256 was recorded, so its lineage cannot be followed by content.",
                         className="subtitle", id="file-lineage-none")]
    forward = of_record(engine, file_id, depth=LINEAGE_FORWARD, forward=True)
    parts: list[Any] = [html.H3("Where it came from"),
                        html.Ul([_file_item(back.root, False)], id="file-lineage-back", className="lineage")]
    if forward is not None and forward.root.consumers:
        parts += [html.H3("What was derived from it"),
                  html.Ul([_file_item(forward.root, True)], id="file-lineage-forward", className="lineage")]
    if back.truncated or (forward is not None and forward.truncated):
        parts.append(html.Div("The lineage is cut short here; parsl-repro lineage shows all of it.",
                              className="subtitle"))
    return parts


def register_callbacks(app: Dash) -> None:
    """This page has no callbacks: everything is drawn with its layout."""
