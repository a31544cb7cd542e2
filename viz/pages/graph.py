"""Task graph: a run's tasks and the files they pass as nodes, dependencies as edges, coloured by
state. Past a threshold of tasks the graph is collapsed by app; a selected task (``?task=N``) or
app (``?app=NAME``, or a click on its node) is drawn task by task with the rest collapsed, and a
failed task's chain is highlighted back to the task that failed first.

The layout is computed here: layered by the longest path from the roots, ordered within a layer
by the barycentre of each node's upstream neighbours. A click on a task opens its page (or expands
the graph around it), a click on an app expands that app, a click on a file opens the file."""
from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import plotly.graph_objects as go
from dash import Dash, Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from parsl_repro.monitoring.read.graph import (
    DEPTH,
    MAX_DEPTH,
    MAX_TASKS,
    THRESHOLD,
    GraphData,
    GraphEdge,
    GraphNode,
    task_graph,
)
from parsl_repro.monitoring.read.runs import change_token, run_header
from parsl_repro.viz import context
from parsl_repro.viz.components import (
    file_href,
    frame,
    guarded_callback,
    notice,
    query_param,
    run_href,
    task_href,
)

PATH = "/run/<run_id>/graph"
TITLE = "Task graph"

STATE_COLOURS = {
    "pending": "#9aa5b1", "launched": "#5b8def", "running": "#3b6fd4", "running_ended": "#6f8fd8",
    "joining": "#8e6bd8", "fail_retryable": "#f0a03c", "exec_done": "#2e9e5b", "memo_done": "#8fd19e",
    "failed": "#d63a2f", "dep_fail": "#f08a7e", "cancelled": "#6b6b6b", "unknown": "#c7ccd4", "file": "#b8a06a",
}
STATE_ORDER = ("exec_done", "memo_done", "pending", "launched", "running", "running_ended", "joining",
               "fail_retryable", "cancelled", "dep_fail", "failed", "unknown")
CHAIN_COLOUR = "#b3261e"
EDGE_COLOUR = "#9aa5b8"
LABELS_UP_TO = 150  # nodes with their label written beside them; past this, hover only
LABELS_PER_LAYER = 40  # nor when a layer has more nodes than this: their labels would overlap


# --- the page ---------------------------------------------------------------------------------------
def layout(run_id: str, task: str | None = None, app: str | None = None, threshold: str | None = None,
           depth: str | None = None, **_: Any) -> html.Div:
    """The page: its query parameters (``task``, ``app``, ``threshold``, ``depth``) checked, the
    controls, the graph, and a timer that redraws it while the run is live."""
    problems: list[str] = []
    params = {"run_id": run_id,
              "task": _number(task, "task", problems),
              "app": query_param(app) or None,
              "threshold": _number(threshold, "threshold", problems, THRESHOLD, 1, MAX_TASKS),
              "depth": _number(depth, "depth", problems, DEPTH, 1, MAX_DEPTH)}
    header = run_header(context.engine(), run_id)
    data = _read(params)
    return frame(TITLE,
                 html.Div([notice(problem) for problem in problems], id="graph-problems"),
                 _controls(params),
                 html.Div(graph_section(data), id="graph-body"),
                 dcc.Location(id="graph-location", refresh="callback-nav"),
                 dcc.Store(id="graph-params", data=dict(params, token=_token(run_id) if header["live"] else None)),
                 dcc.Interval(id="graph-refresh", interval=context.refresh_ms(), disabled=not header["live"]),
                 run_id=run_id, view="graph",
                 subtitle=f"run {run_id} · {header['outcome']} · {header['tasks']:,} tasks"
                          + (" · live: this page follows it" if header["live"] else ""))


def _read(params: dict[str, Any]) -> GraphData:
    return task_graph(context.engine(), params["run_id"], task=params["task"], app=params["app"],
                      threshold=params["threshold"], depth=params["depth"])


def _controls(params: dict[str, Any]) -> html.Div:
    return html.Div([
        dcc.Input(id="graph-task", type="text", inputMode="numeric", debounce=True, placeholder="task id",
                  value=str(params["task"]) if params["task"] is not None else "", style={"width": "7rem"}),
        html.Button("Expand around this task", id="graph-expand", n_clicks=0),
        dcc.RadioItems(id="graph-click-mode", value="open", inline=True,
                       options=[{"label": " a click on a task opens its page ", "value": "open"},
                                {"label": " a click on a task expands the graph around it", "value": "expand"}]),
        html.Span(id="graph-message"),
    ], className="controls")


def graph_section(data: GraphData) -> html.Div:
    """The graph of ``monitoring.read.graph.task_graph``'s data: what is shown, what was left out,
    and the figure."""
    parts: list[Any] = []
    if data.problem:
        parts.append(notice(data.problem))
    if not data.total_tasks:
        parts.append(notice("This run has no tasks yet.", "info"))
        return html.Div(parts)
    parts.append(html.Div(_describe(data), className="more", id="graph-summary"))
    parts += [html.Div(note, className="more") for note in data.notes]
    parts.append(html.Div(dcc.Graph(id="graph-figure", figure=figure_graph(data), config={"displaylogo": False}),
                          className="figure"))
    return html.Div(parts)


def _describe(data: GraphData) -> list[Any]:
    base = run_href(data.run_id, "graph")
    whole = [" ", dcc.Link("Show the whole run", href=base + _query(threshold=data.threshold))]
    if not data.collapsed:
        return [f"All {data.total_tasks:,} tasks, task by task; dependencies run left to right. Red lines follow "
                f"failures back to the task that failed first (ringed)."]
    apps = sum(1 for node in data.nodes if node.kind == "app")
    text = (f"{data.total_tasks:,} tasks, more than {data.threshold:,}: collapsed into {apps:,} app nodes "
            f"(squares sized by task count; dependencies run left to right); a click on an app draws its tasks. ")
    if data.focus_task is not None:
        return [text + f"Task {data.focus_task} and its neighbours within {data.depth} steps are drawn task by task.",
                *whole]
    if data.app is not None:
        return [text + f"The tasks of {data.app} are drawn one by one.", *whole]
    return [text]


# --- the figure -------------------------------------------------------------------------------------
def figure_graph(data: GraphData) -> go.Figure:
    """The graph as a plotly figure: edges as line traces (one per kind and width, None between
    edges), failing edges in red over them, nodes as one scatter per kind and state with the node's
    key as ``customdata``, first failures ringed, the selected task starred."""
    positions = layered_layout([node.key for node in data.nodes],
                               [(edge.source, edge.target) for edge in data.edges])
    nodes = {node.key: node for node in data.nodes}
    figure = go.Figure()
    for trace in _edge_traces(data.edges, positions, nodes):
        figure.add_trace(trace)
    widest = max(Counter(x for x, _ in positions.values()).values(), default=1)
    for trace in _node_traces(data.nodes, positions, len(data.nodes) <= LABELS_UP_TO and widest <= LABELS_PER_LAYER):
        figure.add_trace(trace)
    figure.update_layout(
        height=max(420, min(1400, 120 + 26 * widest)), margin={"l": 10, "r": 10, "t": 30, "b": 10},
        plot_bgcolor="#fff", paper_bgcolor="#fff", hovermode="closest", dragmode="pan", clickmode="event",
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        xaxis={"visible": False, "zeroline": False}, yaxis={"visible": False, "zeroline": False},
        uirevision=f"{data.run_id}:{data.focus_task}:{data.app}")
    return figure


def layered_layout(keys: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, tuple[float, float]]:
    """(x, y) of each of ``keys``: x is the node's layer, the length of the longest path to it from
    a root (cycles, which only app graphs have, are broken at the node with the fewest unplaced
    upstream neighbours); y orders each layer by the mean position of the node's upstream
    neighbours (their barycentre), then by the order of ``keys``, centred on 0."""
    index = {key: n for n, key in enumerate(keys)}
    upstream: dict[str, set[str]] = {key: set() for key in keys}
    downstream: dict[str, set[str]] = {key: set() for key in keys}
    for source, target in edges:
        if source != target and source in index and target in index:
            upstream[target].add(source)
            downstream[source].add(target)
    waiting = {key: len(upstream[key]) for key in keys}
    ready = [(index[key], key) for key in keys if not waiting[key]]
    heapq.heapify(ready)
    unplaced = set(keys)
    layer: dict[str, int] = {}
    while unplaced:
        if not ready:  # a cycle: break it
            key = min(unplaced, key=lambda k: (waiting[k], index[k]))
            heapq.heappush(ready, (index[key], key))
        _, key = heapq.heappop(ready)
        if key not in unplaced:
            continue
        unplaced.discard(key)
        layer[key] = max((layer[source] + 1 for source in upstream[key] if source in layer), default=0)
        for target in downstream[key]:
            waiting[target] -= 1
            if waiting[target] == 0 and target in unplaced:
                heapq.heappush(ready, (index[target], target))
    layers: dict[int, list[str]] = {}
    for key in keys:
        layers.setdefault(layer[key], []).append(key)
    positions: dict[str, tuple[float, float]] = {}
    for depth in sorted(layers):
        members = layers[depth]

        def barycentre(key: str) -> tuple[float, int]:
            placed = [positions[source][1] for source in upstream[key] if source in positions]
            return (-sum(placed) / len(placed) if placed else math.inf, index[key])

        members.sort(key=barycentre)
        middle = (len(members) - 1) / 2
        for rank, key in enumerate(members):
            positions[key] = (float(depth), middle - rank)
    return positions


def _edge_traces(edges: list[GraphEdge], positions: dict[str, tuple[float, float]],
                 nodes: dict[str, GraphNode]) -> list[go.Scatter]:
    groups: dict[tuple[str, float], list[GraphEdge]] = {}
    failing: list[GraphEdge] = []
    labelled: list[GraphEdge] = []
    for edge in edges:
        if edge.source == edge.target or edge.source not in positions or edge.target not in positions:
            continue
        width = 1.0 if edge.weight <= 1 else min(8.0, 1.0 + 1.5 * math.log10(edge.weight) * 2)
        groups.setdefault((edge.kind, round(width, 1)), []).append(edge)
        if edge.failing:
            failing.append(edge)
        if edge.weight > 1 or (edge.source.startswith("app:") and edge.target.startswith("app:")):
            labelled.append(edge)
    traces = []
    names = {"data": "dependencies", "join": "joined", "file": "files written and read"}
    shown: set[str] = set()
    for (kind, width), members in sorted(groups.items()):
        name = names.get(kind, kind)
        traces.append(go.Scatter(
            x=_lines(members, positions, 0), y=_lines(members, positions, 1), mode="lines", name=name,
            legendgroup=name, showlegend=name not in shown, hoverinfo="skip",
            line={"color": STATE_COLOURS["file"] if kind == "file" else EDGE_COLOUR, "width": width,
                  "dash": "dot" if kind == "file" else "dash" if kind == "join" else "solid"}))
        shown.add(name)
    if failing:
        traces.append(go.Scatter(x=_lines(failing, positions, 0), y=_lines(failing, positions, 1), mode="lines",
                                   name="failure chain", hoverinfo="skip", line={"color": CHAIN_COLOUR, "width": 3}))
    if labelled:
        traces.append(go.Scatter(
            x=[(positions[e.source][0] + positions[e.target][0]) / 2 for e in labelled],
            y=[(positions[e.source][1] + positions[e.target][1]) / 2 for e in labelled],
            mode="markers", name="dependency counts", showlegend=False, hoverinfo="text",
            marker={"size": 7, "color": "rgba(154,165,184,0.6)"},
            hovertext=[_edge_text(edge, nodes) for edge in labelled]))
    return traces


def _lines(edges: list[GraphEdge], positions: dict[str, tuple[float, float]], axis: int) -> list[float | None]:
    points: list[float | None] = []
    for edge in edges:
        points += [positions[edge.source][axis], positions[edge.target][axis], None]
    return points


def _edge_text(edge: GraphEdge, nodes: dict[str, GraphNode]) -> str:
    text = (f"{_name(nodes[edge.source])} → {_name(nodes[edge.target])}: "
            f"{edge.weight:,} dependenc{'y' if edge.weight == 1 else 'ies'}")
    if edge.failing:
        text += f", {edge.failing:,} carried a failure"
    return text


def _name(node: GraphNode) -> str:
    if node.kind == "task":
        return f"task {node.task_id} ({node.app})"
    if node.kind == "app":
        return f"app {node.app}"
    return node.label


def _node_traces(nodes: list[GraphNode], positions: dict[str, tuple[float, float]],
                 labels: bool) -> list[go.Scatter]:
    traces = []
    groups: dict[tuple[str, str], list[GraphNode]] = {}
    for node in nodes:
        groups.setdefault((node.kind, node.state), []).append(node)
    order = {state: n for n, state in enumerate(STATE_ORDER)}
    for (kind, state), members in sorted(groups.items(), key=lambda item: (item[0][0], order.get(item[0][1], 99))):
        name = {"task": state, "app": f"{state} (apps)", "file": "files"}[kind]
        sizes = [_size(node) for node in members]
        traces.append(go.Scatter(
            x=[positions[node.key][0] for node in members], y=[positions[node.key][1] for node in members],
            mode="markers+text" if labels else "markers", name=name, customdata=[node.key for node in members],
            text=[_escape(_label(node)) for node in members] if labels else None,
            textposition=[_text_position(positions[node.key][0]) for node in members],
            textfont={"size": 10, "color": "#33415c"},
            hovertext=[_hover(node) for node in members], hoverinfo="text",
            marker={"size": sizes, "color": STATE_COLOURS.get(state, STATE_COLOURS["unknown"]),
                    "symbol": {"task": "circle", "app": "square", "file": "diamond"}[kind],
                    "line": {"width": 1, "color": "#ffffff"}}))
    firsts = [node for node in nodes if node.first_failures]
    if firsts:
        traces.append(go.Scatter(
            x=[positions[node.key][0] for node in firsts], y=[positions[node.key][1] for node in firsts],
            mode="markers", name="first failure", customdata=[node.key for node in firsts],
            hovertext=[_hover(node) for node in firsts], hoverinfo="text",
            marker={"size": [_size(node) + 10 for node in firsts], "symbol": "circle-open", "color": CHAIN_COLOUR,
                    "line": {"width": 3, "color": CHAIN_COLOUR}}))
    focus = [node for node in nodes if node.focus]
    if focus:
        traces.append(go.Scatter(
            x=[positions[node.key][0] for node in focus], y=[positions[node.key][1] for node in focus],
            mode="markers", name="selected task", customdata=[node.key for node in focus],
            hovertext=[_hover(node) for node in focus], hoverinfo="text",
            marker={"size": 26, "symbol": "star-open", "color": "#1d2b45", "line": {"width": 2, "color": "#1d2b45"}}))
    return traces


def _text_position(layer: float) -> str:
    """Labels above the nodes of even layers and below those of odd ones, so that the labels of
    a chain of single nodes do not run into each other."""
    return "top center" if int(layer) % 2 == 0 else "bottom center"


def _size(node: GraphNode) -> float:
    if node.kind == "app":
        return 14 + 6 * math.log10(node.size + 1)
    return 12 if node.kind == "task" else 11


def _label(node: GraphNode) -> str:
    if node.kind == "app":
        return f"{node.app} ×{node.size:,}"
    if node.kind == "task":
        return f"{node.task_id} {node.app}"
    return node.label


def _hover(node: GraphNode) -> str:
    """A node's hover text (plotly shows hover text as text: nothing here is read as markup but
    its <br> line breaks, so the store's text is escaped first)."""
    if node.kind == "task":
        lines = [f"task {node.task_id} · {node.app} · {node.state}"]
        if node.detail:
            lines.append(node.detail)
        if node.first_failures:
            lines.append("failed first")
        lines.append("click: open the task (or expand around it)")
    elif node.kind == "app":
        lines = [f"app {node.app}: {node.size:,} tasks"]
        lines += [f"{state}: {n:,}" for state, n in sorted(node.counts.items(), key=lambda kv: -kv[1])]
        if node.detail:
            lines.append(node.detail)
        if node.first_failures:
            lines.append(f"{node.first_failures:,} failed first")
        lines.append("click: draw its tasks")
    else:
        lines = [f"file {node.detail}", "click: open the file"]
    return "<br>".join(_escape(line) for line in lines)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- parameters and links ---------------------------------------------------------------------------
def _number(value: Any, name: str, problems: list[str], default: int | None = None, low: int = 0,
            high: int | None = None) -> int | None:
    text = query_param(value)
    if not text:
        return default
    if not text.isdigit():
        problems.append(f"The {name} {text!r} is not a number: it was ignored.")
        return default
    number = int(text)
    if number < low or (high is not None and number > high):
        bounded = max(low, min(number, high if high is not None else number))
        problems.append(f"The {name} must be from {low} to {high}: {bounded} is used.")
        return bounded
    return number


def _query(**params: Any) -> str:
    kept = {key: value for key, value in params.items()
            if value is not None and not (key == "threshold" and value == THRESHOLD)
            and not (key == "depth" and value == DEPTH)}
    return f"?{urlencode(kept)}" if kept else ""


def _graph_href(params: dict[str, Any], **selection: Any) -> str:
    return run_href(params["run_id"], "graph") + _query(**selection, threshold=params.get("threshold"),
                                                        depth=params.get("depth"))


def click_target(click: dict[str, Any] | None, mode: str | None, params: dict[str, Any] | None) -> str:
    """Where a click on the figure leads: a task's page (or the graph expanded around it when
    ``mode`` is "expand"), the graph with an app's tasks drawn, or a file's page."""
    points = (click or {}).get("points") or []
    key = points[0].get("customdata") if points else None
    if not params or not isinstance(key, str) or ":" not in key:
        raise PreventUpdate
    kind, _, value = key.partition(":")
    if kind == "task":
        return _graph_href(params, task=int(value)) if mode == "expand" else task_href(params["run_id"], int(value))
    if kind == "app":
        return _graph_href(params, app=value)
    if kind == "file":
        return file_href(int(value))
    raise PreventUpdate


def _token(run_id: str) -> str:
    return repr(change_token(context.engine(), run_id))


def register_callbacks(app: Dash) -> None:
    @app.callback(Output("graph-location", "href"), Output("graph-message", "children"),
                  Input("graph-figure", "clickData"), State("graph-click-mode", "value"), State("graph-params", "data"),
                  prevent_initial_call=True)
    @guarded_callback(lambda message: (no_update, message))
    def follow_click(click: dict[str, Any] | None, mode: str | None, params: dict[str, Any] | None) -> Any:
        return click_target(click, mode, params), ""

    @app.callback(Output("graph-location", "href", allow_duplicate=True),
                  Output("graph-message", "children", allow_duplicate=True),
                  Input("graph-expand", "n_clicks"), Input("graph-task", "n_submit"),
                  State("graph-task", "value"), State("graph-params", "data"),
                  prevent_initial_call=True)
    @guarded_callback(lambda message: (no_update, message))
    def expand(_clicks: int | None, _submits: int | None, value: str | None, params: dict[str, Any] | None) -> Any:
        text = (value or "").strip()
        if not params:
            raise PreventUpdate
        if not text.isdigit():
            return no_update, f"A task id is a number, not {text!r}." if text else "Type a task id first."
        return _graph_href(params, task=int(text)), ""

    @app.callback(Output("graph-body", "children"), Output("graph-params", "data"),
                  Output("graph-refresh", "disabled"),
                  Input("graph-refresh", "n_intervals"), State("graph-params", "data"),
                  prevent_initial_call=True)
    @guarded_callback(lambda message: (notice(message), no_update, True))
    def refresh(_ticks: int | None, params: dict[str, Any] | None) -> Any:
        if not params:
            raise PreventUpdate
        token = _token(params["run_id"])
        if token == params.get("token"):
            raise PreventUpdate
        live = run_header(context.engine(), params["run_id"])["live"]
        return graph_section(_read(params)), dict(params, token=token), not live
