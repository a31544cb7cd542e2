"""The Resources page in Chromium, and its read function against the same store: the HTEX run's
node with the CPUs and memory the store has, its block's job states, a memory series that holds
the 64 MiB the last ``burn`` task allocated, busy workers against the node's two workers; the
threads run explaining why it has no samples; and clear messages for a killed run and an unknown
run. Also: stored times read as the same seconds on any SQLite, nodes past the series limit summed
as one line, and the page's reads of a run that ended kept until something new is recorded."""
from __future__ import annotations

import datetime
from collections import OrderedDict

import flask
import pytest
from sqlalchemy import select

from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.queries import RunNotFound
from parsl_repro.monitoring.read import resources as read_resources
from parsl_repro.monitoring.read.common import aware, seconds
from parsl_repro.monitoring.read.resources import Epoch, Grid, RunState, resources, split_usage
from parsl_repro.viz import context
from parsl_repro.viz.components import fmt_bytes
from parsl_repro.viz.pages import resources as page_resources
from parsl_repro.viz.pages.resources import figure_blocks, figure_memory, report_section, resources_section
from parsl_repro.viz.static import StaticRenderer
from tests.viz.conftest import figure_data, settle, store_rows, table_rows

MIB = 1 << 20


def trace(traces: list[dict], name: str) -> dict:
    return next(item for item in traces if item["name"] == name)


def open_resources(page, dashboard, run_id: str) -> None:
    page.goto(f"{dashboard.base}/run/{run_id}/resources")
    for part in ("usage", "workers", "top"):  # drawn by callbacks after the layout: usage beside workers, then top
        page.wait_for_selector(f"#resources-{part}", state="attached", timeout=30_000)
    settle(page)


# --- in the browser -----------------------------------------------------------------------------------
def test_the_htex_node_is_shown_with_the_cpus_memory_and_workers_the_store_has(sqlite_store, dashboard, page,
                                                                                engine):
    (hostname, cpus, memory, workers), = store_rows(
        engine, "SELECT hostname, cpu_count, total_memory, worker_count FROM node WHERE run_id = :r "
                "ORDER BY id DESC LIMIT 1", r=sqlite_store.htex)
    open_resources(page, dashboard, sqlite_store.htex)
    nodes = table_rows(page, "resources-nodes")
    assert len(nodes) == 1
    assert nodes[0]["hostname"] == hostname and nodes[0]["cpu_count"] == str(cpus)
    assert nodes[0]["total_memory"] == fmt_bytes(memory) and nodes[0]["worker_count"] == str(workers) == "2"
    assert nodes[0]["state"] == "left"  # the pool deregistered when the run ended
    assert nodes[0]["executor_label"] == "htex"  # the site it served
    assert page.inner_text("#resources-card-nodes") == "1"


def test_the_block_life_cycle_goes_from_pending_to_running(sqlite_store, dashboard, page, engine):
    recorded = [status for (status,) in store_rows(
        engine, "SELECT status FROM block WHERE run_id = :r ORDER BY timestamp", r=sqlite_store.htex)]
    open_resources(page, dashboard, sqlite_store.htex)
    blocks = table_rows(page, "resources-block-table")
    assert len(blocks) == 1 and blocks[0]["executor"] == "htex"
    assert blocks[0]["states"] == " → ".join(recorded)
    assert blocks[0]["states"].startswith("PENDING → RUNNING")
    (provider, host, digest), = store_rows(
        engine, "SELECT DISTINCT provider, host, script_sha256 FROM block WHERE run_id = :r", r=sqlite_store.htex)
    assert (blocks[0]["provider"], blocks[0]["host"]) == (provider, host) == ("LocalProvider local", "localhost")
    assert blocks[0]["script"] == digest[:12]
    drawn = {item["name"] for item in figure_data(page, "resources-blocks")}
    assert {"PENDING", "RUNNING"} <= drawn


def test_the_memory_series_holds_the_64_mib_the_last_burn_task_allocated(sqlite_store, dashboard, page):
    open_resources(page, dashboard, sqlite_store.htex)
    memory = trace(figure_data(page, "resources-memory"), "all tasks")
    assert memory["y"] and max(memory["y"]) >= 64  # MiB: burn(0.6, 64) held a 64 MiB bytearray
    cpu = trace(figure_data(page, "resources-cpu"), "all tasks")
    assert max(cpu["y"]) > 0
    assert "CPUs on the nodes up" in {item["name"] for item in figure_data(page, "resources-cpu")}
    heaviest = table_rows(page, "resources-top-rss")
    assert heaviest[0]["app"] == "burn" and heaviest[0]["task_id"] == "3"  # 16 * (3 + 1) MiB: the most
    href = page.get_attribute("#resources-top-rss tbody tr:first-child td[data-col=task_id] a", "href")
    assert href == f"/run/{sqlite_store.htex}/task/3"


def test_the_spread_of_tries_counts_each_sampled_try_in_its_bin(sqlite_store, dashboard, page, engine):
    """The CPU-time and memory histograms (Parsl's resource distributions) hold every sampled try
    once, each in the bin its own samples put it in (checked against the samples, in Python), and
    the page draws them."""
    data = resources(engine, sqlite_store.htex, parts=frozenset({"top"}))
    samples: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for task_id, try_id, user, system, rss in store_rows(
            engine, "SELECT task_id, try_id, psutil_process_time_user, psutil_process_time_system, "
                    "psutil_process_memory_resident FROM resource WHERE run_id = :r", r=sqlite_store.htex):
        samples.setdefault((task_id, try_id), []).append(((user or 0.0) + (system or 0.0), rss))
    per_try = {"cpu_time": [max(c for c, _ in s) - min(c for c, _ in s) for s in samples.values()],
               "peak_rss": [max(r for _, r in s) for s in samples.values()],
               "mean_rss": [sum(r for _, r in s) / len(s) for s in samples.values()]}
    assert set(data.distributions) == set(per_try) and len(samples) > 3
    for name, values in per_try.items():
        histogram = data.distributions[name]
        assert histogram.low == pytest.approx(min(values)) and histogram.total == len(values)
        expected = [0] * len(histogram.counts)
        for value in values:
            expected[min(int((value - histogram.low) / histogram.width + 1e-6), len(expected) - 1)] += 1
        assert histogram.counts == expected, name
    open_resources(page, dashboard, sqlite_store.htex)
    drawn = figure_data(page, "resources-spread")
    assert [sum(bars["y"]) for bars in drawn] == [len(samples)] * 3
    assert [bars["type"] for bars in drawn] == ["bar"] * 3


def test_worker_efficiency_shows_busy_workers_against_the_two_available(sqlite_store, dashboard, page):
    open_resources(page, dashboard, sqlite_store.htex)
    traces = figure_data(page, "resources-efficiency")
    available = trace(traces, "available workers")
    busy = trace(traces, "busy workers (tries running)")
    assert max(available["y"]) == 2
    # two burns at a time on two workers (a try's running time, sent by the worker, can precede by a few ms
    # the returned time the submit side recorded for the try before it)
    assert 1 < max(busy["y"]) <= 2.1
    assert "Workers were busy" in page.inner_text("#resources-efficiency-note")


def test_usage_split_per_node_and_per_block(sqlite_store, dashboard, page, engine):
    (hostname, block_id), = store_rows(engine, "SELECT DISTINCT hostname, block_id FROM try WHERE run_id = :r "
                                               "AND hostname IS NOT NULL", r=sqlite_store.htex)
    open_resources(page, dashboard, sqlite_store.htex)

    def drawn_with(graph_id: str, prefix: str) -> None:
        page.wait_for_function(f"() => {{ const g = document.querySelector('#{graph_id} .js-plotly-plot'); "
                               f"return !!(g && g.data && g.data.some(t => t.name.startsWith('{prefix}'))); }}",
                               timeout=20_000)

    page.click("#resources-split label:has-text('per node')")
    drawn_with("resources-cpu", "node ")
    drawn_with("resources-memory", "node ")
    assert [item["name"] for item in figure_data(page, "resources-memory")] == [f"node {hostname}"]
    page.click("#resources-split label:has-text('per block')")
    drawn_with("resources-cpu", "block ")
    drawn_with("resources-memory", "block ")
    assert [item["name"] for item in figure_data(page, "resources-cpu")] == [f"block {block_id}"]


def test_a_threads_run_says_why_it_has_no_samples(sqlite_store, dashboard, page):
    open_resources(page, dashboard, sqlite_store.first)
    said = page.inner_text("#resources-section")
    assert "This run has no resource samples" in said
    assert "MonitoringHub(resource_monitoring_interval=...)" in said and "threads executor" in said
    assert "workers are threads of the submitting process" in page.inner_text("#resources-efficiency-note")
    names = [item["name"] for item in figure_data(page, "resources-efficiency")]
    assert names == ["busy workers (tries running)"]  # no nodes: no available workers to draw
    assert page.locator("#resources-cpu").count() == 0


def test_a_killed_run_says_which_tries_never_returned(sqlite_store, dashboard, page, engine):
    (running,), = store_rows(engine, "SELECT count(task_try_time_running) FROM try WHERE run_id = :r",
                             r=sqlite_store.killed)
    open_resources(page, dashboard, sqlite_store.killed)
    said = page.inner_text("#resources-in-flight")
    assert said.startswith("6 tries never returned (the run ended without them")
    assert f"{running} recorded as running count as busy" in said
    busy = trace(figure_data(page, "resources-efficiency"), "busy workers (tries running)")
    assert (max(busy["y"]) > 0) == (running > 0)
    assert "This run has no resource samples" in page.inner_text("#resources-section")


def test_a_run_that_does_not_exist_is_a_message(dashboard, page):
    page.goto(f"{dashboard.base}/run/no-such-run/resources")
    settle(page)
    assert "There is no run 'no-such-run' in this store" in page.inner_text(".notice")


# --- the read function -------------------------------------------------------------------------------
def test_resources_of_the_htex_run_match_the_store(sqlite_store, engine):
    data = resources(engine, sqlite_store.htex, split=("node", "block"))
    (samples,), = store_rows(engine, "SELECT count(*) FROM resource WHERE run_id = :r", r=sqlite_store.htex)
    assert data.samples == samples > 0 and data.interval == pytest.approx(0.2)
    assert data.executor_kinds == ["HighThroughputExecutor"] and data.monitoring is True
    assert data.grid is not None and data.grid.count <= 151
    assert max(data.total.rss) >= 64 * MIB
    assert data.nodes.total == 1 and data.nodes.items[0]["worker_count"] == 2
    assert [status for status, _, _ in data.blocks[0].segments][:2] == ["PENDING", "RUNNING"]
    assert max(data.capacity.workers) == 2 and 0 < data.efficiency <= 1
    assert [usage.label for usage in data.split["node"].series] == [f"node {data.nodes.items[0]['hostname']}"]
    assert data.top_rss[0]["app"] == "burn" and data.top_rss[0]["peak_rss"] >= 64 * MIB
    assert {row["task_id"] for row in data.top_cpu} == {0, 1, 2, 3}  # crash died before a sample


def test_busy_workers_add_up_to_the_tries_running_time(sqlite_store, engine):
    """Spreading tries over time bins keeps their total: worker-seconds in, worker-seconds out."""
    for run_id in (sqlite_store.htex, sqlite_store.first):
        data = resources(engine, run_id)
        spans = store_rows(engine, "SELECT task_try_time_running, task_try_time_returned FROM try WHERE run_id = :r "
                                   "AND task_executor != '_parsl_internal' AND task_try_time_running IS NOT NULL",
                           r=run_id)
        expected = sum(seconds(_parse(start), _parse(end)) for start, end in spans)
        assert sum(data.busy) * data.grid.width == pytest.approx(expected, rel=0.01, abs=1e-3)


def _parse(value) -> datetime.datetime:
    return value if isinstance(value, datetime.datetime) else datetime.datetime.fromisoformat(str(value))


def test_a_threads_run_has_no_samples_and_says_why(sqlite_store, engine):
    data = resources(engine, sqlite_store.first)
    assert data.samples == 0 and data.total is None and data.capacity is None and data.efficiency is None
    assert data.executors == ["threads"]
    assert "threads executor" in data.why_no_samples()
    assert split_usage(engine, sqlite_store.first, "node")[1] is None


def test_an_unknown_run_raises_run_not_found(engine):
    with pytest.raises(RunNotFound):
        resources(engine, "no-such-run")


def test_grid_clamps_records_outside_the_run():
    grid = Grid(datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC), 0.4, 10)
    assert grid.index(-1.0) == 0 and grid.index(100.0) == 9 and grid.index(2.0) == 5 and grid.clamp(4.0) == 4


def test_the_section_is_built_without_a_server(sqlite_store, engine):
    data = resources(engine, sqlite_store.htex, split=("node", "block"))
    section = resources_section(data)
    assert section.id == "resources-section"
    assert figure_memory(data, "block").data[0].name == f"block {data.blocks[0].block_id}"
    assert {item.name for item in figure_blocks(data).data} >= {"PENDING", "RUNNING"}
    renderer = StaticRenderer()
    renderer.render(report_section(engine, sqlite_store.htex))
    assert renderer.figures == 9  # CPU and memory: all tasks, per node, per block; the spread; efficiency; blocks


def test_stored_times_read_as_the_same_seconds_with_or_without_unixepoch(sqlite_store, engine, monkeypatch):
    """SQLite 3.38 and later parse times with unixepoch(); older ones with strftime('%s'): the same
    seconds, to the microsecond, as Python reads the stored times."""
    y = m.Try
    query = (select(y.task_try_time_running, Epoch(y.task_try_time_running))
             .where(y.run_id == sqlite_store.htex, y.task_try_time_running.isnot(None)))
    with engine.connect() as conn:
        fast = conn.execute(query).all()
        monkeypatch.setattr(engine.dialect.dbapi, "sqlite_version_info", (3, 37, 2))
        slow = conn.execution_options(compiled_cache=None).execute(query).all()
    assert fast and len(fast) == len(slow)
    for (stored, by_unixepoch), (_, by_strftime) in zip(fast, slow, strict=True):
        assert by_unixepoch == pytest.approx(aware(stored).timestamp(), abs=1e-6)
        assert by_strftime == pytest.approx(by_unixepoch, abs=1e-6)


def test_nodes_past_the_series_limit_are_summed_as_one_line(sqlite_store, engine, monkeypatch):
    monkeypatch.setattr(read_resources, "SERIES", 0)  # the run's one node is then one too many
    total = resources(engine, sqlite_store.htex, parts=frozenset({"usage"})).total
    _, found = split_usage(engine, sqlite_store.htex, "node")
    assert found is not None and found.left_out == 1
    assert [usage.label for usage in found.series] == ["other nodes"]
    assert found.series[0].rss == pytest.approx(total.rss, rel=1e-6, abs=1)
    assert found.series[0].cpu == pytest.approx(total.cpu, rel=1e-6, abs=1e-3)


def test_reads_of_a_run_that_ended_are_kept_until_something_new_is_recorded(sqlite_store, engine, monkeypatch):
    app = flask.Flask(__name__)
    app.config.update({context.ENGINE_KEY: engine, context.URL_KEY: sqlite_store.url})
    monkeypatch.setattr(page_resources, "_kept", OrderedDict())
    reads: list[str] = []

    def read(_engine) -> list[str]:
        reads.append("read")
        return list(reads)

    with app.app_context():
        first = page_resources._kept_read(sqlite_store.htex, "part", read)
        assert page_resources._kept_read(sqlite_store.htex, "part", read) is first and len(reads) == 1
        page_resources._kept_read(sqlite_store.htex, "another part", read)
        assert len(reads) == 2
        token = page_resources.change_token(engine, sqlite_store.htex)
        monkeypatch.setattr(page_resources, "change_token", lambda *_: [*token, "a new record"])
        assert page_resources._kept_read(sqlite_store.htex, "part", read) is not first and len(reads) == 3
        monkeypatch.setattr(page_resources, "run_state", lambda *_: RunState("wf", "running", True))
        page_resources._kept_read(sqlite_store.htex, "part", read)
        page_resources._kept_read(sqlite_store.htex, "part", read)
        assert len(reads) == 5  # a live run is read afresh every time


def test_what_the_nodes_offered_counts_the_nodes_not_listed(sqlite_store, engine, monkeypatch):
    monkeypatch.setattr(read_resources, "NODE_LIMIT", 0)
    data = resources(engine, sqlite_store.htex, parts=frozenset({"workers"}))
    assert data.nodes.items == [] and data.nodes.total == 1
    assert max(data.capacity.workers) == 2 and 0 < data.efficiency <= 1
