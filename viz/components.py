"""Building blocks every page uses: the page frame and navigation, notices, tables, number and
time formats, and the guards that turn any failure into a message in the page.

Everything from the store is passed to Dash as text (component children and props), which React
escapes: nothing is ever rendered as raw HTML, so a recorded argument ``<script>...`` shows as
those characters."""
from __future__ import annotations

import datetime
import functools
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from dash import dcc, html
from dash.exceptions import PreventUpdate

from parsl_repro.errors import ParslError

if TYPE_CHECKING:
    from parsl_repro.monitoring.read.common import Page

logger = logging.getLogger(__name__)


# --- formats ---------------------------------------------------------------------------------------
def fmt_time(value: Any) -> str:
    """A time in this machine's local zone with the zone's name: ``2026-12-06 09:14:03 UTC``."""
    if not isinstance(value, datetime.datetime):
        return "" if value is None else str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def fmt_duration(seconds: float | None) -> str:
    """``0.25 s``, ``42 s``, ``3 min 20 s``, ``2 h 5 min``; empty for None."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return ""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def fmt_bytes(size: float | None) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 GiB``; empty for None."""
    if size is None:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def short(digest: str | None, n: int = 12) -> str:
    return (digest or "")[:n]


# --- figures ---------------------------------------------------------------------------------------
# --- query parameters ------------------------------------------------------------------------------
def query_param(value: Any) -> str:
    """A query parameter as Dash Pages hands it to a layout (a string, a list when given several
    times, None when absent): the first given, stripped; "" when there is none."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    return "" if value is None else str(value).strip()


# --- links -----------------------------------------------------------------------------------------
def run_href(run_id: str, view: str = "") -> str:
    return f"/run/{quote(run_id, safe='')}" + (f"/{view}" if view else "")


def task_href(run_id: str, task_id: int) -> str:
    return f"{run_href(run_id)}/task/{int(task_id)}"


def tasks_href(run_id: str, app: str | None = None, state: str | None = None, offset: int = 0) -> str:
    """The run's task list (of ``app``, in ``state``), from its ``offset``-th task."""
    query = urlencode({key: value for key, value in (("app", app), ("state", state), ("from", offset)) if value})
    return run_href(run_id, "tasks") + (f"?{query}" if query else "")


def app_href(run_id: str, app: str) -> str:
    return f"{run_href(run_id, 'apps')}?app={quote(app, safe='')}"


def file_href(file_id: int) -> str:
    return f"/file/{int(file_id)}"


# --- the page frame --------------------------------------------------------------------------------
RUN_VIEWS = (("", "Overview"), ("graph", "Task graph"), ("failures", "Failures"), ("apps", "Apps"),
             ("tasks", "Tasks"), ("resources", "Resources"), ("files", "Files"))


def frame(title: str, *children: Any, run_id: str | None = None, view: str | None = None,
          subtitle: Any = None) -> html.Div:
    """A page: the top bar (Runs, Files, Compare), the run's own tabs when it is about one run, the
    title, then ``children``."""
    top = html.Nav([dcc.Link("parsl-visualize", href="/", className="brand"),
                    dcc.Link("Runs", href="/"), dcc.Link("Files", href="/files"),
                    dcc.Link("Compare", href="/compare")], className="topbar")
    parts: list[Any] = [top]
    if run_id is not None:
        parts.append(html.Nav([dcc.Link(label, href=run_href(run_id, path),
                                        className="tab active" if path == view else "tab")
                               for path, label in RUN_VIEWS], className="tabs", id="run-tabs"))
    parts.append(html.H1(title, id="page-title"))
    if subtitle is not None:
        parts.append(html.Div(subtitle, className="subtitle"))
    parts.extend(children)
    return html.Div(parts, className="page")


def notice(text: str, kind: str = "error") -> html.Div:
    """A message in the page: ``error`` (what went wrong), ``info`` (nothing to show, and why)."""
    return html.Div(text, className=f"notice {kind}", role="alert" if kind == "error" else "status")


def kv_table(pairs: Iterable[tuple[str, Any]], table_id: str | None = None) -> html.Table:
    """A two-column table of labels and values (values may be components); empty values skipped."""
    body = [html.Tr([html.Th(label), html.Td(value)]) for label, value in pairs if value not in (None, "", [])]
    return html.Table(html.Tbody(body), className="kv", **({"id": table_id} if table_id else {}))


Column = tuple[str, str]
"""(key in the row, heading)."""


def table(columns: Sequence[Column], items: Sequence[dict[str, Any]], *,
          links: dict[str, Callable[[dict[str, Any]], str | None]] | None = None,
          formats: dict[str, Callable[[Any], Any]] | None = None, table_id: str | None = None,
          row_class: Callable[[dict[str, Any]], str] | None = None) -> html.Table:
    """A plain table of ``items``; ``links[key](row)`` makes that cell a link, ``formats[key]``
    formats its value."""
    links, formats = links or {}, formats or {}
    head = html.Thead(html.Tr([html.Th(label) for _, label in columns]))
    body = []
    for item in items:
        cells = []
        for key, _ in columns:
            value = item.get(key)
            shown = formats[key](value) if key in formats else ("" if value is None else str(value))
            href = links[key](item) if key in links else None
            cells.append(html.Td(dcc.Link(shown, href=href) if href else shown, **{"data-col": key}))
        body.append(html.Tr(cells, className=row_class(item) if row_class else None))
    return html.Table([head, html.Tbody(body)], className="grid", **({"id": table_id} if table_id else {}))


def pager(page: Page, what: str, href: Callable[[int], str], prefix: str) -> html.Div | None:
    """``51-100 of 2,345 tasks · previous 50 · next 50`` for a ``page`` of a list: links
    (``href(offset)``) to its neighbouring pages, with ids ``<prefix>-pager``, ``-previous`` and
    ``-next``; None when the list fits on one page."""
    if page.offset == 0 and not page.more:
        return None
    parts: list[Any] = [html.Span(f"{page.offset + 1:,}-{page.offset + len(page.items):,} of {page.total:,} {what}")]
    if page.offset:
        parts += [" · ", dcc.Link(f"previous {page.limit}", href=href(max(0, page.offset - page.limit)),
                                  id=f"{prefix}-previous")]
    if page.more:
        parts += [" · ", dcc.Link(f"next {min(page.limit, page.more)}", href=href(page.offset + page.limit),
                                  id=f"{prefix}-next")]
    return html.Div(parts, className="more", id=f"{prefix}-pager")


def more_note(left_out: int, what: str) -> html.Div | None:
    """``and 1,234 more tasks not shown``, or None when nothing was left out."""
    return html.Div(f"... and {left_out:,} more {what} not shown", className="more") if left_out else None


def code_block(text: str | None, block_id: str | None = None) -> html.Pre:
    return html.Pre(text or "", className="code", **({"id": block_id} if block_id else {}))


# --- guards ----------------------------------------------------------------------------------------
def explain(error: BaseException) -> str:
    """A one-line message for a page that could not be drawn."""
    if isinstance(error, ParslError):
        return str(error)
    return f"This view could not be drawn: {type(error).__name__}: {error}. The dashboard's log has the details."


def guarded_layout(layout: Callable[..., Any], title: str) -> Callable[..., Any]:
    """``layout`` that shows a message in the page, never a traceback, when it fails."""

    @functools.wraps(layout)
    def safe(**kwargs: Any) -> Any:
        try:
            return layout(**kwargs)
        except Exception as e:
            if not isinstance(e, ParslError):
                logger.exception("The %s page failed for %s", title, kwargs)
            return frame(title, notice(explain(e)), run_id=kwargs.get("run_id"))

    return safe


def guarded_callback(fallback: Callable[[str], Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A callback that answers ``fallback(message)`` instead of an HTTP 500 when it fails."""

    def wrap(callback: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(callback)
        def safe(*args: Any, **kwargs: Any) -> Any:
            try:
                return callback(*args, **kwargs)
            except PreventUpdate:
                raise
            except Exception as e:
                if not isinstance(e, ParslError):
                    logger.exception("Callback %s failed", callback.__name__)
                return fallback(explain(e))

        return safe

    return wrap
