"""``parsl-repro report RUN -o report.html``: one run as one self-contained HTML file, to attach to
a paper or an e-mail: the run's record, its overview (progress, Gantt of tries, tasks per app),
its failures explained and its resources. Plotly's script and every figure are inlined, so the
file opens offline with no server, as Dask's ``performance_report`` and Snakemake's ``--report``.

The sections are the dashboard's own builders (``parsl_repro.viz.pages``), drawn statically by
``parsl_repro.viz.static``: the report shows what the dashboard shows."""
from __future__ import annotations

import datetime
import html as html_text
import logging
import os
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dash import html

from parsl_repro.errors import ParslError
from parsl_repro.utils import redact_secrets
from parsl_repro.viz import plotlyjs
from parsl_repro.viz.app import ASSETS
from parsl_repro.viz.components import explain, notice
from parsl_repro.viz.static import StaticRenderer

if TYPE_CHECKING:
    from sqlalchemy import Engine

logger = logging.getLogger(__name__)

Section = tuple[str, Callable[["Engine", str], Any]]


def sections() -> list[Section]:
    """(heading, builder) of each part of the report, in order: the builders read the store and
    return Dash components."""
    from parsl_repro.viz.pages import failures, resources, run

    return [("Overview", run.report_section), ("Failures explained", failures.report_section),
            ("Resources", resources.report_section)]


def build_report(engine: Engine, run_id: str, store_url: str, link_base: str | None = None) -> tuple[str, int]:
    """The report of run ``run_id`` as one HTML document, and the number of figures in it. A section
    that cannot be drawn says why in its place; a run that does not exist raises ``RunNotFound``.
    Links to tasks and files point into the dashboard at ``link_base`` when given, else are text."""
    from parsl_repro.monitoring.read.runs import run_header

    header = run_header(engine, run_id)
    renderer = StaticRenderer(link_base)
    parts = []
    for heading, build in sections():
        try:
            content = build(engine, run_id)
        except ParslError:
            raise
        except Exception as e:
            logger.exception("The report's %s section failed for run %s", heading, run_id)
            content = notice(explain(e))
        parts.append(renderer.render(html.Section([html.H2(heading), content], className="report-section")))
    title = f"Run {run_id[:8]} of {header.get('workflow_name') or 'a workflow'}"
    made = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    document = _TEMPLATE.format(
        title=html_text.escape(title), css=(ASSETS / "style.css").read_text(), plotly=plotlyjs.report_script(),
        heading=html_text.escape(title),
        subtitle=html_text.escape(f"run {run_id} · {header['outcome']} · report made {made} from "
                                  f"{redact_secrets(store_url)} by parsl-repro report"),
        body="\n".join(parts), scripts="\n".join(renderer.scripts))
    return document, renderer.figures


def write_report(engine: Engine, run_id: str, path: str, store_url: str, link_base: str | None = None) -> int:
    """Write the report of ``run_id`` to ``path`` (whole or not at all); returns its number of figures."""
    document, figures = build_report(engine, run_id, store_url, link_base)
    directory = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=directory, suffix=".part", delete=False) as f:
        f.write(document)
    os.replace(f.name, path)
    return figures


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="parsl-repro report">
<title>{title}</title>
<style>
{css}
.report-section {{ margin-top: 1.5rem; }}
</style>
<script>{plotly}</script>
</head>
<body>
<div class="page" id="report">
<h1 id="page-title">{heading}</h1>
<div class="subtitle">{subtitle}</div>
{body}
</div>
<script>
{scripts}
</script>
</body>
</html>
"""
