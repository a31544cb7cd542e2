"""Files of a run: the files its tasks read (input) and wrote (output, stdout, stderr), by role,
each linked to its file page and to the task."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from dash import Dash, html

from parsl_repro.monitoring.read.files import run_files
from parsl_repro.viz import context
from parsl_repro.viz.components import (
    file_href,
    fmt_bytes,
    fmt_time,
    frame,
    notice,
    pager,
    query_param,
    run_href,
    table,
    task_href,
)

PATH = "/run/<run_id>/files"
TITLE = "Files of the run"

ROLE_TITLES = {"input": "Inputs", "output": "Outputs", "stdout": "Standard output files",
               "stderr": "Standard error files"}
COLUMNS = [("url", "File"), ("sha256", "sha256"), ("size", "Size"), ("task_id", "Task"), ("try_id", "Try"),
           ("app", "App"), ("timestamp", "Recorded")]


def files_section(run_id: str, pages: dict[str, Any]) -> html.Div:
    """The run's files by role (``monitoring.read.files.run_files``'s pages), or why there are none."""
    if not pages:
        return html.Div(notice("This run recorded no files: files are recorded when tasks name them as inputs or "
                               "outputs (File objects) or write stdout/stderr files.", "info"), id="run-files")
    parts: list[Any] = []
    for role, page in pages.items():
        parts += [html.H2(f"{ROLE_TITLES.get(role, role)} ({page.total:,})", id=f"run-files-{role}-title"),
                  table(COLUMNS, page.items, table_id=f"run-files-{role}",
                        links={"url": lambda item: file_href(item["file_id"]),
                               "task_id": lambda item: task_href(run_id, item["task_id"])},
                        formats={"size": fmt_bytes, "timestamp": fmt_time,
                                 "sha256": lambda digest: html.Code((digest or "")[:16], title=digest or "")}),
                  role_pager(run_id, role, pages)]
    return html.Div(parts, id="run-files")


def role_pager(run_id: str, role: str, pages: dict[str, Any]) -> html.Div | None:
    """``51-100 of 2,345 output files · previous 50 · next 50``: links to the role's neighbouring
    pages, the other roles staying where they are; None when the role fits on one page."""
    def href(offset: int) -> str:
        offsets = {f"from_{name}": other.offset for name, other in pages.items() if other.offset}
        offsets[f"from_{role}"] = offset
        query = urlencode({key: value for key, value in offsets.items() if value})
        return run_href(run_id, "files") + (f"?{query}" if query else "")

    return pager(pages[role], f"{role} files", href, f"run-files-{role}")


def layout(run_id: str = "", **query: Any) -> html.Div:
    offsets = {}
    for key, value in query.items():
        if key.startswith("from_") and query_param(value).isdigit():
            offsets[key[len("from_"):]] = int(query_param(value))
    pages = run_files(context.engine(), run_id, offsets=offsets)
    return frame(TITLE, files_section(run_id, pages), run_id=run_id, view="files",
                 subtitle=f"run {run_id} · each file links to its page: its content check and every other use")


def register_callbacks(app: Dash) -> None:
    """This page has no callbacks: everything is drawn with its layout."""
