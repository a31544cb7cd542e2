"""Dash component trees as static HTML, for the one-file report: the pages' own builders, drawn
without a server.

``html.*`` components become their tags, ``dcc.Link`` an ``<a>``, ``dcc.Graph`` a ``<div>`` that a
``Plotly.newPlot`` call fills; interactive-only components (intervals, stores, inputs, dropdowns,
locations) are left out. Every text and attribute is escaped, and figure JSON cannot close its
``<script>``: what the store holds is shown as text, as in the dashboard."""
from __future__ import annotations

import html as html_text
import itertools
import re
from typing import Any

import plotly.graph_objects as go
import plotly.io

_HTML = "dash_html_components"
_CORE = "dash_core_components"
_ATTRIBUTES = {"className": "class", "id": "id", "title": "title", "href": "href", "role": "role",
               "colSpan": "colspan", "rowSpan": "rowspan", "open": "open", "target": "target"}
_VOID = {"br", "hr", "img", "col"}
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


class StaticRenderer:
    """Renders components to HTML; figures get ids ``figure-1``, ``figure-2``, ... and their
    ``Plotly.newPlot`` calls are collected in ``scripts``. Links to the dashboard's own pages
    (paths from ``/``) point into ``link_base`` (a dashboard's URL) when given, and are plain text
    otherwise, since a file opened offline has no dashboard behind it."""

    def __init__(self, link_base: str | None = None) -> None:
        self.link_base = link_base.rstrip("/") if link_base else None
        self._ids = itertools.count(1)
        self.scripts: list[str] = []
        self.figures = 0

    def render(self, component: Any) -> str:
        if component is None or component is False:
            return ""
        if isinstance(component, (str, int, float)):
            return html_text.escape(str(component))
        if isinstance(component, (list, tuple)):
            return "".join(self.render(part) for part in component)
        as_json = component.to_plotly_json()
        namespace, kind, props = as_json.get("namespace"), as_json.get("type"), as_json.get("props", {})
        if namespace == _CORE and kind == "Graph":
            return self._graph(props)
        if namespace == _CORE and kind == "Link":
            href = props.get("href") or ""
            if href.startswith("/"):
                if self.link_base is None:
                    return self._element("span", {**props, "href": None, "className": "link"})
                href = self.link_base + href
            return self._element("a", props, href=href)
        if namespace == _HTML:
            return self._element(kind.lower(), props)
        return ""  # interactive only: nothing to show on paper

    def _element(self, tag: str, props: dict[str, Any], **extra: Any) -> str:
        attributes = []
        for key, value in {**props, **extra}.items():
            if value is None or key == "children":
                continue
            name = _ATTRIBUTES.get(key) or (key if key.startswith(("data-", "aria-")) else None)
            if key == "style" and isinstance(value, dict):
                attributes.append(f'style="{html_text.escape(_css(value))}"')
            elif name == "open":
                if value:
                    attributes.append("open")
            elif name is not None:
                attributes.append(f'{name}="{html_text.escape(str(value))}"')
        opening = f"<{tag}{''.join(' ' + a for a in attributes)}>"
        if tag in _VOID:
            return opening
        return f"{opening}{self.render(props.get('children'))}</{tag}>"

    def _graph(self, props: dict[str, Any]) -> str:
        figure = props.get("figure")
        if figure is None:
            return ""
        if not isinstance(figure, go.Figure):
            figure = go.Figure(figure)
        element = f"figure-{next(self._ids)}"
        self.figures += 1
        data = script_safe(plotly.io.to_json(figure, validate=False))
        self.scripts.append(f'Plotly.newPlot("{element}", ...(f => [f.data, f.layout])({data}), '
                            f'{{"responsive": true, "displaylogo": false}});')
        style = props.get("style") or {}
        return f'<div id="{element}" class="figure" style="{html_text.escape(_css(style))}"></div>'


def script_safe(text: str) -> str:
    """JSON that can sit inside ``<script>``: no ``</``, no ``<!--``, no line separators."""
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _css(style: dict[str, Any]) -> str:
    return "; ".join(f"{_CAMEL.sub('-', key).lower()}: {value}" for key, value in style.items())
