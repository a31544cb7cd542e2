"""Compare runs: two runs side by side (``/compare?a=RUN&b=RUN``): outcome, duration, tasks by
state, per-app calls, durations, failures and memo hits with B minus A, and what differs in their
environment (Python, platform, packages added, removed or changed) and code (app digests per app,
script sha256, git commit).

    layout -----------> the two dropdowns (newest runs first, bounded) and the comparison of a, b
    either dropdown --> compare: the comparison redrawn

``comparison_section(Comparison)`` needs no server."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from dash import Dash, Input, Output, dcc, html

from parsl_repro.errors import ParslError
from parsl_repro.monitoring.read.compare import Comparison, compare, run_choices
from parsl_repro.viz import context
from parsl_repro.viz.components import (
    fmt_duration,
    fmt_time,
    frame,
    guarded_callback,
    more_note,
    notice,
    run_href,
    short,
)

PATH = "/compare"
TITLE = "Compare runs"

DIFFERS = {"background": "#fff6e0"}


def _label(run: dict[str, Any]) -> str:
    name = run.get("workflow_name") or (run.get("script_path") or "").rsplit("/", 1)[-1] or "run"
    return f"{run['run_id'][:8]} · {name} · {fmt_time(run.get('time_began'))} · {run.get('outcome') or ''}"


def _seconds(value: float) -> str:
    """A duration, in milliseconds when under a tenth of a second (apps are often that quick)."""
    return f"{value * 1000:.1f} ms" if abs(value) < 0.1 else fmt_duration(abs(value))


def _number(value: Any, seconds: bool = False) -> str:
    if value is None:
        return ""
    if seconds:
        return _seconds(value)
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _delta(a: Any, b: Any, seconds: bool = False) -> str:
    """B minus A with its sign (a true minus sign), ``same`` when equal, empty when not numbers."""
    if not isinstance(a, int | float) or not isinstance(b, int | float) or isinstance(a, bool):
        return ""
    change = b - a
    if change == 0:
        return "same"
    sign = "+" if change > 0 else "−"
    if seconds:
        return sign + _seconds(abs(change))
    return sign + (f"{abs(change):,}" if isinstance(change, int) else f"{abs(change):,.2f}")


def _rows(table_id: str, heading: list[str], lines: list[tuple[str, Any, Any, str, bool]]) -> html.Table:
    """A side-by-side table: label, A, B, difference; rows that differ are marked."""
    body = [html.Tr([html.Th(label), html.Td(a, **{"data-col": "a"}), html.Td(b, **{"data-col": "b"}),
                     html.Td(change, **{"data-col": "delta"})],
                    className="differs" if differs else "same", style=DIFFERS if differs else None,
                    **{"data-label": label})
            for label, a, b, change, differs in lines]
    return html.Table([html.Thead(html.Tr([html.Th(text) for text in heading])), html.Tbody(body)],
                      className="grid", id=table_id)


def _text(value: Any) -> str:
    if value is None:
        return "not recorded"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def comparison_section(found: Comparison) -> html.Div:
    """Run A against run B: summary, tasks by state, apps, environment and code."""
    a, b = found.a.run, found.b.run
    heading = ["", "A", "B", "B − A"]
    summary = [
        ("Run", dcc.Link(a["run_id"], href=run_href(a["run_id"])), dcc.Link(b["run_id"], href=run_href(b["run_id"])),
         "", False),
        ("Workflow", a.get("workflow_name") or "", b.get("workflow_name") or "", "",
         a.get("workflow_name") != b.get("workflow_name")),
        ("Started", fmt_time(a.get("time_began")), fmt_time(b.get("time_began")), "", False),
        ("Outcome", a["outcome"], b["outcome"], "", a["outcome"] != b["outcome"]),
        ("Duration", _number(a.get("duration"), True), _number(b.get("duration"), True),
         _delta(a.get("duration"), b.get("duration"), seconds=True), False),
        ("Tasks", _number(a["tasks"]), _number(b["tasks"]), _delta(a["tasks"], b["tasks"]), a["tasks"] != b["tasks"]),
        ("Memo hits", _number(a["memo_hits"]), _number(b["memo_hits"]), _delta(a["memo_hits"], b["memo_hits"]),
         a["memo_hits"] != b["memo_hits"]),
    ]
    states = [(line.label, _number(line.a), _number(line.b), _delta(line.a, line.b), not line.same)
              for line in found.states]
    parts: list[Any] = [
        _rows("compare-summary", heading, summary),
        html.H2("Tasks by state"),
        _rows("compare-states", ["state", "A", "B", "B − A"], states) if states else
        notice("Neither run has tasks.", "info"),
        html.H2("Apps"), _apps_table(found),
        more_note(found.a.apps_left_out + found.b.apps_left_out, "apps"),
        html.H2("Code"), *_code_part(found),
        html.H2("Environment"), *_environment_part(found),
    ]
    link = "/compare?" + urlencode({"a": a["run_id"], "b": b["run_id"]})
    parts.append(html.Div(["Link to this comparison: ", dcc.Link(link, href=link, id="compare-permalink")],
                          className="subtitle"))
    return html.Div(parts, id="compare-result")


def _apps_table(found: Comparison) -> Any:
    if not found.apps:
        return notice("Neither run has tasks.", "info")
    heading = ["App", "In", "Calls A", "Calls B", "Δ", "Failed A", "Failed B", "Memo hits A", "Memo hits B",
               "Total A", "Total B", "Δ", "Mean A", "Mean B", "Δ"]
    body = []
    for row in found.apps:
        cells = [
            ("app", row["app"]), ("in", row["in"]),
            ("a_calls", _number(row.get("a_calls"))), ("b_calls", _number(row.get("b_calls"))),
            ("calls_delta", _delta(row.get("a_calls"), row.get("b_calls"))),
            ("a_failed", _number(row.get("a_failed"))), ("b_failed", _number(row.get("b_failed"))),
            ("a_memo_hits", _number(row.get("a_memo_hits"))), ("b_memo_hits", _number(row.get("b_memo_hits"))),
            ("a_total", _number(row.get("a_total_seconds"), True)),
            ("b_total", _number(row.get("b_total_seconds"), True)),
            ("total_delta", _delta(row.get("a_total_seconds"), row.get("b_total_seconds"), True)),
            ("a_mean", _number(row.get("a_mean_seconds"), True)),
            ("b_mean", _number(row.get("b_mean_seconds"), True)),
            ("mean_delta", _delta(row.get("a_mean_seconds"), row.get("b_mean_seconds"), True)),
        ]
        differs = row["in"] != "both" or row.get("a_calls") != row.get("b_calls")
        body.append(html.Tr([html.Td(value, **{"data-col": key}) for key, value in cells],
                            style=DIFFERS if differs else None, **{"data-app": row["app"]}))
    return html.Table([html.Thead(html.Tr([html.Th(text) for text in heading])), html.Tbody(body)],
                      className="grid", id="compare-apps")


def _code_part(found: Comparison) -> list[Any]:
    parts: list[Any] = [html.H3("Apps by app digest")]
    if found.code:
        body = [html.Tr([html.Td(item["app"], **{"data-col": "app"}),
                         html.Td(item["difference"], **{"data-col": "difference"}),
                         html.Td(", ".join(short(digest) for digest in item["a_digests"]) or "—", **{"data-col": "a"}),
                         html.Td(", ".join(short(digest) for digest in item["b_digests"]) or "—", **{"data-col": "b"})])
                for item in found.code]
        parts.append(html.Table([html.Thead(html.Tr([html.Th(text) for text in
                                                     ("App", "Difference", "App digests in A", "App digests in B")])),
                                 html.Tbody(body)], className="grid", id="compare-code"))
    else:
        shared = [app for app in found.a.apps if app in found.b.apps]
        known = [app for app in shared if found.a.digests.get(app) and found.b.digests.get(app)]
        parts.append(html.Div(f"No app digest differs between the two runs: the {len(known)} of their "
                              f"{len(shared)} shared apps with a recorded app digest have the same code in both.",
                              className="notice info", id="compare-code-same"))
    lines = [(line.label, _text(line.a), _text(line.b), "" if line.same else "differs", not line.same)
             for line in found.provenance]
    parts += [html.H3("Script and version control"), _rows("compare-provenance", ["", "A", "B", ""], lines)]
    return parts


def _environment_part(found: Comparison) -> list[Any]:
    lines = [(line.label, _text(line.a), _text(line.b), "" if line.same else "differs", not line.same)
             for line in found.environment]
    parts: list[Any] = [_rows("compare-environment", ["", "A", "B", ""], lines)]
    if not found.packages_known:
        parts.append(notice("A package list was not recorded for "
                            + ("either run" if found.a.packages is None and found.b.packages is None
                               else ("run A" if found.a.packages is None else "run B"))
                            + ", so packages cannot be compared.", "info"))
        return parts
    changes = ([("added in B", name, "", version) for name, version in found.packages_added]
               + [("removed in B", name, version, "") for name, version in found.packages_removed]
               + [("changed", name, old, new) for name, old, new in found.packages_changed])
    if not changes:
        parts.append(html.Div(f"Same packages ({len(found.a.packages or {}):,}).", className="subtitle",
                              id="compare-packages-same"))
        return parts
    body = [html.Tr([html.Td(what, **{"data-col": "what"}), html.Td(name, **{"data-col": "name"}),
                     html.Td(old, **{"data-col": "a"}), html.Td(new, **{"data-col": "b"})])
            for what, name, old, new in changes]
    parts += [html.H3(f"Packages: {len(found.packages_added)} added, {len(found.packages_removed)} removed, "
                      f"{len(found.packages_changed)} changed"),
              html.Table([html.Thead(html.Tr([html.Th(text) for text in ("", "Package", "A", "B")])),
                          html.Tbody(body)], className="grid", id="compare-packages")]
    return parts


def _result(a: str | None, b: str | None) -> Any:
    if not a or not b:
        return notice("Choose two runs to compare.", "info")
    try:
        return comparison_section(compare(context.engine(), a, b))
    except ParslError as e:  # an unknown run id: the dropdowns stay to choose another
        return notice(f"{e}: choose runs from the lists.")


def layout(a: str = "", b: str = "", **_: Any) -> html.Div:
    choices = run_choices(context.engine())
    options = [{"label": _label(run), "value": run["run_id"]} for run in choices.items]
    known = {option["value"] for option in options}
    for asked in (a, b):
        if asked and asked not in known:  # older than the list, or unknown: the comparison says which
            options.append({"label": asked, "value": asked})
            known.add(asked)
    if not a and not b and len(choices.items) >= 2:
        a, b = choices.items[1]["run_id"], choices.items[0]["run_id"]
    pickers = html.Div([html.Span("A"), dcc.Dropdown(id="compare-a", options=options, value=a or None,
                                                     placeholder="run A", style={"minWidth": "32rem"}),
                        html.Span("B"), dcc.Dropdown(id="compare-b", options=options, value=b or None,
                                                     placeholder="run B", style={"minWidth": "32rem"})],
                       className="controls")
    return frame(TITLE, pickers, more_note(choices.more, "older runs (give their ids as ?a=...&b=...)"),
                 html.Div(_result(a, b), id="compare-body"),
                 subtitle="Two runs side by side; the newest runs are listed first.")


def register_callbacks(app: Dash) -> None:
    @app.callback(Output("compare-body", "children"), Input("compare-a", "value"), Input("compare-b", "value"),
                  prevent_initial_call=True)
    @guarded_callback(notice)
    def redraw(a: str | None, b: str | None) -> Any:
        return _result(a, b)
