"""One file: its URL, sha256 and size, whether it is still at that path on this machine with the
same content, the tasks that made it, every task that used it in any run, and the other file
records with the same content."""
from __future__ import annotations

import datetime
import posixpath
from typing import Any

from dash import Dash, dcc, html

from parsl_repro.monitoring.read.files import check_on_disk, file_detail
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


def register_callbacks(app: Dash) -> None:
    """This page has no callbacks: everything is drawn with its layout."""
