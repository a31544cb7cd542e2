"""Failures explained: a run's failures grouped by exception type, then each failed task, a page at
a time, with its message, traceback, the tail of its stderr file, its tries and, for a dependency
failure, the upstream task that failed first. Cancelled tasks are listed apart: not failures."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from dash import Dash, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from parsl_repro.monitoring.read.common import seconds
from parsl_repro.monitoring.read.failures import FailedTask, Failures, FirstFailure, StderrTail, failures
from parsl_repro.monitoring.read.runs import change_token
from parsl_repro.viz import context
from parsl_repro.viz.components import (
    code_block,
    fmt_duration,
    fmt_time,
    frame,
    guarded_callback,
    more_note,
    notice,
    query_param,
    run_href,
    table,
    task_href,
)

PATH = "/run/<run_id>/failures"
TITLE = "Failures explained"

GROUP_COLUMNS = [("exception", "Exception"), ("state", "State"), ("count", "Tasks"), ("example_task", "Example task"),
                 ("example_message", "Example message")]
TRY_COLUMNS = [("try_id", "Try"), ("hostname", "Host"), ("block_id", "Block"), ("pid", "PID"),
               ("task_executor", "Executor"), ("task_try_time_launched", "Launched"),
               ("task_try_time_returned", "Returned"), ("duration", "Duration"), ("error", "Error")]
CANCELLED_COLUMNS = [("task_id", "Task"), ("app", "App"), ("task_time_returned", "Cancelled at"), ("error", "Why")]
SECTION_STYLE = {"background": "#fff", "border": "1px solid #dde2ea", "borderLeft": "4px solid #d63a2f",
                 "borderRadius": "4px", "padding": "0.4rem 0.9rem 0.8rem", "margin": "0.8rem 0"}
DEP_FAIL_STYLE = {**SECTION_STYLE, "borderLeft": "4px solid #f08a7e"}


def layout(run_id: str, page: str | None = None, exception: str | None = None, **_: Any) -> html.Div:
    """The page: page ``page`` of the run's failures (of type ``exception`` when given), and a
    timer that redraws it while the run is live."""
    number, problem = _page_number(page)
    exception = query_param(exception) or None
    data = failures(context.engine(), run_id, page=number, exception=exception)
    body = [notice(problem)] if problem else []
    return frame(TITLE,
                 html.Div(body + [failures_section(data)], id="failures-body"),
                 dcc.Store(id="failures-params", data={"run_id": run_id, "page": number, "exception": exception,
                                                       "token": _token(run_id) if data.live else None}),
                 dcc.Interval(id="failures-refresh", interval=context.refresh_ms(), disabled=not data.live),
                 run_id=run_id, view="failures",
                 subtitle=f"run {run_id} · {data.outcome}" + (" · live: this page follows it" if data.live else ""))


def report_section(engine: Any, run_id: str) -> html.Div:
    """The failures section of the static report: the first page of the run's failures."""
    return failures_section(failures(engine, run_id))


def failures_section(data: Failures) -> html.Div:
    """The failures of one run, from ``monitoring.read.failures.failures``: counts, the groups by
    exception type, the page of failed tasks with what explains each, and the cancelled tasks."""
    parts: list[Any] = [_summary(data)]
    if not data.total:
        parts.append(notice("This run has no failed tasks.", "info"))
    if data.unfinished:
        parts.append(notice(_unfinished(data), "info"))
    if data.total:
        parts += [html.H2("By exception type"), _groups(data), more_note(data.more_groups, "exception types"),
                  html.H2("Failed tasks"), *_task_list(data)]
    if data.cancelled:
        parts += [html.H2("Cancelled: not failures"),
                  html.P(f"The run ended before these {data.cancelled:,} tasks finished; they were never retried."),
                  table(CANCELLED_COLUMNS, data.cancelled_tasks, table_id="failures-cancelled",
                        links={"task_id": lambda row: task_href(data.run_id, row["task_id"])},
                        formats={"task_time_returned": fmt_time,
                                 "error": lambda error: error or "the run ended first"}),
                  more_note(data.cancelled - len(data.cancelled_tasks), "cancelled tasks")]
    return html.Div(parts, id="failures-section")


def _summary(data: Failures) -> html.Div:
    cards = [("failures-failed", f"{data.failed:,}", "failed (their own tries failed)"),
             ("failures-dep-failed", f"{data.dep_failed:,}", "dependency failures (never ran)"),
             ("failures-cancelled-count", f"{data.cancelled:,}", "cancelled (not failures)")]
    if data.unfinished:
        cards.append(("failures-unfinished", f"{data.unfinished:,}", "unfinished"))
    return html.Div([html.Div([html.Div(value, className="value"), html.Div(label, className="label")],
                              className="card", id=card_id) for card_id, value, label in cards], className="cards")


def _unfinished(data: Failures) -> str:
    if data.live:
        return f"{data.unfinished:,} tasks are still running or waiting: failures appear here as they happen."
    return (f"{data.unfinished:,} tasks never finished: the run ended ({data.outcome}) while they were in flight. "
            "They are neither failures nor successes.")


def _groups(data: Failures) -> html.Table:
    def filtered(row: dict[str, Any]) -> str:
        return _href(data.run_id, exception=row["exception"])

    items = [dict(row, exception=row["exception"] or "(no error recorded)") for row in data.groups]
    return table(GROUP_COLUMNS, items, table_id="failures-groups",
                 links={"exception": filtered, "example_task": lambda row: task_href(data.run_id, row["example_task"])},
                 formats={"count": lambda n: f"{n:,}"})


def _task_list(data: Failures) -> list[Any]:
    parts: list[Any] = []
    if data.exception is not None:
        tasks = f"{data.matching:,} task" + ("" if data.matching == 1 else "s")
        parts.append(html.Div([f"Showing only {data.exception!r}: {tasks}. ",
                               dcc.Link("Show every failure", href=_href(data.run_id))], className="more"))
    if not data.tasks:
        if data.matching:
            parts.append(notice(f"There is no page {data.page}: these failures fill {data.pages} pages.", "info"))
            parts.append(dcc.Link("Go to the first page", href=_href(data.run_id, exception=data.exception)))
        else:
            parts.append(notice(f"No failed task of this run has the exception type {data.exception!r}.", "info"))
        return parts
    first = (data.page - 1) * data.per_page + 1
    parts.append(html.Div(f"Tasks {first:,} to {first + len(data.tasks) - 1:,} of {data.matching:,}, "
                          "failed before dependency failures, then by task id.", className="more"))
    parts += [_task(data.run_id, task) for task in data.tasks]
    parts.append(more_note(data.after, "failed tasks on later pages"))
    parts.append(_pager(data))
    return parts


def _pager(data: Failures) -> html.Nav | None:
    if data.pages == 1:
        return None
    links: list[Any] = []
    if data.page > 1:
        links.append(dcc.Link("previous page", href=_href(data.run_id, data.page - 1, data.exception),
                              id="failures-previous"))
    links.append(html.Span(f"page {data.page} of {data.pages}"))
    if data.page < data.pages:
        links.append(dcc.Link("next page", href=_href(data.run_id, data.page + 1, data.exception), id="failures-next"))
    return html.Nav(links, className="controls", id="failures-pager")


def _task(run_id: str, task: FailedTask) -> html.Section:
    heading = html.H3([dcc.Link(f"task {task.task_id}", href=task_href(run_id, task.task_id)),
                       f" {task.app} · {task.state}",
                       f" · {fmt_time(task.time_returned)}" if task.time_returned else ""])
    message = html.Div([html.Strong(task.exception or "(no error recorded)", className="exception"),
                        html.Span(f": {task.message}" if task.message else "", className="message")],
                       className="failure-message")
    parts: list[Any] = [heading, message]
    if task.first_failures or task.state == "dep_fail":
        parts.append(_first_failures(run_id, task))
    if task.traceback:
        parts += [html.H4("Traceback"), code_block(task.traceback, f"failures-traceback-{task.task_id}")]
    elif task.state != "dep_fail":
        parts.append(html.P("No traceback was recorded for this task.", className="more"))
    if task.stderr is not None:
        parts += [html.H4("Standard error"), _stderr(task.task_id, task.stderr)]
    if task.tries:
        parts += [html.H4(f"Tries: {len(task.tries) + task.more_tries}, {task.fail_count} failed"), _tries(task)]
    else:
        parts.append(_tries(task))
    return html.Section(parts, id=f"failures-task-{task.task_id}", className=f"failure failure-{task.state}",
                        style=SECTION_STYLE if task.state == "failed" else DEP_FAIL_STYLE)


def _first_failures(run_id: str, task: FailedTask) -> html.Div:
    if not task.first_failures:
        return html.Div("The failed dependency is not among this run's recorded dependencies.", className="more")
    items = [_first_failure(run_id, task.task_id, root) for root in task.first_failures]
    if task.more_first_failures:
        items.append(html.Li(f"... and {task.more_first_failures:,} more"))
    label = "First failure upstream" if len(items) == 1 else "First failures upstream"
    return html.Div([html.Strong(label), html.Ul(items)], className="first-failures")


def _first_failure(run_id: str, task_id: int, root: FirstFailure) -> html.Li:
    parts: list[Any] = [dcc.Link(f"task {root.task_id}", href=task_href(run_id, root.task_id),
                                 id=f"failures-first-{task_id}-{root.task_id}", className="first-failure"),
                        f" ({root.app}): {root.error or 'no error recorded'}"]
    if root.via:
        parts.append(" · via ")
        for n, step in enumerate(root.via):
            parts += [", " if n else "", dcc.Link(f"task {step}", href=task_href(run_id, step))]
    return html.Li(parts)


def _stderr(task_id: int, tail: StderrTail) -> html.Div:
    block_id = f"failures-stderr-{task_id}"
    if not tail.exists or not tail.text:
        return html.Div(f"{tail.path}: {tail.note}" if tail.exists else tail.note, className="more", id=block_id)
    caption = f"{tail.path}: " + ("its last lines" if tail.cut else "all of it")
    return html.Div([html.Div(caption, className="more"), code_block(tail.text)], id=block_id)


def _tries(task: FailedTask) -> Any:
    if not task.tries:
        why = "it never ran: a dependency failed first" if task.state == "dep_fail" else "it never reached an executor"
        return html.P(f"No try was recorded: {why}.", className="more")
    items = [dict(attempt, duration=seconds(attempt["task_try_time_launched"], attempt["task_try_time_returned"]))
             for attempt in task.tries]
    return html.Div([table(TRY_COLUMNS, items, table_id=f"failures-tries-{task.task_id}",
                           formats={"task_try_time_launched": fmt_time, "task_try_time_returned": fmt_time,
                                    "duration": fmt_duration}),
                     more_note(task.more_tries, "earlier tries")])


def _href(run_id: str, page: int = 1, exception: str | None = None) -> str:
    query = {key: value for key, value in (("exception", exception), ("page", page if page > 1 else None))
             if value is not None}
    return run_href(run_id, "failures") + (f"?{urlencode(query)}" if query else "")


def _page_number(value: Any) -> tuple[int, str]:
    text = query_param(value)
    if not text:
        return 1, ""
    if not text.isdigit() or int(text) < 1:
        return 1, f"The page {text!r} is not a page number: showing the first page."
    return int(text), ""


def _token(run_id: str) -> str:
    return repr(change_token(context.engine(), run_id))


def register_callbacks(app: Dash) -> None:
    @app.callback(Output("failures-body", "children"), Output("failures-params", "data"),
                  Output("failures-refresh", "disabled"),
                  Input("failures-refresh", "n_intervals"), State("failures-params", "data"),
                  prevent_initial_call=True)
    @guarded_callback(lambda message: (notice(message), {}, True))
    def refresh(_ticks: int | None, params: dict[str, Any] | None) -> Any:
        if not params or not params.get("run_id"):
            raise PreventUpdate
        token = _token(params["run_id"])
        if token == params.get("token"):
            raise PreventUpdate
        data = failures(context.engine(), params["run_id"], page=params["page"], exception=params["exception"])
        return failures_section(data), dict(params, token=token), not data.live
