"""Runs: every run in the store, newest first, with its outcome and task counts; live runs marked."""
from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, dcc, html

from parsl_repro.monitoring.read.runs import runs
from parsl_repro.viz import context
from parsl_repro.viz.components import (
    fmt_duration,
    fmt_time,
    frame,
    guarded_callback,
    more_note,
    notice,
    run_href,
    table,
)

PATH = "/"
TITLE = "Runs"

COLUMNS = [("run_id", "Run"), ("workflow_name", "Workflow"), ("script_path", "Script"), ("user", "User"),
           ("host", "Host"), ("time_began", "Started"), ("duration", "Duration"), ("outcome", "Outcome"),
           ("tasks", "Tasks"), ("state_summary", "By state"), ("memo_hits", "Memo hits")]


def layout(**_: Any) -> html.Div:
    return frame(TITLE,
                 html.Div([dcc.Input(id="runs-filter", type="search", debounce=True,
                                     placeholder="filter: any text in a run's id, workflow, script, user, host "
                                                 "or outcome"),
                           dcc.Dropdown(id="runs-sort", clearable=False, value="time_began",
                                        options=[{"label": f"sort by {label.lower()}", "value": key}
                                                 for key, label in COLUMNS if key != "state_summary"])],
                          className="controls"),
                 html.Div(_table(""), id="runs-table"),
                 dcc.Interval(id="runs-refresh", interval=context.refresh_ms()),
                 subtitle=f"store: {context.store_url()}")


def _table(text: str, sort: str = "time_began") -> Any:
    page = runs(context.engine())
    if not page.items:
        return notice("This store holds no runs yet: run a workflow that records into it, then reload.", "info")
    items = [dict(run, short_id=run["run_id"][:8], state_summary=_states(run["states"])) for run in page.items]
    if text:
        needle = text.lower()
        items = [run for run in items if any(needle in str(run.get(key) or "").lower() for key in
                                             ("run_id", "workflow_name", "script_path", "user", "host", "outcome"))]
    if sort != "time_began":
        items.sort(key=lambda run: (run.get(sort) is None, run.get(sort) if run.get(sort) is not None else 0),
                   reverse=sort in ("duration", "tasks", "memo_hits"))
    if not items:
        return notice(f"No run matches {text!r}.", "info")
    return [table(COLUMNS, items, table_id="runs",
                  links={"run_id": lambda run: run_href(run["run_id"])},
                  formats={"run_id": lambda run_id: run_id[:8], "time_began": fmt_time, "duration": fmt_duration,
                           "outcome": str},
                  row_class=lambda run: f"outcome-{run['outcome']}" + (" live" if run["live"] else "")),
            more_note(page.more, "older runs")]


def _states(states: dict[str, int]) -> str:
    return ", ".join(f"{state} {n}" for state, n in sorted(states.items(), key=lambda kv: -kv[1]))


def register_callbacks(app: Dash) -> None:
    @app.callback(Output("runs-table", "children"),
                  Input("runs-filter", "value"), Input("runs-sort", "value"), Input("runs-refresh", "n_intervals"),
                  prevent_initial_call=True)
    @guarded_callback(notice)
    def refresh(text: str | None, sort: str | None, _ticks: int | None) -> Any:
        return _table(text or "", sort or "time_began")
