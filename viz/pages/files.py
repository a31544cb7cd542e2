"""Files: every file entity of the store, newest first, with its sha256 and size, the task that
made it and the tasks that used it, in every run; searchable by part of its path or URL or by the
start of its sha256 (``/files?q=...``)."""
from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, dcc, html

from parsl_repro.monitoring.read.files import files
from parsl_repro.viz import context
from parsl_repro.viz.components import (
    file_href,
    fmt_bytes,
    frame,
    guarded_callback,
    more_note,
    notice,
    run_href,
    table,
    task_href,
)

PATH = "/files"
TITLE = "Files"

COLUMNS = [("url", "File"), ("sha256", "sha256"), ("size", "Size"), ("made_by", "Made by"),
           ("producers", "Tasks that wrote it"), ("used_by", "Used by"), ("users", "Tasks that used it")]


def use_cell(use: dict[str, Any] | None) -> Any:
    """A task's use of a file as links: ``app (task 6, output) in run c3082a47``."""
    if not use:
        return ""
    role = "" if use.get("role") in ("output", "input") else f", {use['role']}"
    return html.Span([dcc.Link(f"{use.get('app') or 'task'} (task {use['task_id']}{role})",
                               href=task_href(use["run_id"], use["task_id"]), className="task-link"),
                      " in run ", dcc.Link(use["run_id"][:8], href=run_href(use["run_id"]), className="run-link")])


def files_table(text: str) -> Any:
    """The files matching ``text`` (all of them when empty), bounded, with a note of those left out."""
    page = files(context.engine(), text)
    if not page.items:
        if text.strip():
            return notice(f"No file matches {text.strip()!r} (part of a path or URL, or the start of a sha256).",
                          "info")
        return notice("This store records no files yet: files are recorded when tasks name them as inputs or "
                      "outputs (File objects) or write stdout/stderr files.", "info")
    return [table(COLUMNS, page.items, table_id="files",
                  links={"url": lambda item: file_href(item["file_id"])},
                  formats={"size": fmt_bytes, "made_by": use_cell, "used_by": use_cell,
                           "sha256": lambda digest: html.Code(digest or "", className="sha256")}),
            more_note(page.more, "files (search to narrow the list)")]


def layout(q: str = "", **_: Any) -> html.Div:
    return frame(TITLE,
                 html.Div(dcc.Input(id="files-search", type="search", value=q, debounce=True,
                                    placeholder="search: part of a path or URL, or the start of a sha256"),
                          className="controls"),
                 html.Div(files_table(q), id="files-table"),
                 subtitle="Every file the store records, in every run, newest first.")


def register_callbacks(app: Dash) -> None:
    @app.callback(Output("files-table", "children"), Input("files-search", "value"), prevent_initial_call=True)
    @guarded_callback(notice)
    def search(text: str | None) -> Any:
        return files_table(text or "")
