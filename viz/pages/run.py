"""Run overview: the run's outcome and counts, tasks by state over time, a Gantt of its tries by
executor, block and worker coloured by app (each try below a threshold, busy time per lane and
time bin above it, with single tries again once a zoom narrows the window enough), tasks per app,
and the run's record. While the run is live the page follows it without reloading.

Who draws what, and when::

    layout ----------> cards, record; stores: run id, change token, redraw counter
    redraw counter --> draw_figures (progress, apps) and draw_gantt (Gantt, its note, its window)
    Gantt zoom ------> ZOOMS (in the browser) -> zoom_gantt: the window re-read, if the run was binned
    Gantt click -----> open_task: the task's page
    interval (live) -> follow: change token moved? cards, and the redraw counter bumped

The builders ``cards``, ``figure_progress``, ``figure_gantt``, ``figure_apps`` and
``record_section`` take the read layer's data and need no server: the HTML report uses them."""
from __future__ import annotations

import datetime
import html as html_text
import shlex
import time
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
from dash import Dash, Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from parsl_repro.monitoring.read.overview import (
    AppCounts,
    AppsRunning,
    Gantt,
    Progress,
    app_counts,
    apps_running,
    gantt,
    kept,
    overview_header,
    progress,
    run_record,
)
from parsl_repro.monitoring.read.runs import change_token
from parsl_repro.viz import context
from parsl_repro.viz.components import (
    code_block,
    fmt_duration,
    fmt_time,
    frame,
    guarded_callback,
    kv_table,
    more_note,
    notice,
    run_href,
    task_href,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

PATH = "/run/<run_id>"
TITLE = "Run overview"

BIG_RUN = 10_000
"""A live run with more tasks than this redraws its figures at most every ``BIG_RUN_REDRAW`` s."""
BIG_RUN_REDRAW = 10.0
GRAPH_CONFIG = {"displaylogo": False, "responsive": True}

STATE_COLORS = {"pending": "#b8c0cc", "launched": "#4c78a8", "running": "#2f5d8a", "running_ended": "#6a8fb8",
                "joining": "#9d7cc1", "fail_retryable": "#f2a33a", "exec_done": "#54a24b", "memo_done": "#72c1b4",
                "failed": "#d62728", "dep_fail": "#a8445b", "cancelled": "#8c6d31", "unknown": "#7f7f7f"}
APP_COLORS = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d",
              "#ff9da6", "#bab0ac", "#1f77b4", "#2ca02c", "#8c564b", "#17becf", "#bcbd22", "#7f7f7f"]


# --- times on the figures' axes: this machine's local time, as fmt_time shows times -------------------
def _zone() -> str:
    return datetime.datetime.now().astimezone().tzname() or "local time"


def _plot_time(when: datetime.datetime) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")


def _from_plot_time(text: Any) -> datetime.datetime | None:
    """A time read off a figure's axis (local, naive), as an aware datetime; None if unreadable."""
    try:
        return datetime.datetime.fromisoformat(str(text).strip()).astimezone(datetime.UTC)
    except ValueError:
        return None


def _fine_duration(seconds: float) -> str:
    """``fmt_duration``, with milliseconds below a tenth of a second (time bins can be that short)."""
    return f"{seconds * 1000:.3g} ms" if seconds < 0.1 else fmt_duration(seconds)


def _escaped(text: Any) -> str:
    """Store text for a figure's labels, which plotly reads as a subset of HTML."""
    return html_text.escape(str(text), quote=False)


def _empty_figure(message: str, height: int = 220) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(height=height, margin={"l": 40, "r": 20, "t": 20, "b": 30}, plot_bgcolor="#fff",
                         xaxis={"visible": False}, yaxis={"visible": False},
                         annotations=[{"text": message, "showarrow": False, "xref": "paper", "yref": "paper",
                                       "x": 0.5, "y": 0.5, "font": {"size": 14, "color": "#5b6475"}}])
    return figure


# --- the builders (no server needed) -------------------------------------------------------------------
def cards(header: dict[str, Any]) -> html.Div:
    """The run's header as cards: outcome (marked live), tasks, completed, failures, retries, memo
    hits, tries in flight, duration, start, and counts by state. ``header`` is
    ``overview.overview_header``'s (``runs.run_header``'s works too, with fewer cards)."""
    outcome = header.get("outcome") or "unknown"
    shown: list[Any] = [outcome]
    if header.get("live"):
        shown.append(html.Span(" ● live", className="live-mark", style={"color": "#1a7f37"}))
    duration = header.get("duration")
    if duration is not None:
        took = fmt_duration(duration)
    elif header.get("span") is not None:
        took = f"{fmt_duration(header['span'])} " + ("so far" if header.get("live") else "until its last record")
    else:
        took = ""
    states = header.get("states") or {}
    items: list[tuple[str, str, Any]] = [
        ("outcome", "outcome (live: this page follows the run)" if header.get("live") else "outcome", shown),
        ("tasks", "tasks", header.get("tasks")),
        ("completed", "completed", header.get("completed")), ("failures", "failed", header.get("failures")),
        ("retries", "retries", header.get("retries")), ("memo_hits", "memo hits", header.get("memo_hits")),
        ("in_flight", "tries in flight", header.get("in_flight")), ("duration", "duration", took),
        ("started", "started", fmt_time(header.get("time_began"))),
        ("states", "by state", ", ".join(f"{state} {n}" for state, n in sorted(states.items(), key=lambda kv: -kv[1]))
         or "no tasks"),
    ]
    return html.Div([html.Div([html.Div(value, className="value", id=f"run-card-{key}"),
                               html.Div(label, className="label")],
                              className=f"card card-{key}" + (f" outcome-{outcome}" if key == "outcome" else ""))
                     for key, label, value in items if value is not None], className="cards", id="run-card-list")


def figure_progress(data: Progress) -> go.Figure:
    """Tasks by state over the run, stacked: one area per state, at most ``MAX_BINS`` points each."""
    if not data.counts:
        return _empty_figure("No state change was recorded for this run.")
    x = [_plot_time(when) for when in data.times]
    figure = go.Figure([go.Scatter(x=x, y=data.counts[state], name=state, mode="lines", stackgroup="states",
                                   line={"width": 0.5, "color": STATE_COLORS.get(state, STATE_COLORS["unknown"])},
                                   hovertemplate=f"{_escaped(state)}: %{{y}}<extra></extra>")
                        for state in data.states])
    figure.update_layout(height=300, margin={"l": 50, "r": 20, "t": 10, "b": 40}, hovermode="x unified",
                         plot_bgcolor="#fff", legend={"orientation": "h", "y": -0.25, "traceorder": "normal"},
                         xaxis={"title": {"text": f"time ({_zone()})"}, "gridcolor": "#eef1f6"},
                         yaxis={"title": {"text": "tasks"}, "gridcolor": "#eef1f6", "rangemode": "tozero"})
    return figure


def figure_gantt(data: Gantt) -> go.Figure:
    """The Gantt: each try as a bar on its lane, one bar trace per app (tries in flight paler and
    hatched); or, when ``data`` is binned, a heatmap of tries running per lane and time bin. A bar
    carries its task id (``customdata``) for a click to open it."""
    if data.kind == "empty":
        return _empty_figure("No try was recorded in this time window." if data.window else
                             "No try was recorded for this run (memo hits and dependency failures have none).")
    low, high = data.shown
    lanes = [_escaped(lane) for lane in data.lanes]
    height = int(min(900, max(260, 110 + 22 * len(lanes))))
    layout: dict[str, Any] = {
        "height": height, "margin": {"l": 10, "r": 20, "t": 10, "b": 40}, "plot_bgcolor": "#fff",
        "uirevision": "gantt", "hovermode": "closest", "hoverdistance": 30, "legend": {"title": {"text": "app"}},
        "xaxis": {"title": {"text": f"time ({_zone()})"}, "gridcolor": "#eef1f6", "type": "date"},
        "yaxis": {"type": "category", "categoryorder": "array", "categoryarray": lanes, "autorange": "reversed",
                  "automargin": True, "gridcolor": "#f3f5f8"}}
    if data.window is not None:
        layout["xaxis"]["range"] = [_plot_time(low), _plot_time(high)]
    if data.kind == "binned":
        step = datetime.timedelta(seconds=data.bin_seconds / 2)
        figure = go.Figure(go.Heatmap(
            x=[_plot_time(start + step) for start in data.bin_starts], y=lanes, colorscale="Blues",
            z=[[round(value, 3) for value in series] for series in data.busy],
            zmin=0, colorbar={"title": {"text": "tries<br>running"}}, xgap=0, ygap=1,
            hovertemplate="%{y}<br>%{x}<br>%{z:.2f} tries running (mean over the bin)<extra></extra>"))
        figure.update_layout(**layout)
        return figure
    apps = sorted({item["app"] for item in data.tries})
    traces = []
    for number, app in enumerate(apps):
        color = APP_COLORS[number % len(APP_COLORS)]
        for in_flight in (False, True):
            chosen = [item for item in data.tries if item["app"] == app and item["in_flight"] == in_flight]
            if not chosen:
                continue
            # a horizontal bar per try, from its start (base) for its length in ms, as plotly's own
            # timelines draw them; a white edge tells apart tries that follow each other closely
            marker: dict[str, Any] = {"color": color, "line": {"width": 0.5, "color": "#fff"}}
            if in_flight:  # paler and hatched: one in flight since the last record has no end
                marker.update(opacity=0.5, pattern={"shape": "/", "fgcolor": "#fff", "size": 6})
            traces.append(go.Bar(
                orientation="h", y=[_escaped(item["lane"]) for item in chosen],
                base=[_plot_time(item["start"]) for item in chosen],
                x=[(item["end"] - item["start"]).total_seconds() * 1000 for item in chosen],
                customdata=[item["task_id"] for item in chosen], hovertext=[_hover(item) for item in chosen],
                hoverinfo="text", marker=marker, width=0.8, legendgroup=_escaped(app),
                name=_escaped(app) + (" (in flight)" if in_flight else "")))
    layout["barmode"] = "overlay"
    figure = go.Figure(traces)
    figure.update_layout(**layout)
    return figure


def _hover(item: dict[str, Any]) -> str:
    lines = [f"task {item['task_id']} try {item['try_id']}: {_escaped(item['app'])}", _escaped(item["lane"]),
             f"launched {fmt_time(item['launched'])}"]
    if item.get("running") is not None:
        lines.append(f"running {fmt_time(item['running'])}")
    if item["in_flight"]:
        lines.append("in flight: no returned time recorded")
    else:
        took = fmt_duration((item["end"] - item["start"]).total_seconds())
        lines.append(f"returned {fmt_time(item['returned'])} after {took}")
    lines.append("click to open the task")
    return "<br>".join(lines)


def gantt_note(data: Gantt) -> html.Div:
    """What the Gantt shows: how many tries, binned or not and why, and the tries in flight."""
    parts: list[Any] = []
    where = (f" between {fmt_time(data.window[0])} and {fmt_time(data.window[1])}" if data.window else "")
    if data.kind == "tries":
        parts.append(f"{data.total:,} tr{'y' if data.total == 1 else 'ies'}{where}, one bar each, on a lane per "
                     f"executor, block and worker (tries that overlap on one worker get numbered rows). "
                     f"Click a bar to open its task.")
    elif data.kind == "binned":
        lanes = ("one lane per executor and block (too many workers for a lane each)" if data.lane_level == "block"
                 else "one lane per executor, block and worker")
        parts.append(f"{data.total:,} tries{where}: more than {data.max_tries:,}, so each cell shows how many tries "
                     f"were running on average over {_fine_duration(data.bin_seconds)}, {lanes}. Zoom in (drag across "
                     f"the time axis) to see single tries; double-click to zoom back out.")
    if data.in_flight:
        parts.append(html.Div(
            f"{data.in_flight:,} tr{'y is' if data.in_flight == 1 else 'ies are'} in flight: no returned time was "
            f"recorded, so {'it is' if data.in_flight == 1 else 'they are'} drawn up to the run's last recorded "
            f"time, {fmt_time(data.span.end)} (paler and hatched).",
            className="in-flight-note", id="run-gantt-in-flight"))
    return html.Div(parts, className="subtitle")


def figure_apps(data: AppCounts) -> go.Figure:
    """Tasks per app, stacked by state, the apps with most tasks first."""
    if not data.items:
        return _empty_figure("This run has no tasks.")
    apps = [_escaped(item["app"]) for item in data.items]
    figure = go.Figure([go.Bar(x=apps, y=[item["states"].get(state, 0) for item in data.items], name=state,
                               marker={"color": STATE_COLORS.get(state, STATE_COLORS["unknown"])},
                               hovertemplate=f"%{{x}}: %{{y}} {_escaped(state)}<extra></extra>")
                        for state in data.states])
    figure.update_layout(barmode="stack", height=300, margin={"l": 50, "r": 20, "t": 10, "b": 60},
                         plot_bgcolor="#fff", legend={"title": {"text": "state"}},
                         yaxis={"title": {"text": "tasks"}, "gridcolor": "#eef1f6"}, xaxis={"type": "category"})
    return figure


def figure_running(data: AppsRunning) -> go.Figure:
    """Tries running per app over the run (mean per time bin), stacked: Parsl's "execution tries
    per app"."""
    if not data.apps:
        return _empty_figure("No try was recorded for this run (memo hits and dependency failures have none).")
    step = datetime.timedelta(seconds=data.bin_seconds / 2)
    x = [_plot_time(start + step) for start in data.bin_starts]
    colors = {app: APP_COLORS[number % len(APP_COLORS)] for number, app in enumerate(sorted(data.apps))}
    figure = go.Figure([go.Scatter(x=x, y=[round(value, 3) for value in series], name=_escaped(app), mode="lines",
                                   stackgroup="apps", line={"width": 0.5, "color": colors[app]},
                                   hovertemplate=f"{_escaped(app)}: %{{y:.2f}} tries running<extra></extra>")
                        for app, series in data.apps.items()])
    figure.update_layout(height=300, margin={"l": 50, "r": 20, "t": 10, "b": 40}, plot_bgcolor="#fff",
                         legend={"title": {"text": "app"}},
                         xaxis={"title": {"text": f"time ({_zone()})"}, "gridcolor": "#eef1f6"},
                         yaxis={"title": {"text": "tries running"}, "gridcolor": "#eef1f6", "rangemode": "tozero"})
    return figure


def record_section(record: dict[str, Any]) -> html.Div:
    """The run's record: where, by whom, which script and code version, environment, config."""
    git_dirty = record.get("git_dirty")
    dirty = None if git_dirty is None else ("yes: uncommitted changes" if git_dirty else "no")
    parent = record.get("parent_run_id")
    parent_shown: Any = None
    if parent:
        parent_shown = (dcc.Link(parent, href=run_href(parent), id="run-parent") if record.get("parent_in_store")
                        else f"{parent} (not in this store)")
    argv = record.get("argv")
    packages = record.get("packages")
    packages_shown: Any = None
    if packages is not None:
        packages_shown = html.Details([html.Summary(f"{len(packages)} packages"),
                                       code_block("\n".join(f"{name}=={version}" for name, version in packages),
                                                  "run-packages")], id="run-packages-details")
    memo = record.get("memo_sources")
    pairs = [
        ("Run", record.get("run_id")), ("Workflow", record.get("workflow_name")),
        ("Script", record.get("script_path")), ("Script sha256", record.get("script_sha256")),
        ("Git repository", record.get("git_repository")), ("Git commit", record.get("git_commit")),
        ("Uncommitted changes", dirty), ("Diff sha256", record.get("git_diff_sha256")),
        ("Python", record.get("python_version")), ("Platform", record.get("platform")),
        ("parsl_repro", record.get("parsl_repro_version")), ("Packages", packages_shown),
        ("Parent run", parent_shown),
        ("Command line", shlex.join(str(a) for a in argv) if isinstance(argv, list) else argv),
        ("Working directory", record.get("cwd")), ("Host", record.get("host")), ("User", record.get("user")),
        ("Process id", record.get("pid")), ("Run directory", record.get("rundir")),
        ("Memo sources", _memo_sources(memo)), ("Started", fmt_time(record.get("time_began"))),
        ("Ended", fmt_time(record.get("time_completed"))),
    ]
    config = record.get("config_summary")
    return html.Div([kv_table(pairs, "run-record-table"),
                     html.H3("Configuration"),
                     code_block(config, "run-config") if config else notice("No configuration was recorded.", "info")],
                    id="run-record")


def _memo_sources(memo: Any) -> str | None:
    if not isinstance(memo, dict):
        return None if memo is None else str(memo)
    if not memo.get("enabled", True):
        return "memoization off"
    parts = []
    if memo.get("from_store"):
        parts.append("earlier runs in the store")
    for key, what in (("runs", "runs"), ("files", "checkpoint files")):
        if memo.get(key):
            parts.append(f"{len(memo[key])} {what}")
    if memo.get("results") is not None:
        parts.append(f"{memo['results']:,} stored results at the start")
    return "; ".join(parts) or "this run's own results"


def report_section(engine: Engine, run_id: str) -> html.Div:
    """The overview for the HTML report: cards, progress, Gantt (drawn whole or binned), tasks per app
    and the record."""
    data = gantt(engine, run_id)
    apps = app_counts(engine, run_id)
    return html.Div([cards(overview_header(engine, run_id)),
                     html.H3("Progress"), dcc.Graph(figure=figure_progress(progress(engine, run_id))),
                     html.H3("Tries"), gantt_note(data), dcc.Graph(figure=figure_gantt(data)),
                     html.H3("Tasks per app"), dcc.Graph(figure=figure_apps(apps)), more_note(apps.more, "apps"),
                     html.H3("Tries running per app"), dcc.Graph(figure=figure_running(apps_running(engine, run_id))),
                     html.H3("Record"), record_section(run_record(engine, run_id))])


# --- the page --------------------------------------------------------------------------------------
def layout(run_id: str = "", **_: Any) -> html.Div:
    engine = context.engine()
    header = overview_header(engine, run_id)
    record = run_record(engine, run_id)
    token = change_token(engine, run_id)
    loading = _empty_figure("Drawing...")
    figures: tuple[Any, ...] = (loading, loading, None, loading, loading, None, {"window": None, "binned": False})
    # A finished run whose series this process keeps is drawn with the page, in one answer; else the
    # page comes first and its figures follow (reading a large run's series takes a second or more).
    drawn = not header["live"] and kept(engine, run_id)
    if drawn:
        apps = app_counts(engine, run_id)
        figures = (figure_progress(progress(engine, run_id)), figure_apps(apps), more_note(apps.more, "apps"),
                   figure_running(apps_running(engine, run_id)), *_draw_gantt(run_id, None, None))
    progress_figure, apps_figure, apps_note, running_figure, gantt_figure, gantt_text, gantt_window = figures
    subtitle = f"{header.get('workflow_name') or 'workflow'} · run {run_id}"
    return frame(
        TITLE,
        html.Div(cards(header), id="run-cards"),
        html.H2("Progress"),
        html.Div("How many tasks were in each state, over the run.", className="subtitle"),
        dcc.Graph(id="run-progress", figure=progress_figure, config=GRAPH_CONFIG, className="figure"),
        html.H2("Tries"),
        html.Div(gantt_text, id="run-gantt-note"),
        dcc.Graph(id="run-gantt", figure=gantt_figure, config=GRAPH_CONFIG, className="figure"),
        html.H2("Tasks per app"),
        dcc.Graph(id="run-apps", figure=apps_figure, config=GRAPH_CONFIG, className="figure"),
        html.Div(apps_note, id="run-apps-note"),
        html.H2("Tries running per app"),
        html.Div("How many tries of each app were running, over the run (mean per time bin).", className="subtitle"),
        dcc.Graph(id="run-running", figure=running_figure, config=GRAPH_CONFIG, className="figure"),
        html.H2("Record"),
        html.Div(record_section(record), id="run-record-box"),
        dcc.Store(id="run-id", data=run_id),
        dcc.Store(id="run-token", data=token),
        dcc.Store(id="run-redraw", data={"n": 0, "at": time.time(), "drawn": drawn}),
        dcc.Store(id="run-gantt-window", data=gantt_window),
        dcc.Store(id="run-gantt-zoom"),
        dcc.Interval(id="run-refresh", interval=context.refresh_ms(), disabled=not header["live"]),
        dcc.Location(id="run-go", refresh="callback-nav"),
        run_id=run_id, view="", subtitle=subtitle)


ZOOMS = """function(relayout, shown) {
    const skip = window.dash_clientside.no_update;
    if (!relayout || !shown || !shown.binned) { return skip; }
    if (relayout['xaxis.autorange']) { return {'xaxis.autorange': true, 'at': Date.now()}; }
    const range = relayout['xaxis.range'] || [relayout['xaxis.range[0]'], relayout['xaxis.range[1]']];
    if (range[0] === undefined || range[1] === undefined) { return skip; }
    return {'xaxis.range': range, 'at': Date.now()};
}"""
"""In the browser: a relayout of a binned Gantt that changed its time axis, else nothing."""


def _zoom(relayout: dict[str, Any] | None) -> tuple[str, list[str] | None] | None:
    """What a relayout asked of the time axis: ``("window", [start, end])`` in UTC ISO text,
    ``("whole", None)``, or None when it left the time axis alone."""
    if not relayout:
        return None
    if relayout.get("xaxis.autorange"):
        return "whole", None
    asked = relayout.get("xaxis.range") or [relayout.get("xaxis.range[0]"), relayout.get("xaxis.range[1]")]
    if len(asked) != 2 or None in asked:
        return None
    start, end = (_from_plot_time(value) for value in asked)
    if start is None or end is None:
        return None
    return "window", [when.isoformat() for when in sorted((start, end))]


def _window(stored: Any) -> tuple[datetime.datetime, datetime.datetime] | None:
    if not stored:
        return None
    start, end = (datetime.datetime.fromisoformat(value) for value in stored)
    return start, end


def _draw_gantt(run_id: str, window: list[str] | None, shown: dict[str, Any] | None) -> tuple[Any, Any, Any]:
    """The Gantt of ``window`` (None: the whole run), its note, and what the window store keeps:
    the window, and whether the whole run is too big to draw try by try (then zooms re-read)."""
    data = gantt(context.engine(), run_id, _window(window))
    binned = data.kind == "binned" if window is None else bool((shown or {}).get("binned"))
    return figure_gantt(data), gantt_note(data), {"window": window, "binned": binned}


def _drawn_with_page(redraw: dict[str, Any] | None) -> bool:
    """Whether the figures came with the page and nothing asked to draw them again since."""
    return bool(redraw and redraw.get("drawn") and not redraw.get("n"))


def register_callbacks(app: Dash) -> None:
    @app.callback(Output("run-cards", "children"), Output("run-token", "data"), Output("run-redraw", "data"),
                  Output("run-refresh", "disabled"), Output("run-record-box", "children"),
                  Input("run-refresh", "n_intervals"), State("run-token", "data"), State("run-redraw", "data"),
                  State("run-id", "data"), prevent_initial_call=True)
    @guarded_callback(lambda message: (notice(message), no_update, no_update, no_update, no_update))
    def follow(_ticks: int | None, token: Any, redraw: dict[str, Any] | None, run_id: str) -> Any:
        engine = context.engine()
        moved = change_token(engine, run_id)
        if moved == token:
            return no_update, no_update, no_update, no_update, no_update
        header = overview_header(engine, run_id)
        redraw = redraw or {"n": 0, "at": 0.0}
        now = time.time()
        if not header["live"]:  # it ended: a last drawing of everything, its end in the record, and no more asking
            return (cards(header), moved, {"n": redraw.get("n", 0) + 1, "at": now}, True,
                    record_section(run_record(engine, run_id)))
        if header["tasks"] > BIG_RUN and now - redraw.get("at", 0.0) < BIG_RUN_REDRAW:
            return cards(header), moved, no_update, False, no_update  # a big run's figures cost more to redraw
        return cards(header), moved, {"n": redraw.get("n", 0) + 1, "at": now}, False, no_update

    @app.callback(Output("run-progress", "figure"), Output("run-apps", "figure"), Output("run-apps-note", "children"),
                  Output("run-running", "figure"), Input("run-redraw", "data"), State("run-id", "data"))
    @guarded_callback(lambda message: (_empty_figure(message), no_update, notice(message), no_update))
    def draw_figures(redraw: dict[str, Any] | None, run_id: str) -> Any:
        if _drawn_with_page(redraw):
            raise PreventUpdate
        engine = context.engine()
        apps = app_counts(engine, run_id)
        return (figure_progress(progress(engine, run_id)), figure_apps(apps), more_note(apps.more, "apps"),
                figure_running(apps_running(engine, run_id)))

    @app.callback(Output("run-gantt", "figure"), Output("run-gantt-note", "children"),
                  Output("run-gantt-window", "data"),
                  Input("run-redraw", "data"), State("run-gantt-window", "data"), State("run-id", "data"))
    @guarded_callback(lambda message: (_empty_figure(message), notice(message), no_update))
    def draw_gantt(redraw: dict[str, Any] | None, shown: dict[str, Any] | None, run_id: str) -> Any:
        if _drawn_with_page(redraw):
            raise PreventUpdate
        return _draw_gantt(run_id, (shown or {}).get("window"), shown)

    # Only zooms of a binned Gantt go to the server, picked out in the browser: a relayout that asks
    # nothing (plotly's own "autosize" follows many zooms) would otherwise supersede, and so discard,
    # the zoom's drawing on its way back.
    app.clientside_callback(ZOOMS, Output("run-gantt-zoom", "data"), Input("run-gantt", "relayoutData"),
                            State("run-gantt-window", "data"), prevent_initial_call=True)

    @app.callback(Output("run-gantt", "figure", allow_duplicate=True),
                  Output("run-gantt-note", "children", allow_duplicate=True),
                  Output("run-gantt-window", "data", allow_duplicate=True),
                  Input("run-gantt-zoom", "data"), State("run-gantt-window", "data"), State("run-id", "data"),
                  prevent_initial_call=True)
    @guarded_callback(lambda message: (no_update, notice(message), no_update))
    def zoom_gantt(zoom: dict[str, Any] | None, shown: dict[str, Any] | None, run_id: str) -> Any:
        asked = _zoom(zoom)
        if asked is None or not (shown or {}).get("binned"):
            raise PreventUpdate  # every try is drawn already: plotly zooms on its own
        return _draw_gantt(run_id, asked[1], shown)

    @app.callback(Output("run-go", "pathname"), Input("run-gantt", "clickData"), State("run-id", "data"),
                  prevent_initial_call=True)
    @guarded_callback(lambda message: no_update)
    def open_task(click: dict[str, Any] | None, run_id: str) -> str:
        points = (click or {}).get("points") or [{}]
        task_id = points[0].get("customdata")
        if task_id is None:
            raise PreventUpdate
        return task_href(run_id, int(task_id))
