"""Apps: per app of a run, its calls, tasks by state, failures, retries, memo hits and task
durations (a box per app, built from durations binned in SQL), and the recorded source of every
version of its code. ``?app=NAME`` focuses one app: its duration histogram, its versions and its
slowest tasks."""
from __future__ import annotations

from itertools import pairwise
from typing import Any

import plotly.graph_objects as go
from dash import Dash, Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from parsl_repro.monitoring.queries import NothingMatches
from parsl_repro.monitoring.read.apps import AppSummary, AppVersion, RunApps, run_apps
from parsl_repro.monitoring.read.runs import change_token
from parsl_repro.viz import context
from parsl_repro.viz.components import (
    app_href,
    code_block,
    fmt_duration,
    fmt_time,
    frame,
    guarded_callback,
    more_note,
    notice,
    query_param,
    run_href,
    short,
    table,
    task_href,
    tasks_href,
)

PATH = "/run/<run_id>/apps"
TITLE = "Apps"
VIEW = "apps"

COLUMNS = [("name", "App"), ("kind", "Kind"), ("calls", "Calls"), ("state_summary", "By state"),
           ("failures", "Failed"), ("dep_failures", "Dependency failures"), ("failed_tries", "Failed tries"),
           ("retries", "Retries"), ("memo_hits", "Memo hits"), ("finished", "Finished"), ("min", "Shortest"),
           ("median", "Median ≈"), ("mean", "Mean"), ("max", "Longest"), ("total_time", "Total time"),
           ("versions", "Code versions")]
SLOWEST_COLUMNS = [("task_id", "Task"), ("task_status_name", "State"), ("duration", "Duration"),
                   ("task_fail_count", "Failed tries"), ("task_time_invoked", "Submitted"), ("args", "Arguments")]
DURATION_NOTE = ("A task's duration runs from its submission to its result: waiting on dependencies and retries "
                 "included, to the millisecond. Medians and quartiles are estimated from the histogram, to "
                 "within one bin.")


def layout(run_id: str, app: str | list[str] | None = None, **_: Any) -> html.Div:
    """The run's apps, or one app's (``?app=NAME``), or a message naming the run's apps."""
    focus = query_param(app) or None
    try:
        data = run_apps(context.engine(), run_id, focus)
    except NothingMatches as e:
        return frame(TITLE, notice(str(e)), dcc.Link("all apps of this run", href=run_href(run_id, VIEW)),
                     run_id=run_id, view=VIEW)
    live = [dcc.Interval(id="apps-refresh", interval=context.refresh_ms()),
            dcc.Store(id="apps-token", data=_token(run_id)),
            dcc.Store(id="apps-params", data={"run_id": run_id, "app": focus})] if data.live else []
    title = f"App {focus}" if focus else TITLE
    return frame(title, html.Div(apps_sections(data), id="apps-body"), *live, run_id=run_id, view=VIEW,
                 subtitle=_subtitle(data))


def _subtitle(data: RunApps) -> list[Any]:
    parts: list[Any] = ["run ", dcc.Link(data.run_id, href=run_href(data.run_id))]
    if data.focus:
        parts += [" · ", dcc.Link("all apps of this run", href=run_href(data.run_id, VIEW), id="apps-all")]
    if data.live:
        parts.append(" · live: refreshes as tasks finish")
    return parts


# --- the sections, for the page and the report ------------------------------------------------------
def apps_sections(data: RunApps) -> list[Any]:
    """The page's body: the apps table, the durations figure (a box per app, or for a focused app
    its histogram), the focused app's slowest tasks, and the code versions."""
    if not data.apps:
        return [notice("This run has no tasks yet, so no apps.", "info")]
    parts: list[Any] = [apps_table(data), more_note(data.apps_total - len(data.apps), "apps"),
                        html.H2("Durations")]
    if data.focus:
        app = data.apps[0]
        parts += [_graph("apps-histogram", figure_histogram(app)) if app.finished
                  else notice(f"{_none_finished(data, app.name)}, so it has no durations.", "info")]
    else:
        parts.append(_graph("apps-durations", figure_durations(data.apps)))
    parts.append(html.Div(DURATION_NOTE, className="more"))
    if data.focus and data.slowest is not None:
        parts += [html.H2(f"Slowest tasks of {data.focus}"), slowest_table(data)]
    parts += [html.H2("Code versions"), *versions_section(data)]
    return parts


def apps_table(data: RunApps) -> Any:
    """One row per app: calls, states, failures, retries, memo hits and duration statistics."""
    items = [_row(app) for app in data.apps]
    seconds = {key: _seconds for key in ("min", "median", "mean", "max", "total_time")}
    return table(COLUMNS, items, table_id="apps", links={"name": lambda row: app_href(data.run_id, row["name"])},
                 formats=seconds, row_class=lambda row: "has-failures" if row["failures"] else "")


def _row(app: AppSummary) -> dict[str, Any]:
    return {"name": app.name, "kind": app.kind, "calls": app.calls,
            "state_summary": ", ".join(f"{state} {n}" for state, n in sorted(app.states.items(),
                                                                            key=lambda kv: -kv[1])),
            "failures": app.failures, "dep_failures": app.dep_failures, "failed_tries": app.failed_tries,
            "retries": app.retries, "memo_hits": app.memo_hits, "finished": app.finished, "min": app.min,
            "median": app.median, "mean": app.mean, "max": app.max, "total_time": app.total_time,
            "versions": app.versions}


def slowest_table(data: RunApps) -> Any:
    """The focused app's slowest finished tasks, linking to their pages."""
    assert data.slowest is not None
    if not data.slowest.items:
        return notice(f"{_none_finished(data, data.focus or '')}.", "info")
    return html.Div([table(SLOWEST_COLUMNS, data.slowest.items, table_id="apps-slowest",
                           links={"task_id": lambda row: task_href(data.run_id, row["task_id"])},
                           formats={"duration": _seconds, "task_time_invoked": fmt_time}),
                     more_note(data.slowest.more, "finished tasks"),
                     dcc.Link(f"every task of {data.focus}, by task id", id="apps-all-tasks",
                              href=tasks_href(data.run_id, data.focus))])


def _none_finished(data: RunApps, app: str) -> str:
    if data.live or data.outcome == "running":
        return f"No task of {app} has finished yet"
    return f"No task of {app} finished: the run ended ({data.outcome}) before any did"


def versions_section(data: RunApps) -> list[Any]:
    """Each version of the apps' code the run used: digest, number of tasks and recorded source."""
    parts: list[Any] = [_version(data.run_id, version) for version in data.versions]
    parts.append(more_note(data.versions_total - len(data.versions), "code versions"))
    if data.unidentified:
        parts.append(notice(f"No code recorded for {', '.join(data.unidentified)}: the run was recorded by a "
                            f"parsl_repro that kept the code of cached apps only, or the code's identity could not "
                            f"be computed (a functools.partial over values that cannot be hashed).", "info"))
    return [part for part in parts if part is not None]


def _version(run_id: str, version: AppVersion) -> html.Div:
    tasks = f"{version.tasks:,} task{'s' if version.tasks != 1 else ''}"
    facts: list[Any] = [html.Strong(dcc.Link(version.app, href=app_href(run_id, version.app))), " · ",
                        html.Code(short(version.app_digest, 16), title=version.app_digest), " · ",
                        f"{version.kind or 'unknown'} app {version.module or '?'}.{version.qualname or version.app}",
                        " · ", tasks, " (first: ", dcc.Link(f"task {version.first_task}",
                                                            href=task_href(run_id, version.first_task)), ")"]
    source: Any = code_block(version.source) if version.source is not None else \
        notice("Its source was not recorded (the function's source file could not be read).", "info")
    cut = html.Div(f"... the source is longer: its first {len(version.source or ''):,} characters are shown",
                   className="more") if version.source_cut else None
    return html.Div([html.Div(facts), source, cut], className="app-version",
                    **{"data-digest": version.app_digest, "data-app": version.app})


# --- figures -----------------------------------------------------------------------------------------
def figure_durations(apps: list[AppSummary]) -> go.Figure:
    """A box per app (shortest, quartiles, median, longest, mean), estimated from its duration
    histogram: apps with no finished task are left out."""
    shown = [app for app in apps if app.finished and app.min is not None]
    figure = go.Figure(go.Box(
        x=[app.name for app in shown], lowerfence=[app.min for app in shown],
        q1=[app.quantile(0.25) for app in shown], median=[app.median for app in shown],
        q3=[app.quantile(0.75) for app in shown], upperfence=[app.max for app in shown],
        mean=[app.mean for app in shown], boxpoints=False, name="duration", marker_color="#3b6ea8"))
    figure.update_layout(margin={"l": 60, "r": 20, "t": 30, "b": 60}, height=360, showlegend=False,
                         yaxis_title="task duration (s)", xaxis_title="app", template="plotly_white")
    return figure


def figure_histogram(app: AppSummary) -> go.Figure:
    """One app's task durations as a bar histogram of the bins counted in SQL."""
    histogram = app.histogram
    edges = histogram.edges()
    centres = [(left + right) / 2 for left, right in pairwise(edges)]
    ranges = [f"{_seconds(left)} to {_seconds(right)}" for left, right in pairwise(edges)]
    figure = go.Figure(go.Bar(x=centres, y=histogram.counts, width=[histogram.width] * len(centres),
                              customdata=ranges, hovertemplate="%{customdata}: %{y} tasks<extra></extra>",
                              marker_color="#3b6ea8", name=app.name))
    figure.update_layout(margin={"l": 60, "r": 20, "t": 30, "b": 50}, height=340, bargap=0.05,
                         xaxis_title="task duration (s)", yaxis_title="tasks", template="plotly_white",
                         title={"text": f"{app.name}: {app.finished:,} finished tasks", "font": {"size": 13}})
    return figure


def _graph(graph_id: str, figure: go.Figure) -> html.Div:
    return html.Div(dcc.Graph(id=graph_id, figure=figure, config={"displaylogo": False}), className="figure")


def _seconds(value: float | None) -> str:
    """A duration, under a second to the millisecond (fmt_duration shows them as 0.00 s): the
    store's durations are exact to the millisecond only."""
    if value is None:
        return ""
    if abs(value) < 5e-4:
        return "0 ms" if value == 0 else "< 1 ms"
    if abs(value) < 1:
        return f"{value * 1e3:.0f} ms"
    return fmt_duration(value)


# --- live ----------------------------------------------------------------------------------------------
def _token(run_id: str) -> list[Any]:
    return change_token(context.engine(), run_id)


def register_callbacks(app: Dash) -> None:
    @app.callback(Output("apps-body", "children"), Output("apps-token", "data"),
                  Output("apps-refresh", "disabled"),
                  Input("apps-refresh", "n_intervals"), State("apps-token", "data"), State("apps-params", "data"),
                  prevent_initial_call=True)
    @guarded_callback(lambda message: (notice(message), no_update, True))
    def refresh(_ticks: int | None, token: list[Any] | None, params: dict[str, Any] | None) -> Any:
        if not params:
            raise PreventUpdate
        latest = _token(params["run_id"])
        if latest == token:
            raise PreventUpdate
        data = run_apps(context.engine(), params["run_id"], params.get("app"))
        return apps_sections(data), latest, not data.live
