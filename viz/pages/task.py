"""Task: one task of a run: its state changes with their causes, its tries, arguments (and a bash
app's command line), files with their sha256 and size, resource samples, memo key and source,
result digest, and the tasks it waited on and that waited on it."""
from __future__ import annotations

import datetime
from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from parsl_repro.monitoring.queries import NothingMatches
from parsl_repro.monitoring.read.common import seconds
from parsl_repro.monitoring.read.runs import change_token
from parsl_repro.monitoring.read.task import Samples, TaskDetail, task_detail
from parsl_repro.viz import context
from parsl_repro.viz.components import (
    app_href,
    code_block,
    file_href,
    fmt_bytes,
    fmt_duration,
    frame,
    guarded_callback,
    kv_table,
    more_note,
    notice,
    run_href,
    table,
    task_href,
)

PATH = "/run/<run_id>/task/<task_id>"
TITLE = "Task"

STATE_COLUMNS = [("timestamp", "Time"), ("try_id", "Try"), ("previous_status_name", "From"),
                 ("task_status_name", "To"), ("cause", "Cause"), ("detail", "Detail")]
TRY_COLUMNS = [("try_id", "Try"), ("task_executor", "Executor"), ("block_id", "Block"), ("manager", "Manager"),
               ("hostname", "Host"), ("pid", "PID"), ("task_try_time_launched", "Launched"),
               ("task_try_time_running", "Running"), ("task_try_time_returned", "Returned"), ("run_time", "Ran for"),
               ("error", "Error")]
FILE_COLUMNS = [("role", "Role"), ("url", "File"), ("sha256", "sha256"), ("size", "Size"), ("try_id", "Try"),
                ("timestamp", "Recorded")]
NEIGHBOUR_COLUMNS = [("task_id", "Task"), ("task_func_name", "App"), ("task_status_name", "State"), ("kind", "Edge")]
NEVER_RAN = {
    "dep_fail": "it failed because a dependency failed",
    "memo_done": "it was a memo hit: its result was reused",
    "cancelled": "the run ended before it could run",
    "failed": "it failed before it could be launched",
    "pending": "it was still waiting for its dependencies",
}


def layout(run_id: str, task_id: str = "", **_: Any) -> html.Div:
    """The task's page, or a message naming what is wrong with the run or task id."""
    number = _task_number(task_id)
    if number is None:
        return frame(TITLE, notice(f"{task_id!r} is not a task id: a task id is a whole number, such as 0 or 17 "
                                   f"(the run's tasks are numbered from 0)."), run_id=run_id)
    try:
        data = task_detail(context.engine(), run_id, number)
    except NothingMatches as e:
        return frame(TITLE, notice(str(e)), run_id=run_id)
    live = [dcc.Interval(id="task-refresh", interval=context.refresh_ms()),
            dcc.Store(id="task-token", data=change_token(context.engine(), run_id)),
            dcc.Store(id="task-params", data={"run_id": run_id, "task_id": number})] if data.live else []
    return frame(f"Task {number}: {data.task['task_func_name']}", html.Div(task_sections(data), id="task-body"),
                 *live, run_id=run_id, subtitle=_subtitle(data))


def _task_number(text: str) -> int | None:
    """The task id in ``text``, or None when it is not a whole number a store could hold."""
    text = (text or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _subtitle(data: TaskDetail) -> list[Any]:
    task = data.task
    parts: list[Any] = ["run ", dcc.Link(data.run_id, href=run_href(data.run_id)), " · app ",
                        dcc.Link(task["task_func_name"], href=app_href(data.run_id, task["task_func_name"]))]
    if data.live:
        parts.append(" · live: refreshes as the task moves")
    return parts


# --- the sections, for the page and the report -------------------------------------------------------
def task_sections(data: TaskDetail) -> list[Any]:
    """The page's body: summary, states, tries, arguments, files, resources, memo, neighbours."""
    return [summary_section(data),
            html.H2("States"), *states_section(data),
            html.H2("Tries"), *tries_section(data),
            html.H2("Arguments"), *arguments_section(data),
            html.H2("Inputs and outputs"), *files_section(data),
            html.H2("Resources"), resources_section(data.samples),
            html.H2("Memo and result"), *memo_section(data),
            html.H2("Neighbours"), *neighbours_section(data)]


def summary_section(data: TaskDetail) -> html.Table:
    task = data.task
    duration = seconds(task["task_time_invoked"], task["task_time_returned"])
    return kv_table([
        ("App", dcc.Link(task["task_func_name"], href=app_href(data.run_id, task["task_func_name"]))),
        ("Kind", task["app_kind"]), ("State", task["task_status_name"]), ("Executor", task["executor"]),
        ("Submitted", precise_time(task["task_time_invoked"])), ("Returned", precise_time(task["task_time_returned"])),
        ("Submitted to returned", _seconds(duration)), ("Failed tries", str(task["task_fail_count"] or 0)),
        ("Cached (cache=True)", "yes" if task["task_memoize"] == "True" else "no"),
        ("Error", code_block(task["error"], "task-error") if task["error"] else None),
    ], table_id="task-summary")


def states_section(data: TaskDetail) -> list[Any]:
    """Every state change, in order, with its cause and detail."""
    if not data.states.items:
        return [notice("No state change of this task was recorded.", "info")]
    return [table(STATE_COLUMNS, data.states.items, table_id="task-states", formats={"timestamp": precise_time}),
            more_note(data.states.more, "state changes")]


def tries_section(data: TaskDetail) -> list[Any]:
    """The tries (executor, block, worker, host, pid, times, error, traceback), or why there were none."""
    if data.never_ran:
        return [html.Div(["This task never ran: no try was made (", _never_ran(data), ")."], className="notice info",
                         role="status", id="task-never-ran")]
    items = [dict(attempt, run_time=seconds(attempt["task_try_time_running"] or attempt["task_try_time_launched"],
                                            attempt["task_try_time_returned"]))
             for attempt in data.tries.items]
    times = {key: precise_time for key in ("task_try_time_launched", "task_try_time_running",
                                           "task_try_time_returned")}
    parts: list[Any] = [table(TRY_COLUMNS, items, table_id="task-tries", formats={**times, "run_time": _seconds}),
                        more_note(data.tries.more, "tries")]
    parts += [html.Details([html.Summary(f"Traceback of try {attempt['try_id']}"), code_block(attempt["traceback"])],
                           className="traceback") for attempt in data.tries.items if attempt["traceback"]]
    return parts


def _never_ran(data: TaskDetail) -> Any:
    state = data.task["task_status_name"] or ""
    why: list[Any] = [NEVER_RAN.get(state, f"it is {state or 'in an unknown state'}")]
    if state == "memo_done" and data.task["memo_source_run"] is not None:
        why += [" from ", _memo_source_link(data, "task-never-ran-source")]
    if state == "dep_fail":
        failed = [up for up in data.upstream.items if up["task_status_name"] in ("failed", "dep_fail")]
        for i, up in enumerate(failed):
            why += [": " if i == 0 else ", ",
                    dcc.Link(f"task {up['task_id']} ({up['task_func_name']}, {up['task_status_name']})",
                             href=task_href(data.run_id, up["task_id"]))]
        first = [root for root in data.first_failures if root.task_id not in {up["task_id"] for up in failed}]
        for i, root in enumerate(first):
            why += ["; the first failure upstream: " if i == 0 else ", ",
                    dcc.Link(f"task {root.task_id} ({root.app})", href=task_href(data.run_id, root.task_id),
                             id=f"task-first-failure-{root.task_id}")]
    return html.Span(why)


def arguments_section(data: TaskDetail) -> list[Any]:
    """The arguments as recorded (text, shown as text), their digest and note, a bash app's command line."""
    task = data.task
    parts: list[Any] = [code_block(task["args_repr"] if task["args_repr"] is not None else "(not recorded)",
                                   "task-args"),
                        kv_table([("Arguments digest", task["args_digest"]), ("Note", task["args_note"])],
                                 table_id="task-args-facts")]
    if task["command"]:
        parts += [_subheading("Command line"), code_block(task["command"], "task-command")]
    elif task["app_kind"] == "bash":
        parts.append(notice("No command line was recorded: the app did not get to render it.", "info"))
    return parts


def files_section(data: TaskDetail) -> list[Any]:
    """Files the task read and wrote (with content digest and size), and its stdout/stderr paths."""
    task = data.task
    parts: list[Any] = []
    if data.files.items:
        parts += [table(FILE_COLUMNS, data.files.items, table_id="task-files",
                        links={"url": lambda row: file_href(row["file_id"])},
                        formats={"size": fmt_bytes, "timestamp": precise_time}),
                  more_note(data.files.more, "file uses")]
    else:
        parts.append(notice("This task used no recorded files.", "info"))
    streams = [(name, task[f"task_{name}"]) for name in ("stdin", "stdout", "stderr") if task[f"task_{name}"]]
    if streams:
        parts += [_subheading("Standard streams"), kv_table(streams, table_id="task-streams")]
    return parts


def resources_section(samples: Samples) -> Any:
    """CPU time and RSS over time, per try, or why there are no samples."""
    if not samples.points:
        return notice(f"no resource samples: {samples.reason or 'none were recorded'}", "info")
    note = f"{samples.total:,} samples" + (f", shown binned by {_seconds(samples.bin_seconds)}: each point is a "
                                           f"bin's largest CPU time and RSS" if samples.bin_seconds else "")
    return html.Div([dcc.Graph(id="task-resources", figure=figure_resources(samples), config={"displaylogo": False}),
                     html.Div(note, className="more")], className="figure")


def memo_section(data: TaskDetail) -> list[Any]:
    """The memo key and its components, the cache notes, the memo source when it was a hit, and
    the result and app digests."""
    task = data.task
    app_link = dcc.Link(task["app_digest"], href=app_href(data.run_id, task["task_func_name"]),
                        id="task-app-digest") if task["app_digest"] else None
    source = _memo_source_link(data, "task-memo-source") if task["memo_source_run"] is not None else None
    parts: list[Any] = [kv_table([
        ("Memo key", task["task_hashsum"]), ("Memo hit of", source), ("Result digest", task["result_digest"]),
        ("App digest", app_link), ("Cache notes", html.Ul([html.Li(note) for note in data.cache_notes])
                                   if data.cache_notes else None),
    ], table_id="task-memo")]
    if data.memo_components:
        parts += [_subheading("Memo key components"),
                  table([("component", "Component"), ("digest", "Digest")],
                        [{"component": key, "digest": value} for key, value in sorted(data.memo_components.items())],
                        table_id="task-memo-components")]
    elif task["task_memoize"] != "True":
        parts.append(notice("This app is not cached (declare it with cache=True to memoize it): it has no memo key.",
                            "info"))
    return parts


def _memo_source_link(data: TaskDetail, link_id: str) -> Any:
    run_id, task_id = data.task["memo_source_run"], data.task["memo_source_task"]
    label = f"run {run_id[:8]}, task {task_id}" + (" (this run)" if run_id == data.run_id else "")
    if data.memo_source_exists is False:
        return html.Span(f"{label}: that run is no longer in this store")
    href = task_href(run_id, task_id) if task_id is not None else run_href(run_id)
    return dcc.Link(label, href=href, id=link_id)


def neighbours_section(data: TaskDetail) -> list[Any]:
    """The tasks this one waited on (upstream) and those that waited on it (downstream)."""
    parts: list[Any] = []
    for title, page, table_id in (("Waited on", data.upstream, "task-upstream"),
                                  ("Waited on by", data.downstream, "task-downstream")):
        parts.append(_subheading(title))
        if not page.items:
            parts.append(html.Div("none", className="more"))
            continue
        parts += [table(NEIGHBOUR_COLUMNS, page.items, table_id=table_id,
                        links={"task_id": lambda row: task_href(data.run_id, row["task_id"])}),
                  more_note(page.more, "tasks")]
    return parts


def _subheading(text: str) -> html.H3:
    return html.H3(text, style={"fontSize": "0.95rem", "margin": "0.8rem 0 0.3rem"})


# --- figure -------------------------------------------------------------------------------------------
MARKERS_UP_TO = 500
"""Samples up to which each is marked on its line."""


def figure_resources(samples: Samples) -> dict[str, Any]:
    """CPU time (user + system, seconds) and resident memory (MiB) over time, a line per try, on two
    stacked plots sharing the time axis. A plain figure dict: plotly's figure objects and
    make_subplots cost more than the rest of the page to build."""
    tries = sorted({point["try_id"] for point in samples.points})
    mode = "lines+markers" if len(samples.points) <= MARKERS_UP_TO else "lines"  # a marker is an SVG node
    data: list[dict[str, Any]] = []
    for try_id in tries:
        points = [point for point in samples.points if point["try_id"] == try_id]
        times = [local_time(point["timestamp"]) for point in points]
        common = {"type": "scatter", "x": times, "mode": mode, "legendgroup": f"try {try_id}", "xaxis": "x"}
        data.append(dict(common, y=[point["cpu"] for point in points], name=f"try {try_id} CPU", yaxis="y"))
        data.append(dict(common, y=[None if point["rss"] is None else point["rss"] / 2 ** 20 for point in points],
                         name=f"try {try_id} RSS", yaxis="y2"))
    zone = datetime.datetime.now().astimezone().tzname()
    grid = {"gridcolor": "#eef1f6", "zerolinecolor": "#eef1f6"}
    title = {"xref": "paper", "yref": "paper", "x": 0.5, "xanchor": "center", "yanchor": "bottom",
             "showarrow": False, "font": {"size": 14}}
    layout = {"height": 480, "margin": {"l": 60, "r": 20, "t": 40, "b": 50}, "plot_bgcolor": "#fff",
              "showlegend": len(tries) > 1, "hovermode": "closest",
              "xaxis": dict(grid, anchor="y2", title={"text": f"time ({zone})"}),
              "yaxis": dict(grid, domain=[0.55, 1.0], anchor="x"),
              "yaxis2": dict(grid, domain=[0.0, 0.45], anchor="x"),
              "annotations": [dict(title, text="CPU time, user + system (s)", y=1.0),
                              dict(title, text="resident memory, RSS (MiB)", y=0.45)]}
    return {"data": data, "layout": layout}


# --- formats ------------------------------------------------------------------------------------------
def local_time(value: Any) -> Any:
    """A stored UTC time as a naive local time, which plotly draws as it is."""
    if not isinstance(value, datetime.datetime):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone().replace(tzinfo=None)


def precise_time(value: Any) -> str:
    """A time in local time to the millisecond, with the zone's name (a task's states are often
    milliseconds apart)."""
    if not isinstance(value, datetime.datetime):
        return "" if value is None else str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    local = value.astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d} " + (local.tzname() or "")


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if abs(value) < 1:
        return f"{value * 1e3:.1f} ms"
    return fmt_duration(value)


# --- live -----------------------------------------------------------------------------------------------
def register_callbacks(app: Dash) -> None:
    @app.callback(Output("task-body", "children"), Output("task-token", "data"), Output("task-refresh", "disabled"),
                  Input("task-refresh", "n_intervals"), State("task-token", "data"), State("task-params", "data"),
                  prevent_initial_call=True)
    @guarded_callback(lambda message: (notice(message), no_update, True))
    def refresh(_ticks: int | None, token: list[Any] | None, params: dict[str, Any] | None) -> Any:
        if not params:
            raise PreventUpdate
        latest = change_token(context.engine(), params["run_id"])
        if latest == token:
            raise PreventUpdate
        data = task_detail(context.engine(), params["run_id"], int(params["task_id"]))
        return task_sections(data), latest, not data.live
