"""Resources of a run: CPU and memory in use over time (all tasks, or per node or per block) against
what the nodes offered, the heaviest tries, the nodes with their CPUs, memory and workers, each
block's life cycle from the provider's job states, and worker efficiency (busy workers over
available workers), as Parsl's resource page shows. A run without samples says why.

Who draws what, and when::

    layout ------------> the run checked, a placeholder figure; stores: run id, change token,
                         redraw counter, workers drawn
    redraw counter --+-> draw_usage: cards, CPU, memory (a pass over the samples, ~0.5 s at 100k tasks)
                     +-> draw_workers: efficiency, nodes, blocks (a pass over the tries, ~0.25 s)
                           --workers drawn--> draw_top: the heaviest tries (~0.2 s)
    split (radio) -----> split: the CPU and memory figures per node or per block (~0.7 s)
    interval (live) ---> follow: change token moved? bump the redraw counter

Every part of a run that ended is read once per change token and kept (``_kept_read``): the page
opened again, or another view of it, costs the server a few milliseconds.

The builders ``resources_section`` (or ``usage_section``, ``top_section``, ``workers_section``),
``figure_cpu``, ``figure_memory``, ``figure_efficiency`` and ``figure_blocks`` take
``monitoring.read.resources.Resources`` and need no server: the HTML report uses them
(``resources(engine, run_id, split=("node", "block"))`` adds the per-node and per-block figures)."""
from __future__ import annotations

import datetime
import html as html_text
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import plotly.graph_objects as go
from dash import Dash, Input, Output, State, dcc, html, no_update

from parsl_repro.monitoring.read.resources import (
    TERMINAL,
    Grid,
    Resources,
    Usage,
    resources,
    run_state,
    split_usage,
)
from parsl_repro.monitoring.read.runs import change_token
from parsl_repro.viz import context
from parsl_repro.viz.components import (
    fmt_bytes,
    fmt_duration,
    fmt_time,
    frame,
    guarded_callback,
    more_note,
    notice,
    table,
    task_href,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

PATH = "/run/<run_id>/resources"
TITLE = "Resources"

GRAPH_CONFIG = {"displaylogo": False, "responsive": True}
MIB = float(1 << 20)
BLOCKS_DRAWN = 60
"""At most this many blocks in the life-cycle figure and table."""
SERIES_COLORS = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d",
                 "#ff9da6", "#bab0ac", "#1f77b4", "#2ca02c", "#7f7f7f"]
STATUS_COLORS = {"PENDING": "#b8c0cc", "RUNNING": "#54a24b", "HELD": "#eeca3b", "UNKNOWN": "#7f7f7f",
                 "COMPLETED": "#4c78a8", "SCALED_IN": "#72b7b2", "CANCELLED": "#8c6d31", "FAILED": "#d62728",
                 "TIMEOUT": "#f58518", "MISSING": "#a8445b"}
SPLIT_OPTIONS = [{"label": "all tasks", "value": "all"}, {"label": "per node", "value": "node"},
                 {"label": "per block", "value": "block"}]
KEPT_READS = 16
"""Reads of runs that ended kept in this process for the next request (0: none)."""
USAGE, WORKERS, TOP = frozenset({"usage"}), frozenset({"workers"}), frozenset({"top"})
Read = TypeVar("Read")
_kept: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_kept_lock = threading.Lock()


# --- times and text on figures ---------------------------------------------------------------------
def _zone() -> str:
    return datetime.datetime.now().astimezone().tzname() or "local time"


def _plot_time(when: datetime.datetime) -> str:
    """A time on a figure's axis: this machine's local time, as ``fmt_time`` shows times."""
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")


def _escaped(text: Any) -> str:
    """Store text for a figure's labels, which plotly reads as a subset of HTML."""
    return html_text.escape(str(text), quote=False)


def _empty_figure(message: str, height: int = 200) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(height=height, margin={"l": 40, "r": 20, "t": 20, "b": 30}, plot_bgcolor="#fff",
                         xaxis={"visible": False}, yaxis={"visible": False},
                         annotations=[{"text": _escaped(message), "showarrow": False, "xref": "paper",
                                       "yref": "paper", "x": 0.5, "y": 0.5, "font": {"size": 14, "color": "#5b6475"}}])
    return figure


def _time_layout(figure: go.Figure, y_title: str, height: int = 300) -> go.Figure:
    figure.update_layout(height=height, margin={"l": 60, "r": 20, "t": 10, "b": 40}, plot_bgcolor="#fff",
                         hovermode="x unified", legend={"orientation": "h", "y": -0.22},
                         xaxis={"title": {"text": f"time ({_zone()})"}, "gridcolor": "#eef1f6", "type": "date"},
                         yaxis={"title": {"text": y_title}, "gridcolor": "#eef1f6", "rangemode": "tozero"})
    return figure


# --- the builders (no server needed) -----------------------------------------------------------------
def figure_cpu(data: Resources, by: str | None = None) -> go.Figure:
    """CPUs in use over the run (mean per bin): all tasks with the CPUs of the nodes that were up,
    or one line per node or block (``by``, when ``data.split`` has it)."""
    if data.grid is None or data.total is None:
        return _empty_figure("No resource samples.")
    if by:
        return _usage_figure(data.grid, data.split[by].series, "cpu", None)
    offered = None if data.capacity is None else ("CPUs on the nodes up", data.capacity.cpus)
    return _usage_figure(data.grid, [data.total], "cpu", offered)


def figure_memory(data: Resources, by: str | None = None) -> go.Figure:
    """Resident memory of the tasks over the run (mean per bin, MiB): all tasks with the memory of
    the nodes that were up (hidden until clicked when it would flatten the tasks' line), or one
    line per node or block (``by``)."""
    if data.grid is None or data.total is None:
        return _empty_figure("No resource samples.")
    if by:
        return _usage_figure(data.grid, data.split[by].series, "rss", None)
    offered = None if data.capacity is None else ("memory of the nodes up", data.capacity.memory)
    return _usage_figure(data.grid, [data.total], "rss", offered)


SPREADS = (("cpu_time", "CPU time per try (s)", 1.0), ("peak_rss", "peak memory per try (MiB)", MIB),
           ("mean_rss", "mean memory per try (MiB)", MIB))


def figure_spread(data: Resources) -> go.Figure:
    """How the sampled tries spread in CPU time, peak memory and mean memory: a histogram each
    (how many tries in each bin), as Parsl's resource page shows its per-task distributions."""
    from plotly.subplots import make_subplots

    shown = [(key, title, scale) for key, title, scale in SPREADS if key in data.distributions]
    if not shown:
        return _empty_figure("No resource samples.")
    figure = make_subplots(rows=1, cols=len(shown), subplot_titles=[title for _, title, _ in shown],
                           horizontal_spacing=0.08)
    for column, (key, title, scale) in enumerate(shown, start=1):
        histogram = data.distributions[key]
        edges = [edge / scale for edge in histogram.edges()]
        bins = list(zip(edges, edges[1:], strict=False))  # (left, right) of each bin
        figure.add_trace(go.Bar(x=[(a + b) / 2 for a, b in bins], y=histogram.counts,
                                width=[(b - a) * 0.95 for a, b in bins], name=title,
                                customdata=[[a, b] for a, b in bins], showlegend=False,
                                marker={"color": SERIES_COLORS[column - 1]},
                                hovertemplate="%{customdata[0]:.3g} to %{customdata[1]:.3g}: %{y} tries"
                                              "<extra></extra>"), row=1, col=column)
    figure.update_yaxes(title_text="tries", row=1, col=1, gridcolor="#eef1f6")
    figure.update_layout(height=300, margin={"l": 60, "r": 20, "t": 40, "b": 40}, plot_bgcolor="#fff",
                         bargap=0)
    return figure


def _usage_figure(grid: Grid, series: list[Usage], kind: str, offered: tuple[str, list[float]] | None) -> go.Figure:
    x = [_plot_time(when) for when in grid.centres()]
    scale = MIB if kind == "rss" else 1.0
    unit = "MiB" if kind == "rss" else "CPUs"
    traces: list[Any] = []
    for number, usage in enumerate(series):
        values = usage.rss if kind == "rss" else usage.cpu
        traces.append(go.Scatter(x=x, y=[value / scale for value in values], mode="lines", name=_escaped(usage.label),
                                   line={"width": 2.5 if len(series) == 1 else 1.5,
                                         "color": SERIES_COLORS[number % len(SERIES_COLORS)]},
                                   hovertemplate=f"%{{y:.2f}} {unit}<extra>{_escaped(usage.label)}</extra>"))
    if offered is not None:
        label, values = offered
        used_peak = max((max(usage.rss if kind == "rss" else usage.cpu, default=0.0) for usage in series), default=0.0)
        shown = [value / scale for value in values]
        hidden = kind == "rss" and max(values, default=0.0) > 20 * max(used_peak, 1.0)
        traces.append(go.Scatter(x=x, y=shown, mode="lines", name=label, line={"width": 1.5, "dash": "dash",
                                                                                  "color": "#5b6475"},
                                   visible="legendonly" if hidden else True,
                                   hovertemplate=f"%{{y:.2f}} {unit}<extra>{label}</extra>"))
    figure = _time_layout(go.Figure(traces), "resident memory (MiB)" if kind == "rss" else "CPUs in use")
    figure.update_layout(showlegend=True)  # even one line says whose it is
    return figure


def figure_efficiency(data: Resources) -> go.Figure:
    """Tries running (mean per bin) and, when nodes were recorded, the workers of the nodes up."""
    if data.grid is None:
        return _empty_figure("This run has no start time recorded.")
    x = [_plot_time(when) for when in data.grid.centres()]
    traces = [go.Scatter(x=x, y=data.busy, mode="lines", name="busy workers (tries running)",
                           line={"width": 2.5, "color": "#4c78a8"}, fill="tozeroy",
                           hovertemplate="%{y:.2f} busy<extra></extra>")]
    if data.capacity is not None:
        traces.append(go.Scatter(x=x, y=data.capacity.workers, mode="lines", name="available workers",
                                   line={"width": 2, "dash": "dash", "color": "#5b6475"},
                                   hovertemplate="%{y:.2f} available<extra></extra>"))
    return _time_layout(go.Figure(traces), "workers")


def figure_blocks(data: Resources) -> go.Figure:
    """Each block's job states as segments on a time line (the first ``BLOCKS_DRAWN`` blocks);
    a state a block never left is a mark where it began."""
    lives = data.blocks[:BLOCKS_DRAWN]
    if not lives:
        return _empty_figure("No block was recorded.")
    record_end = data.grid.start + datetime.timedelta(seconds=data.grid.span) if data.grid else None
    lanes = [_escaped(f"{life.executor} block {life.block_id}") for life in lives]
    bars: dict[str, dict[str, list[Any]]] = {}
    marks: dict[str, dict[str, list[Any]]] = {}
    for lane, life in zip(lanes, lives, strict=True):
        for status, start, end in life.segments:
            if end is None and status not in TERMINAL and record_end is not None and record_end > start:
                end = record_end  # still in it when the record ends
            if end is None or end <= start:
                mark = marks.setdefault(status, {"x": [], "y": [], "text": []})
                mark["x"].append(_plot_time(start))
                mark["y"].append(lane)
                mark["text"].append(f"{_escaped(status)} at {fmt_time(start)}")
                continue
            bar = bars.setdefault(status, {"base": [], "x": [], "y": [], "text": []})
            bar["base"].append(_plot_time(start))
            bar["x"].append((end - start).total_seconds() * 1000)
            bar["y"].append(lane)
            took = fmt_duration((end - start).total_seconds())
            bar["text"].append(f"{_escaped(status)} from {fmt_time(start)} for {took}")
    traces: list[Any] = []
    for status, bar in bars.items():
        traces.append(go.Bar(base=bar["base"], x=bar["x"], y=bar["y"], orientation="h", name=_escaped(status),
                             legendgroup=status, marker={"color": STATUS_COLORS.get(status, "#7f7f7f")},
                             hovertext=bar["text"], hoverinfo="text"))
    for status, mark in marks.items():
        traces.append(go.Scatter(x=mark["x"], y=mark["y"], mode="markers", name=_escaped(status),
                                 legendgroup=status, hovertext=mark["text"], hoverinfo="text",
                                 marker={"symbol": "line-ns-open", "size": 16, "line": {"width": 3},
                                         "color": STATUS_COLORS.get(status, "#7f7f7f")}))
    figure = go.Figure(traces)
    figure.update_layout(barmode="overlay", height=int(min(700, max(220, 120 + 28 * len(lanes)))),
                         margin={"l": 10, "r": 20, "t": 10, "b": 40}, plot_bgcolor="#fff",
                         legend={"title": {"text": "job state"}},
                         xaxis={"title": {"text": f"time ({_zone()})"}, "type": "date", "gridcolor": "#eef1f6"},
                         yaxis={"type": "category", "categoryorder": "array", "categoryarray": lanes,
                                "autorange": "reversed", "automargin": True})
    return figure


def _graph(graph_id: str, figure: go.Figure) -> dcc.Graph:
    return dcc.Graph(id=graph_id, figure=figure, config=GRAPH_CONFIG, className="figure")


def _cards(data: Resources) -> html.Div:
    peak_rss = max(data.total.rss, default=0.0) if data.total else None
    peak_cpu = max(data.total.cpu, default=0.0) if data.total else None
    items = [("samples", "resource samples", f"{data.samples:,}"),
             ("interval", "sampling interval", fmt_duration(data.interval) if data.interval else None),
             ("peak-cpu", "most CPUs in use (bin mean)", None if peak_cpu is None else f"{peak_cpu:.2f}"),
             ("peak-rss", "most memory in use (bin mean)", None if peak_rss is None else fmt_bytes(peak_rss)),
             ("nodes", "nodes", f"{data.nodes.total:,}")]
    return html.Div([html.Div([html.Div(value, className="value", id=f"resources-card-{key}"),
                               html.Div(label, className="label")], className="card")
                     for key, label, value in items if value is not None], className="cards", id="resources-cards")


def _top_table(rows: list[dict[str, Any]], run_id: str, table_id: str) -> html.Table:
    columns = [("task_id", "Task"), ("try_id", "Try"), ("app", "App"), ("peak_rss", "Peak RSS"),
               ("cpu_time", "CPU time"), ("samples", "Samples"), ("hostname", "Node"), ("block_id", "Block")]
    return table(columns, rows, table_id=table_id, links={"task_id": lambda row: task_href(run_id, row["task_id"])},
                 formats={"peak_rss": fmt_bytes, "cpu_time": lambda seconds: fmt_duration(seconds or 0.0)})


def _usage_part(data: Resources, split_control: bool) -> list[Any]:
    if not data.has_samples:
        return [notice(data.why_no_samples(), "info")]
    parts: list[Any] = [html.Div(
        "Mean over each time bin of the CPUs the tasks used (growth of their processes' user+system time) and of "
        "their resident memory, against what the nodes that were up offered (dashed).", className="subtitle")]
    if split_control:
        parts.append(html.Div(dcc.RadioItems(id="resources-split", options=SPLIT_OPTIONS, value="all", inline=True,
                                             inputStyle={"marginRight": "0.3rem", "marginLeft": "0.8rem"}),
                              className="controls"))
    parts += [html.H3("CPU"), _graph("resources-cpu", figure_cpu(data)),
              html.H3("Memory"), _graph("resources-memory", figure_memory(data))]
    for by, split in data.split.items():
        parts += [html.H3(f"CPU per {by}"), _graph(f"resources-cpu-{by}", figure_cpu(data, by)),
                  html.H3(f"Memory per {by}"), _graph(f"resources-memory-{by}", figure_memory(data, by)),
                  more_note(split.left_out, f"{by}s summed as one line")]
    return parts


def _top_part(data: Resources) -> list[Any]:
    spread = [html.Div("How many tries used how much CPU time and memory (from their samples).",
                       className="subtitle"), _graph("resources-spread", figure_spread(data)),
              html.H3("The heaviest")] if data.distributions else []
    return [*spread, html.Div([html.Div([html.Div("by peak resident memory", className="subtitle"),
                                _top_table(data.top_rss, data.run_id, "resources-top-rss")]),
                      html.Div([html.Div("by CPU time (from the first sample to the last)", className="subtitle"),
                                _top_table(data.top_cpu, data.run_id, "resources-top-cpu")])],
                     style={"display": "flex", "gap": "1.5rem", "flexWrap": "wrap"})]


def _in_flight_note(data: Resources) -> html.Div | None:
    if not data.unreturned:
        return None
    waiting = data.unreturned - data.unreturned_running
    said = (f"{data.unreturned:,} tr{'y' if data.unreturned == 1 else 'ies'} never returned "
            f"({'the run is still going' if data.live else 'the run ended without them: killed, or cut short'}): "
            f"{data.unreturned_running:,} recorded as running count as busy up to the end of the record")
    if waiting:
        said += f", {waiting:,} never recorded as running (queued, or started without a record) do not"
    return html.Div(said + ".", className="subtitle", id="resources-in-flight")


def _efficiency_part(data: Resources) -> list[Any]:
    if data.capacity is None:
        note = ("No node was recorded for this run: with the threads executor the workers are threads of the "
                "submitting process, so only busy tries are shown (mean tries running in each time bin)."
                if "ThreadPoolExecutor" in data.executor_kinds or not data.executor_kinds else
                "No node was recorded for this run, so only busy tries are shown (mean tries running in each bin).")
        return [html.Div(note, className="subtitle", id="resources-efficiency-note"), _in_flight_note(data),
                _graph("resources-efficiency", figure_efficiency(data))]
    efficiency = data.efficiency
    said = ("" if efficiency is None else
            f"Workers were busy {efficiency:.0%} of the worker time the nodes offered. ")
    return [html.Div(said + "Busy workers are tries running (mean per time bin); available workers are the "
                     "workers of the nodes up in that bin.", className="subtitle", id="resources-efficiency-note"),
            _in_flight_note(data), _graph("resources-efficiency", figure_efficiency(data))]


def _nodes_part(data: Resources) -> list[Any]:
    if not data.nodes.items:
        threads = (" This run used the threads executor, whose workers are threads of the submitting process."
                   if set(data.executor_kinds) == {"ThreadPoolExecutor"} else "")
        return [notice("No node was recorded for this run: nodes are the worker pools of a HighThroughputExecutor, "
                       "which report their CPUs, memory and workers when they connect." + threads, "info")]
    columns = [("hostname", "Host"), ("uid", "Manager"), ("executor_label", "Executor"), ("block_id", "Block"),
               ("cpu_count", "CPUs"),
               ("total_memory", "Memory"), ("worker_count", "Workers"), ("state", "State"),
               ("first_seen", "First seen"), ("last_heartbeat", "Last heartbeat"), ("python_v", "Python")]
    items = [dict(node, state="active" if node["active"] else "left") for node in data.nodes.items]
    return [table(columns, items, table_id="resources-nodes",
                  formats={"total_memory": fmt_bytes, "first_seen": fmt_time, "last_heartbeat": fmt_time}),
            more_note(data.nodes.more, "nodes")]


def _blocks_part(data: Resources) -> list[Any]:
    if not data.blocks:
        return [notice("No block was recorded for this run: blocks are the provider jobs of executors that scale "
                       "(a HighThroughputExecutor's provider), with their job states.", "info")]
    items = []
    for life in data.blocks[:BLOCKS_DRAWN]:
        items.append({"executor": life.executor, "block_id": life.block_id, "job_id": life.job_id,
                      "provider": life.provider, "host": life.host,
                      "script": life.script_sha256[:12] if life.script_sha256 else None,
                      "states": " → ".join(status for status, _, _ in life.segments),
                      "started": life.segments[0][1], "last_change": life.segments[-1][1], "last": life.last,
                      "message": life.message})
    columns = [("executor", "Executor"), ("block_id", "Block"), ("job_id", "Job"), ("provider", "Provider"),
               ("host", "Host"), ("script", "Script sha256"), ("states", "Life cycle"),
               ("started", "First state at"), ("last_change", "Last change at"), ("last", "Latest state"),
               ("message", "Message")]
    return [_graph("resources-blocks", figure_blocks(data)),
            table(columns, items, table_id="resources-block-table",
                  formats={"started": fmt_time, "last_change": fmt_time}),
            more_note(max(0, data.blocks_total - len(items)), "blocks")]


def usage_section(data: Resources, split_control: bool = False) -> html.Div:
    """Cards and CPU and memory over time (with a per node / per block choice when
    ``split_control``; with per-node and per-block figures for what ``data.split`` holds)."""
    return html.Div([_cards(data), html.H2("CPU and memory"), *_usage_part(data, split_control)],
                    id="resources-usage")


def top_section(data: Resources) -> html.Div:
    """How the tries spread in CPU time and memory, and the heaviest by peak memory and by CPU time,
    linked to their task pages (nothing for a run without samples: the usage section says why)."""
    if not data.has_samples:
        return html.Div(id="resources-top")
    return html.Div([html.H2("Tries by CPU time and memory"), *_top_part(data)], id="resources-top")


def workers_section(data: Resources) -> html.Div:
    """Worker efficiency, the nodes and the blocks' life cycles."""
    return html.Div([html.H2("Worker efficiency"), *_efficiency_part(data),
                     html.H2(f"Nodes ({data.nodes.total:,})"), *_nodes_part(data),
                     html.H2(f"Blocks ({data.blocks_total:,})"), *_blocks_part(data)], id="resources-workers")


def resources_section(data: Resources, split_control: bool = False) -> html.Div:
    """The whole Resources view of one run (``data`` read with every part): cards, CPU and memory,
    the heaviest tries, worker efficiency, nodes and blocks."""
    return html.Div([usage_section(data, split_control), top_section(data), workers_section(data)],
                    id="resources-section")


def report_section(engine: Engine, run_id: str) -> html.Div:
    """The Resources view for the HTML report: every part, with per-node and per-block figures in
    place of the page's choice."""
    return resources_section(resources(engine, run_id, split=("node", "block")))


# --- the page --------------------------------------------------------------------------------------
def _kept_read(run_id: str, what: Any, read: Callable[[Engine], Read]) -> Read:
    """``read(engine)`` of run ``run_id``, or what it gave for the same ``what`` while nothing new
    was recorded in the store: at 100,000 tasks a part of this page is a pass of 0.2 to 0.5 s over
    the run's rows, and a run that ended does not change. A run still going is read afresh; any
    new record in the store (the change token the live pages follow) is a new read."""
    engine = context.engine()
    if KEPT_READS <= 0 or not run_state(engine, run_id).ended:
        return read(engine)
    key = (context.store_url(), run_id, what, repr(change_token(engine, run_id)))
    with _kept_lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    found = read(engine)
    with _kept_lock:
        _kept[key] = found
        while len(_kept) > KEPT_READS:
            _kept.popitem(last=False)
    return found


def layout(run_id: str = "", **_: Any) -> html.Div:
    engine = context.engine()
    state = run_state(engine, run_id)
    subtitle: list[Any] = [f"{state.workflow_name or 'workflow'} · run {run_id}"]
    if state.live:
        subtitle.append(html.Span(" · live: this page follows the run", id="resources-live-note"))
    reading = html.Div("Reading...", className="subtitle")
    # a figure from the start, so the browser fetches and compiles plotly.js (a few hundred ms) while
    # the server reads the parts, not after the first of them arrives
    placeholder = _graph("resources-reading", _empty_figure("Reading the run's resource samples and tries...", 120))
    return frame(
        TITLE,
        html.Div([html.Div(placeholder, id="resources-usage-part"), html.Div(reading, id="resources-top-part"),
                  html.Div(reading, id="resources-workers-part")], id="resources-section"),
        dcc.Store(id="resources-run", data=run_id),
        dcc.Store(id="resources-token", data=change_token(engine, run_id)),
        dcc.Store(id="resources-redraw", data=0), dcc.Store(id="resources-workers-drawn"),
        dcc.Interval(id="resources-refresh", interval=context.refresh_ms(), disabled=not state.live),
        run_id=run_id, view="resources", subtitle=subtitle)


def register_callbacks(app: Dash) -> None:
    # Two requests at a time, each with a connection of its own from the read-only engine's pool: the
    # usage pass (as long as the other two parts together) beside the workers and then the heaviest
    # tries, so two cores are never asked for more than they can run side by side. The browser's share
    # is mostly Dash mounting the tables (each new component is a store update that every mounted
    # component's selector sees: about 1 ms a cell at this page's size); it starts on the workers part
    # while the usage pass still runs.
    @app.callback(Output("resources-usage-part", "children"), Input("resources-redraw", "data"),
                  State("resources-run", "data"))
    @guarded_callback(notice)
    def draw_usage(_redraw: Any, run_id: str) -> Any:
        data = _kept_read(run_id, USAGE, lambda engine: resources(engine, run_id, parts=USAGE))
        return usage_section(data, split_control=True)

    @app.callback(Output("resources-workers-part", "children"), Output("resources-workers-drawn", "data"),
                  Input("resources-redraw", "data"), State("resources-run", "data"))
    @guarded_callback(lambda message: (notice(message), time.time()))  # the heaviest tries follow even so
    def draw_workers(redraw: Any, run_id: str) -> Any:
        data = _kept_read(run_id, WORKERS, lambda engine: resources(engine, run_id, parts=WORKERS))
        return workers_section(data), redraw

    @app.callback(Output("resources-top-part", "children"), Input("resources-workers-drawn", "data"),
                  State("resources-run", "data"), prevent_initial_call=True)
    @guarded_callback(notice)
    def draw_top(_drawn: Any, run_id: str) -> Any:
        return top_section(_kept_read(run_id, TOP, lambda engine: resources(engine, run_id, parts=TOP)))

    @app.callback(Output("resources-token", "data"), Output("resources-redraw", "data"),
                  Output("resources-refresh", "disabled"),
                  Input("resources-refresh", "n_intervals"), State("resources-token", "data"),
                  State("resources-redraw", "data"), State("resources-run", "data"), prevent_initial_call=True)
    @guarded_callback(lambda message: (no_update, no_update, no_update))
    def follow(_ticks: int | None, token: Any, redraw: int | None, run_id: str) -> Any:
        engine = context.engine()
        moved = change_token(engine, run_id)
        if moved == token:
            return no_update, no_update, no_update
        return moved, (redraw or 0) + 1, not run_state(engine, run_id).live

    @app.callback(Output("resources-cpu", "figure"), Output("resources-memory", "figure"),
                  Input("resources-split", "value"), State("resources-run", "data"), prevent_initial_call=True)
    @guarded_callback(lambda message: (_empty_figure(message), _empty_figure(message)))
    def split(by: str | None, run_id: str) -> Any:
        if by in (None, "all"):
            data = _kept_read(run_id, USAGE, lambda engine: resources(engine, run_id, parts=USAGE))
            return figure_cpu(data), figure_memory(data)
        grid, found = _kept_read(run_id, ("split", by), lambda engine: split_usage(engine, run_id, str(by)))
        if grid is None or found is None:
            return _empty_figure("No resource samples."), _empty_figure("No resource samples.")
        return _usage_figure(grid, found.series, "cpu", None), _usage_figure(grid, found.series, "rss", None)
