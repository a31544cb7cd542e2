"""The Run overview page in Chromium, and the reads under it: the cards count what the store holds,
tasks per app match it, the Gantt draws one bar per try (or, past the threshold, busy time per lane
and bin, and single tries again once a zoom narrows the window), a click on a bar opens its task,
the record shows the script's digest, Python and a working link to the parent run, and a killed
run or a run id that does not exist is shown with a clear message, never a traceback."""
from __future__ import annotations

import datetime
import json

import pytest
from sqlalchemy import text

from parsl_repro.monitoring.engine import default_url, make_engine, open_for_reading, prepare_default_store
from parsl_repro.monitoring.queries import RunNotFound
from parsl_repro.monitoring.read import overview
from parsl_repro.viz.pages import run as run_page
from tests.viz.conftest import Dashboard, run_script, settle

# 2,100 tries: past the Gantt's threshold of 2,000. Run again with the checkpoints, 10 tasks: a run
# whose parent (the run it resumed) is in the store.
MANY = r'''
import sys
import parsl_repro as parsl
from parsl_repro import python_app
from parsl_repro.config import Config
from parsl_repro.executors import ThreadPoolExecutor
from parsl_repro.utils import get_all_checkpoints


@python_app(cache=True)
def tick(i):
    return i


@python_app
def tock(i):
    return -i


n = int(sys.argv[1])
resume = len(sys.argv) > 2
config = Config(executors=[ThreadPoolExecutor(max_threads=4, label="threads")], checkpoint_mode="task_exit",
                checkpoint_files=get_all_checkpoints() if resume else None)
with parsl.load(config):
    futures = [(tick if i % 3 else tock)(i) for i in range(n)]
    for future in futures:
        future.result()
print("done")
'''

DRAWN = """() => [...document.querySelectorAll('.js-plotly-plot')].length === 4 &&
    [...document.querySelectorAll('.js-plotly-plot')].every(g => g.data && g._fullLayout &&
        !(g.layout.annotations || []).some(a => a.text === 'Drawing...'))"""


def query(url: str, sql: str, **params) -> list[tuple]:
    engine = make_engine(url, writer=False)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def open_run(page, base: str, run_id: str) -> None:
    page.goto(f"{base}/run/{run_id}")
    settle(page)
    page.wait_for_function(DRAWN, timeout=20_000)


def figure(page, graph_id: str) -> list[dict]:
    """The traces drawn in a graph, as plotly holds them in the page."""
    return page.evaluate(f"""() => document.querySelector('#{graph_id} .js-plotly-plot').data.map(t => ({{
        type: t.type, name: t.name, x: t.x, y: t.y, z: t.z, customdata: t.customdata}}))""")


def card(page, key: str) -> str:
    return page.inner_text(f"#run-card-{key}")


def bars(traces: list[dict]) -> list[int]:
    """The task id of each bar of a Gantt drawn try by try (one horizontal bar per try)."""
    found = []
    for trace in traces:
        assert trace["type"] == "bar" and len(trace["x"]) == len(trace["customdata"])
        found += trace["customdata"]
    return found


@pytest.fixture(scope="module")
def many_store(tmp_path_factory):
    """A store with a run of 2,100 tries and a run that resumed it from its checkpoints."""
    root = tmp_path_factory.mktemp("viz-many")
    prepare_default_store(str(root / "runinfo"))
    url = default_url(str(root / "runinfo"))
    run_script(root / "many", MANY, "2100", env={"PARSL_REPRO_PROVENANCE_URL": url})
    run_script(root / "many", MANY, "10", "resume", env={"PARSL_REPRO_PROVENANCE_URL": url})
    big, resumed = (row[0] for row in query(url, "SELECT run_id FROM workflow ORDER BY time_began"))
    return url, big, resumed


@pytest.fixture(scope="module")
def many_dashboard(many_store, tmp_path_factory):
    server = Dashboard(many_store[0], tmp_path_factory.mktemp("many-dashboard") / "stderr.log")
    yield server
    log = server.stop()
    assert "Traceback" not in log, log


# --- the page ----------------------------------------------------------------------------------------
def test_cards_count_what_the_store_holds(sqlite_store, dashboard, page):
    run_id, url = sqlite_store.second, sqlite_store.url
    open_run(page, dashboard.base, run_id)
    states = dict(query(url, "SELECT task_status_name, count(*) FROM task WHERE run_id = :r GROUP BY 1", r=run_id))
    retries = query(url, "SELECT count(*) FROM try WHERE run_id = :r AND try_id > 0", r=run_id)[0][0]
    assert card(page, "outcome") == "failed"
    assert card(page, "tasks") == str(sum(states.values())) == "19"
    assert card(page, "completed") == str(states.get("exec_done", 0) + states.get("memo_done", 0))
    assert card(page, "failures") == str(states.get("failed", 0) + states.get("dep_fail", 0)) == "5"
    assert card(page, "retries") == str(retries) == "2"  # explode and noisy, retried once each
    assert card(page, "memo_hits") == str(states["memo_done"]) == "8"
    assert card(page, "in_flight") == "0"
    assert card(page, "duration").endswith(" s") and card(page, "started")
    for state, n in states.items():
        assert f"{state} {n}" in card(page, "states")
    assert page.locator(".notice.error").count() == 0


def test_tasks_per_app_match_the_store(sqlite_store, dashboard, page):
    run_id = sqlite_store.second
    open_run(page, dashboard.base, run_id)
    drawn = {(app, trace["name"]): n for trace in figure(page, "run-apps")
             for app, n in zip(trace["x"], trace["y"], strict=True) if n}
    stored = {(app, state): n for app, state, n in query(
        sqlite_store.url, "SELECT task_func_name, task_status_name, count(*) FROM task WHERE run_id = :r GROUP BY 1, 2",
        r=run_id)}
    assert drawn == stored
    assert drawn[("square", "memo_done")] == 8 and drawn[("total", "exec_done")] == 2
    assert drawn[("explode", "failed")] == 1 and drawn[("after", "dep_fail")] == 3


def test_progress_ends_with_every_task_in_its_final_state(sqlite_store, dashboard, page):
    run_id = sqlite_store.second
    open_run(page, dashboard.base, run_id)
    last = {trace["name"]: trace["y"][-1] for trace in figure(page, "run-progress")}
    stored = dict(query(sqlite_store.url, "SELECT task_status_name, count(*) FROM task WHERE run_id = :r GROUP BY 1",
                        r=run_id))
    assert {state: n for state, n in last.items() if n} == stored
    assert len(figure(page, "run-progress")[0]["x"]) <= overview.MAX_BINS


def test_the_gantt_draws_one_bar_per_try(sqlite_store, dashboard, page):
    run_id = sqlite_store.second
    open_run(page, dashboard.base, run_id)
    tries = query(sqlite_store.url, "SELECT task_id FROM try WHERE run_id = :r", r=run_id)
    drawn = bars(figure(page, "run-gantt"))
    assert len(drawn) == len(tries) == 10
    assert sorted(drawn) == sorted(task_id for (task_id,) in tries)
    names = {trace["name"] for trace in figure(page, "run-gantt")}
    assert {"total", "explode", "noisy", "fan"} <= names  # coloured by app: fan is the join app
    assert page.inner_text("#run-gantt-note").startswith("10 tries, one bar each")


def test_a_finished_run_seen_before_comes_with_its_figures(sqlite_store, dashboard, page):
    """The dashboard keeps a finished run's series: on a later visit the figures come with the page
    in its one answer (the figure callbacks have nothing to do), and they are the same figures."""
    run_id = sqlite_store.second
    graphs = ("run-progress", "run-gantt", "run-apps", "run-running")
    open_run(page, dashboard.base, run_id)
    first = {graph: figure(page, graph) for graph in graphs}
    note = page.inner_text("#run-gantt-note")
    answers: list[int] = []
    page.on("response", lambda r: answers.append(r.status) if "_dash-update-component" in r.url else None)
    open_run(page, dashboard.base, run_id)
    assert {graph: figure(page, graph) for graph in graphs} == first
    assert page.inner_text("#run-gantt-note") == note
    assert sorted(answers) == [200, 204, 204]  # the page; the two figure callbacks prevented


def test_the_record_shows_the_script_digest_python_and_packages(sqlite_store, dashboard, page):
    run_id = sqlite_store.second
    open_run(page, dashboard.base, run_id)
    (digest, python, packages, cwd), = query(
        sqlite_store.url, "SELECT script_sha256, python_version, e.packages, cwd FROM workflow w "
                          "JOIN environment e ON e.packages_digest = w.packages_digest WHERE run_id = :r", r=run_id)
    record = page.inner_text("#run-record")
    assert digest in record and len(digest) == 64 and python in record and cwd in record
    assert f"{len(json.loads(packages))} packages" in record
    page.click("#run-packages-details summary")
    assert "dash==" in page.inner_text("#run-packages")
    assert "Config(" in page.inner_text("#run-config")
    assert page.locator("#run-record a").count() == 0  # no parent run: no link to nothing


def test_the_parent_run_link_opens_the_parent(many_store, many_dashboard, page):
    url, big, resumed = many_store
    open_run(page, many_dashboard.base, resumed)
    links = page.eval_on_selector_all("#run-record a", "links => links.map(a => a.getAttribute('href'))")
    assert links == [f"/run/{big}"]
    page.click("#run-parent")
    page.wait_for_url(f"**/run/{big}")
    page.wait_for_function(f"() => document.querySelector('.subtitle').innerText.includes('{big}')")
    settle(page)
    page.wait_for_function(DRAWN, timeout=20_000)
    assert page.locator(".notice.error").count() == 0 and "2,100 tries" in page.inner_text("#run-gantt-note")


def test_a_run_that_does_not_exist_says_so(dashboard, page):
    page.goto(dashboard.base + "/run/no-such-run")
    settle(page)
    assert "There is no run 'no-such-run'" in page.inner_text(".notice.error")
    assert page.locator("#run-tabs").is_visible()


def test_a_killed_run_shows_its_tries_in_flight(sqlite_store, dashboard, page):
    open_run(page, dashboard.base, sqlite_store.killed)
    assert card(page, "outcome") == "killed" and card(page, "in_flight") == "6"
    assert "until its last record" in card(page, "duration")
    assert "6 tries are in flight" in page.inner_text("#run-gantt-in-flight")
    traces = figure(page, "run-gantt")
    assert len(bars(traces)) == 6 and all(trace["name"].endswith("(in flight)") for trace in traces)
    assert page.locator(".notice.error").count() == 0


def test_a_click_on_a_bar_opens_its_task(sqlite_store, dashboard, page):
    run_id = sqlite_store.htex
    open_run(page, dashboard.base, run_id)
    page.eval_on_selector("#run-gantt", "graph => graph.scrollIntoView()")
    target = page.evaluate("""() => {
        const gd = document.querySelector('#run-gantt .js-plotly-plot');
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
        let best = null;
        for (const t of gd.data) for (let i = 0; i < t.x.length; i++) {  // a bar: from base, x ms long
            const start = xa.l2p(xa.d2l(t.base[i])), end = xa.l2p(xa.d2l(t.base[i]) + t.x[i]);
            if (!best || end - start > best.length) best = {length: end - start, task: t.customdata[i],
                x: box.left + xa._offset + (start + end) / 2, y: box.top + ya._offset + ya.d2p(t.y[i])};
        }
        return best;
    }""")
    assert target["length"] > 50  # a burn task: a bar wide enough to click
    page.mouse.move(target["x"], target["y"])
    page.mouse.click(target["x"], target["y"])
    page.wait_for_url(f"**/run/{run_id}/task/{target['task']}", timeout=10_000)
    settle(page)


def test_past_the_threshold_the_gantt_bins_and_a_zoom_draws_single_tries(many_store, many_dashboard, page):
    url, big, _ = many_store
    open_run(page, many_dashboard.base, big)
    (heatmap,) = figure(page, "run-gantt")
    assert heatmap["type"] == "heatmap" and "2,100 tries" in page.inner_text("#run-gantt-note")
    assert len(heatmap["y"]) == 1 and heatmap["y"][0].startswith("threads")  # threads of one process: one lane
    # each cell is the read layer's busy time for that lane and bin (rounded to 0.001), which the
    # reads' own tests check against each try's overlap with each bin
    reader = open_for_reading(url)
    try:
        data = overview.gantt(reader, big)
    finally:
        reader.dispose()
    assert data.kind == "binned" and len(heatmap["x"]) == len(data.bin_starts)
    assert heatmap["z"][0] == pytest.approx(data.busy[0], abs=0.0006)
    assert 0 < max(heatmap["z"][0])
    # zoom to a tenth of the run: few enough tries to draw one by one
    low, high = heatmap["x"][100], heatmap["x"][130]
    page.evaluate(f"""() => Plotly.relayout(document.querySelector('#run-gantt .js-plotly-plot'),
                                            {{'xaxis.range': ['{low}', '{high}']}})""")
    page.wait_for_function("() => document.querySelector('#run-gantt .js-plotly-plot').data[0].type === 'bar'",
                           timeout=20_000)
    settle(page)

    def utc(local: str) -> str:
        return datetime.datetime.fromisoformat(local).astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    expected = query(url, "SELECT count(*) FROM try WHERE run_id = :r AND "
                          "coalesce(task_try_time_running, task_try_time_launched) <= :high AND "
                          "(task_try_time_returned IS NULL OR task_try_time_returned >= :low)",
                     r=big, low=utc(low), high=utc(high))[0][0]
    assert 0 < expected <= overview.GANTT_MAX_TRIES
    assert len(bars(figure(page, "run-gantt"))) == expected
    assert page.inner_text("#run-gantt-note").startswith(f"{expected:,} tr")
    # and back out: busy time per bin again
    page.evaluate("() => Plotly.relayout(document.querySelector('#run-gantt .js-plotly-plot'), "
                  "{'xaxis.autorange': true})")
    page.wait_for_function("() => document.querySelector('#run-gantt .js-plotly-plot').data[0].type === 'heatmap'",
                           timeout=20_000)


# --- the reads ---------------------------------------------------------------------------------------
def test_header_counts_tries_retries_and_tries_in_flight(sqlite_store, engine):
    header = overview.overview_header(engine, sqlite_store.second)
    assert (header["tasks"], header["completed"], header["failures"], header["retries"]) == (19, 14, 5, 2)
    assert header["tries"] == 10 and header["in_flight"] == 0 and header["memo_hits"] == 8
    killed = overview.overview_header(engine, sqlite_store.killed)
    assert killed["outcome"] == "killed" and killed["in_flight"] == 6 and killed["duration"] is None
    assert killed["span"] is not None and killed["time_last"] >= killed["time_began"]


def test_progress_counts_add_up_in_every_bin(sqlite_store, engine):
    data = overview.progress(engine, sqlite_store.first, bins=50)
    assert len(data.times) == 50 and data.times == sorted(data.times)
    totals = [sum(data.counts[state][i] for state in data.states) for i in range(50)]
    assert totals == sorted(totals) and totals[-1] == 19  # tasks are only ever added
    assert all(n >= 0 for series in data.counts.values() for n in series)
    assert data.states.index("pending") < data.states.index("launched") < data.states.index("exec_done")


def test_gantt_lists_each_try_below_the_threshold(sqlite_store, engine):
    data = overview.gantt(engine, sqlite_store.htex)
    assert data.kind == "tries" and data.total == len(data.tries) == 5
    assert all(item["start"] <= item["end"] for item in data.tries)
    assert {item["app"] for item in data.tries} == {"burn", "crash"}
    assert any(lane.startswith("htex · block 0 · ") for lane in data.lanes)
    assert set(data.lanes) == {item["lane"] for item in data.tries}


def busy_by_brute_force(tries: list[dict], binned: overview.Gantt) -> dict[str, list[float]]:
    """Each lane's mean tries running per bin, from each try's overlap with each bin."""
    start, width = binned.bin_starts[0].timestamp(), binned.bin_seconds
    busy = {lane: [0.0] * len(binned.bin_starts) for lane in binned.lanes}
    for item in tries:
        lane = item["lane"].rsplit(" #", 1)[0]  # rows of one lane (tries that overlap) are one lane when binned
        began, ended = item["start"].timestamp() - start, item["end"].timestamp() - start
        for i in range(len(binned.bin_starts)):
            overlap = min(ended, (i + 1) * width) - max(began, i * width)
            busy[lane][i] += max(0.0, overlap) / width
    return busy


def test_gantt_past_the_threshold_bins_busy_time_exactly(sqlite_store, engine):
    each = overview.gantt(engine, sqlite_store.htex)
    binned = overview.gantt(engine, sqlite_store.htex, max_tries=2, bins=40)
    assert binned.kind == "binned" and binned.total == 5 and len(binned.bin_starts) == 40
    busy = sum(map(sum, binned.busy)) * binned.bin_seconds
    worked = sum((item["end"] - item["start"]).total_seconds() for item in each.tries)
    assert busy == pytest.approx(worked, abs=1e-4)
    expected = busy_by_brute_force(each.tries, binned)
    for lane, series in zip(binned.lanes, binned.busy, strict=True):
        assert series == pytest.approx(expected[lane], abs=1e-4), lane


def test_tries_running_per_app_are_exact_and_drawn(sqlite_store, engine, dashboard, page):
    """Each app's mean tries running per bin equals each of its tries' overlap with each bin."""
    each = overview.gantt(engine, sqlite_store.htex)
    running = overview.apps_running(engine, sqlite_store.htex, bins=40)
    start, width = running.bin_starts[0].timestamp(), running.bin_seconds
    expected: dict[str, list[float]] = {}
    for item in each.tries:
        series = expected.setdefault(item["app"], [0.0] * 40)
        began, ended = item["start"].timestamp() - start, item["end"].timestamp() - start
        for i in range(40):
            series[i] += max(0.0, min(ended, (i + 1) * width) - max(began, i * width)) / width
    assert set(running.apps) == set(expected)
    for app, series in running.apps.items():
        assert series == pytest.approx(expected[app], abs=1e-4), app
    open_run(page, dashboard.base, sqlite_store.htex)
    drawn = figure(page, "run-running")
    assert {trace["name"] for trace in drawn} == set(expected)
    assert sum(sum(trace["y"]) for trace in drawn) * overview.apps_running(engine, sqlite_store.htex).bin_seconds \
        == pytest.approx(sum((item["end"] - item["start"]).total_seconds() for item in each.tries), rel=1e-3)


def test_gantt_binned_busy_time_of_many_overlapping_tries_is_exact(many_store):
    url, big, _ = many_store
    reader = open_for_reading(url)
    try:
        each = overview.gantt(reader, big, max_tries=5000)
        binned = overview.gantt(reader, big)
    finally:
        reader.dispose()
    assert each.kind == "tries" and each.total == binned.total == 2100 and binned.kind == "binned"
    assert len({item["lane"] for item in each.tries}) >= 2  # four threads: rows of one lane
    expected = busy_by_brute_force(each.tries, binned)
    assert binned.busy[0] == pytest.approx(expected[binned.lanes[0]], abs=1e-6)


def test_gantt_of_a_zoomed_window_reads_only_that_window(sqlite_store, engine):
    whole = overview.gantt(engine, sqlite_store.htex)
    middle = sorted(whole.tries, key=lambda item: item["start"])[2]
    window = (middle["start"] + datetime.timedelta(milliseconds=1), middle["end"] - datetime.timedelta(milliseconds=1))
    zoomed = overview.gantt(engine, sqlite_store.htex, window)
    expected = {(item["task_id"], item["try_id"]) for item in whole.tries
                if item["start"] <= window[1] and item["end"] >= window[0]}
    assert zoomed.kind == "tries" and zoomed.window == window
    assert {(item["task_id"], item["try_id"]) for item in zoomed.tries} == expected
    binned = overview.gantt(engine, sqlite_store.htex, window, max_tries=len(expected) - 1, bins=10)
    assert binned.kind == "binned" and binned.total == len(expected) and binned.bin_starts[0] == window[0]
    clipped = sum((min(item["end"], window[1]) - max(item["start"], window[0])).total_seconds()
                  for item in whole.tries if (item["task_id"], item["try_id"]) in expected)
    assert sum(map(sum, binned.busy)) * binned.bin_seconds == pytest.approx(clipped, abs=1e-4)
    outside = overview.gantt(engine, sqlite_store.htex, (whole.span.end + datetime.timedelta(hours=1),
                                                        whole.span.end + datetime.timedelta(hours=2)))
    assert outside.window is None and outside.kind == "tries"  # nothing there: the whole run instead


def test_gantt_draws_tries_in_flight_to_the_last_record(sqlite_store, engine):
    data = overview.gantt(engine, sqlite_store.killed)
    assert data.kind == "tries" and data.in_flight == 6 == len(data.tries)
    assert all(item["in_flight"] and item["end"] == max(item["start"], data.span.end) for item in data.tries)
    assert len(set(data.lanes)) == 6  # tries that may still run never share a row
    binned = overview.gantt(engine, sqlite_store.killed, max_tries=1)
    assert binned.kind == "binned" and binned.total == 6 and binned.in_flight == 6


def test_app_counts_and_the_record(sqlite_store, engine):
    apps = overview.app_counts(engine, sqlite_store.second, limit=2)
    assert [item["app"] for item in apps.items] == ["square", "after"] and apps.more == 7
    record = overview.run_record(engine, sqlite_store.second)
    assert record["argv"] == ["wf.py"] and record["packages"] and record["parent_in_store"] is False
    assert len(record["script_sha256"]) == 64


def test_the_reads_bin_time_in_sql_on_postgresql_too(postgres_store):
    engine = open_for_reading(postgres_store.url)
    try:
        run_id = postgres_store.second
        header = overview.overview_header(engine, run_id)
        assert (header["tasks"], header["completed"], header["failures"], header["retries"]) == (19, 14, 5, 2)
        data = overview.progress(engine, run_id, bins=50)
        assert {state: series[-1] for state, series in data.counts.items() if series[-1]} == header["states"]
        each = overview.gantt(engine, run_id)
        binned = overview.gantt(engine, run_id, max_tries=2, bins=20)
        assert each.kind == "tries" and binned.kind == "binned" and binned.total == each.total == 10
        worked = sum((item["end"] - item["start"]).total_seconds() for item in each.tries)
        assert sum(map(sum, binned.busy)) * binned.bin_seconds == pytest.approx(worked, abs=1e-4)
        # a window that two tries overlap for certain (the first two to start; the middle try alone
        # may overlap no other, on a fast machine): past max_tries=1, so binned, from the window's start
        first, second = sorted(each.tries, key=lambda item: item["start"])[:2]
        window = (first["start"], max(second["start"], first["end"]) + datetime.timedelta(microseconds=1))
        zoomed = overview.gantt(engine, run_id, window, max_tries=1, bins=5)
        assert zoomed.kind == "binned" and zoomed.bin_starts[0] == first["start"] and zoomed.total >= 2
        assert overview.app_counts(engine, run_id).items[0] == {"app": "square", "total": 8,
                                                                 "states": {"memo_done": 8}}
        assert len(overview.run_record(engine, run_id)["script_sha256"]) == 64
    finally:
        engine.dispose()


def test_a_run_that_does_not_exist_raises_run_not_found(engine):
    for read in (overview.overview_header, overview.progress, overview.gantt, overview.app_counts,
                 overview.run_record):
        with pytest.raises(RunNotFound, match="no-such-run"):
            read(engine, "no-such-run")


def test_the_builders_escape_the_stores_text():
    data = overview.Gantt("tries", overview.Span(datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
                                                 datetime.datetime(2026, 1, 1, 0, 1, tzinfo=datetime.UTC)),
                          total=1, lanes=["<b>lane</b>"],
                          tries=[{"task_id": 1, "try_id": 0, "app": "<script>x</script>", "lane": "<b>lane</b>",
                                  "start": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
                                  "end": datetime.datetime(2026, 1, 1, 0, 0, 5, tzinfo=datetime.UTC),
                                  "launched": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC), "running": None,
                                  "returned": datetime.datetime(2026, 1, 1, 0, 0, 5, tzinfo=datetime.UTC),
                                  "in_flight": False}])
    drawn = run_page.figure_gantt(data).to_plotly_json()
    text_of = json.dumps(drawn)
    assert "<script>" not in text_of and "<b>lane" not in text_of and "&lt;script&gt;" in text_of
