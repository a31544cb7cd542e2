"""The plotly.js the dashboard serves: plotly's own cartesian partial bundle, vendored, loaded once
and only on pages with figures, able to draw every trace type the dashboard uses; and the fallback
to the plotly package's full bundle when the vendored one is missing or of another major version."""
from __future__ import annotations

import ast
import pathlib

import pytest
from sqlalchemy import create_engine

from parsl_repro.viz import plotlyjs
from tests.viz.conftest import settle, store_rows

VIZ = pathlib.Path(plotlyjs.__file__).parent


def plotly_requests(page) -> list[str]:
    return page.evaluate("""() => performance.getEntriesByType('resource').map(e => e.name)
        .filter(name => name.includes('plotly'))""")


def drawn_trace_types(page) -> list[str]:
    page.wait_for_function("""() => [...document.querySelectorAll('.js-plotly-plot')].length > 0 &&
        [...document.querySelectorAll('.js-plotly-plot')].every(g => g._fullData && g.querySelector('.main-svg'))""",
                           timeout=20_000)
    return page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
        .flatMap(g => g.data.map(t => t.type || 'scatter'))""")


def test_figure_pages_load_the_cartesian_bundle_once_and_draw_every_trace(sqlite_store, dashboard, page, engine):
    [[task]] = store_rows(engine, "SELECT min(task_id) FROM try WHERE run_id = :r", r=sqlite_store.htex)
    page.goto(dashboard.base + "/")
    settle(page)
    assert plotly_requests(page) == [], "a page without figures loads no plotly.js"
    drawn: set[str] = set()
    for path in ("", "/graph", "/apps", "/resources", f"/task/{task}"):
        page.goto(f"{dashboard.base}/run/{sqlite_store.htex}{path}")
        settle(page)
        types = drawn_trace_types(page)
        registered = page.evaluate("() => Object.keys(Plotly.PlotSchema.get().traces)")
        assert set(types) <= set(registered), f"{path or 'overview'} draws a trace type the bundle lacks"
        assert set(registered) == plotlyjs.TRACE_TYPES
        assert page.evaluate("() => Plotly.version") == plotlyjs.version_of(plotlyjs.VENDORED)
        loaded = plotly_requests(page)
        assert len(loaded) == 1 and plotlyjs.ASSET_PATH in loaded[0], loaded  # never Dash's full plotly.min.js
        drawn |= set(types)
    assert {"scatter", "bar", "box"} <= drawn


def test_a_figure_page_starts_on_plotly_before_asking_for_its_content(sqlite_store, dashboard, page, engine):
    """Pages that draw figures from their first answer fetch plotly.js at once (while the server
    prepares that answer); pages without figures never fetch it (the test above)."""
    [[task]] = store_rows(engine, "SELECT min(task_id) FROM try WHERE run_id = :r", r=sqlite_store.htex)
    for path in ("", f"/task/{task}"):
        page.goto(f"{dashboard.base}/run/{sqlite_store.htex}{path}")
        settle(page)
        drawn_trace_types(page)
        started = page.evaluate("""() => {
            const entries = performance.getEntriesByType('resource');
            const plotly = entries.find(e => e.name.includes('plotly-cartesian'));
            const content = entries.find(e => e.name.includes('_dash-update-component'));
            return [plotly.startTime, content.startTime]; }""")
        assert started[0] < started[1], f"{path or 'overview'}: plotly.js was fetched only after the content"


def test_every_trace_type_in_the_dashboard_code_is_in_the_bundle():
    """Figures built outside the browser tests' stores (the binned Gantt's heatmap, ...) count too:
    every ``go.<Trace>(`` in viz/ must name a trace type of the cartesian bundle."""
    used = set()
    for path in VIZ.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "go" \
                    and node.func.attr not in ("Figure", "Layout"):
                used.add(node.func.attr.lower())
    assert used and used <= plotlyjs.TRACE_TYPES, used - plotlyjs.TRACE_TYPES


def test_the_vendored_bundle_draws_the_plotly_package_figures():
    ours, theirs = plotlyjs.version_of(plotlyjs.VENDORED), plotlyjs.bundled_version()
    assert ours and theirs, "both bundles carry their version in their licence header"
    assert ours.split(".")[0] == theirs.split(".")[0], \
        f"plotly.js {theirs} in the plotly package, {ours} vendored: run scripts/vendor-plotly.sh"
    assert plotlyjs.vendored_usable()
    assert "plotly.js (cartesian" in plotlyjs.report_script()[:300]


@pytest.fixture
def without_vendored(tmp_path, monkeypatch):
    monkeypatch.setattr(plotlyjs, "VENDORED", tmp_path / "missing.js")
    plotlyjs.vendored_usable.cache_clear()
    yield
    plotlyjs.vendored_usable.cache_clear()


def test_without_the_vendored_bundle_the_full_one_is_used(without_vendored, tmp_path, caplog):
    from parsl_repro.viz.app import create_app

    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    app = create_app(engine, "sqlite://")
    assert "window.Plotly" not in app.index_string  # dcc.Graph loads Dash's own plotly.min.js
    assert "No plotly.js cartesian bundle" in caplog.text
    assert "plotly.js (cartesian" not in plotlyjs.report_script()[:300]
    assert plotlyjs.report_script().startswith("/**\n* plotly.js v")
    engine.dispose()
