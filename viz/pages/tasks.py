"""Tasks of a run: every task, a page at a time, filtered by app and by state, each linked to its
page and to the tasks it waited on (Parsl's app pages list the same)."""
from __future__ import annotations

from typing import Any

from dash import Dash, dcc, html

from parsl_repro.monitoring.read.tasks import TaskList, run_tasks
from parsl_repro.viz import context
from parsl_repro.viz.components import (
    fmt_duration,
    fmt_time,
    frame,
    notice,
    pager,
    query_param,
    table,
    task_href,
    tasks_href,
)

PATH = "/run/<run_id>/tasks"
TITLE = "Tasks"

COLUMNS = [("task_id", "Task"), ("app", "App"), ("state", "State"), ("depends", "Waited on"),
           ("task_time_invoked", "Submitted"), ("task_time_returned", "Returned"), ("duration", "Duration"),
           ("task_fail_count", "Failed tries")]


def _filters(data: TaskList) -> html.Div:
    """Links that pick an app and a state (the other filter kept), with how many tasks each has."""
    def choice(label: str, count: int | None, href: str, chosen: bool, chosen_id: str) -> Any:
        text = label if count is None else f"{label} ({count:,})"
        return html.Strong(text, id=chosen_id) if chosen else dcc.Link(text, href=href)

    apps = [choice("all apps", None, tasks_href(data.run_id, None, data.state), data.app is None, "tasks-app-chosen")]
    apps += [choice(name, n, tasks_href(data.run_id, name, data.state), name == data.app, "tasks-app-chosen")
             for name, n in sorted(data.apps.items())]
    states = [choice("all states", None, tasks_href(data.run_id, data.app, None), data.state is None,
                     "tasks-state-chosen")]
    states += [choice(name, n, tasks_href(data.run_id, data.app, name), name == data.state, "tasks-state-chosen")
               for name, n in sorted(data.states.items())]
    return html.Div([html.Div(["App: ", *_joined(apps)], id="tasks-apps"),
                     html.Div(["State: ", *_joined(states)], id="tasks-states")], className="subtitle")


def _joined(parts: list[Any]) -> list[Any]:
    joined: list[Any] = []
    for part in parts:
        joined += [" · ", part] if joined else [part]
    return joined


def _depends(run_id: str, row: dict[str, Any]) -> Any:
    links: list[Any] = _joined([dcc.Link(str(task_id), href=task_href(run_id, task_id)) for task_id in row["depends"]])
    if row["depends_more"]:
        links.append(f" and {row['depends_more']:,} more")
    return links or ""


def _pager(data: TaskList) -> html.Div | None:
    return pager(data.tasks, "tasks", lambda offset: tasks_href(data.run_id, data.app, data.state, offset),
                 "tasks")


def tasks_section(data: TaskList) -> html.Div:
    """The filters, a page of tasks and the links to the neighbouring pages."""
    if not data.tasks.total:
        return html.Div([_filters(data), notice("This run recorded no task.", "info")], id="tasks")
    run_id = data.run_id
    rows = [dict(row, depends=_depends(run_id, row)) for row in data.tasks.items]
    return html.Div([_filters(data),
                     table(COLUMNS, rows, table_id="tasks-table",
                           links={"task_id": lambda row: task_href(run_id, row["task_id"])},
                           formats={"depends": lambda links: links, "task_time_invoked": fmt_time,
                                    "task_time_returned": fmt_time, "duration": fmt_duration}),
                     _pager(data)], id="tasks")


def layout(run_id: str = "", app: Any = None, state: Any = None, **query: Any) -> html.Div:
    start = query_param(query.get("from"))
    data = run_tasks(context.engine(), run_id, app=query_param(app) or None, state=query_param(state) or None,
                     offset=int(start) if start.isdigit() else 0)
    chosen = " · ".join(part for part in (data.app, data.state) if part)
    return frame(TITLE, tasks_section(data), run_id=run_id, view="tasks",
                 subtitle=f"run {run_id}" + (f" · {chosen}" if chosen else "") + " · by task id")


def register_callbacks(app: Dash) -> None:
    """This page has no callbacks: everything is drawn with its layout."""
