"""``parsl-repro report``: one self-contained HTML file that Chromium opens from a file:// URL with
the network off and draws every figure of; the store's text stays text."""
from __future__ import annotations

import json
import subprocess
import sys

import plotly.graph_objects as go
from dash import dcc, html

from parsl_repro.viz.static import StaticRenderer


def report(store, run: str, output) -> dict:
    done = subprocess.run([sys.executable, "-m", "parsl_repro.cli", "--db", store.url, "report", run, "-o",
                           str(output), "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def open_offline(chromium, path):
    """The report in a browser context with the network off; every request that is not the file
    itself is recorded (there must be none)."""
    context = chromium.new_context(offline=True, viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    requested: list[str] = []
    tab.on("request", lambda request: requested.append(request.url))
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(path.as_uri())
    return context, tab, requested, errors


def test_the_report_opens_offline_and_draws_its_figures(sqlite_store, chromium, tmp_path):
    from tests.viz.conftest import ARTIFACTS, screenshot

    written = report(sqlite_store, sqlite_store.htex, tmp_path / "report.html")
    assert written["run_id"] == sqlite_store.htex and written["figures"] >= 4
    context, tab, requested, errors = open_offline(chromium, tmp_path / "report.html")
    try:
        tab.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= "
                              f"{written['figures']}", timeout=30_000)
        drawn = tab.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].map(d => d.data.length)")
        assert len(drawn) == written["figures"] and all(n > 0 for n in drawn)
        text = tab.inner_text("body")
        for heading in ("Overview", "Failures explained", "Resources"):
            assert heading in text
        assert "WorkerLost" in text  # the crashed task, explained
        assert requested == [(tmp_path / "report.html").as_uri()] and not errors
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        screenshot(tab, "report_htex")
    finally:
        context.close()


def test_a_report_of_a_run_that_does_not_exist_is_a_one_line_error(sqlite_store, tmp_path):
    done = subprocess.run([sys.executable, "-m", "parsl_repro.cli", "--db", sqlite_store.url, "report", "nosuchrun",
                           "-o", str(tmp_path / "r.html")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("parsl-repro: ") and "nosuchrun" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "r.html").exists()


def test_static_rendering_escapes_the_stores_text():
    hostile = "<script>alert(1)</script>"
    renderer = StaticRenderer()
    page = renderer.render(html.Div([html.Pre(hostile), dcc.Link(hostile, href="/x?a=1&b=<2>"),
                                     dcc.Graph(figure=go.Figure(go.Bar(x=[hostile], y=[1], hovertext=[hostile])))],
                                    className='a"b', **{"data-col": hostile}))
    assert "<script>" not in page and "</script>" not in " ".join(renderer.scripts)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and 'class="a&quot;b"' in page
    assert "/x?a=1" not in page and renderer.figures == 1  # no dashboard behind a file: links are text
    linked = StaticRenderer(link_base="http://127.0.0.1:8080/").render(dcc.Link(hostile, href="/x?a=1&b=<2>"))
    assert linked == '<a href="http://127.0.0.1:8080/x?a=1&amp;b=&lt;2&gt;">&lt;script&gt;alert(1)&lt;/script&gt;</a>'
