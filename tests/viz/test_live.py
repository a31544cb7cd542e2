"""Live: the Run overview of a running run follows it without reloading the browser: the completed
count moves, the outcome becomes completed, the figures are redrawn, and once the run has ended the
page stops asking for news."""
from __future__ import annotations

import time

from parsl_repro.monitoring.engine import default_url, make_engine, prepare_default_store
from parsl_repro.monitoring.schema import ensure_schema
from tests.viz import workflows
from tests.viz.conftest import Dashboard, scalar, settle, start_script, wait_for


def completed(page) -> int:
    return int(page.inner_text("#run-card-completed"))


def test_the_overview_follows_a_live_run_without_reloading(tmp_path, page):
    prepare_default_store(str(tmp_path / "runinfo"))
    url = default_url(str(tmp_path / "runinfo"))
    engine = make_engine(url, writer=True)
    ensure_schema(engine, url)  # an empty store: the dashboard starts before the run, which is short
    engine.dispose()
    server = Dashboard(url, tmp_path / "dashboard.log")
    process = None
    try:
        page.goto(server.base + "/")  # the runs page, loaded before the run starts: it lists the run once it
        settle(page)  # is recorded, and a click on it opens the run's page at once, without loading the app again
        process = start_script(tmp_path / "slow", workflows.SLOW, "8", "1.0", env={"PARSL_REPRO_PROVENANCE_URL": url})
        wait_for(lambda: scalar(url, "SELECT count(*) FROM workflow") == 1, what="the run's record")
        run_id = scalar(url, "SELECT run_id FROM workflow")
        page.click(f"#runs a:has-text('{run_id[:8]}')", timeout=20_000)
        page.wait_for_url(f"**/run/{run_id}")
        page.wait_for_selector("#run-card-completed")
        page.evaluate("() => { window.__marker = 1; }")  # gone if the page were reloaded
        first, outcome = completed(page), page.inner_text("#run-card-outcome")
        assert first < 8 and outcome.startswith("running"), f"the run ended before its page opened: {outcome}"
        assert "live" in outcome
        page.wait_for_function(f"() => Number(document.querySelector('#run-card-completed').innerText) > {first}",
                               timeout=30_000)
        page.wait_for_function("() => document.querySelector('#run-card-outcome').innerText.startsWith('completed')",
                               timeout=60_000)
        settle(page)
        assert page.evaluate("() => window.__marker") == 1
        assert completed(page) == 8 and "live" not in page.inner_text("#run-card-outcome")
        assert "Ended" in page.inner_text("#run-record")  # the record has the run's end now
        # the figures were redrawn from the store as it grew
        page.wait_for_function("""() => {
            const data = document.querySelector('#run-progress .js-plotly-plot').data;
            const done = data.find(t => t.name === 'exec_done');
            return done && done.y[done.y.length - 1] === 8; }""", timeout=20_000)
        page.wait_for_function("""() => document.querySelector('#run-gantt .js-plotly-plot').data
            .reduce((n, t) => n + t.x.length, 0) === 8""", timeout=20_000)  # a bar per try
        # the run has ended: once its last drawing is in, no more questions to the server
        time.sleep(1.0)
        settle(page)
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url) if "_dash-update-component" in request.url
                else None)
        time.sleep(2.0)  # four refresh intervals of the test dashboard
        assert asked == []
    finally:
        log = server.stop()
        if process is not None:
            process.wait(timeout=60)
    assert process.returncode == 0
    assert "Traceback" not in log, log
