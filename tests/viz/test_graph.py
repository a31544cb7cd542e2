"""The Task graph page in Chromium and its read function: every task coloured by its state, a failed
task's chain highlighted back to the first failure, a large run collapsed by app with weighted
edges, an app or a task's neighbourhood expanded, clicks that open a task or expand an app, and
clear messages for a run, task or parameter that does not exist."""
from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import text

from parsl_repro.monitoring.engine import open_for_reading
from parsl_repro.monitoring.read.graph import GraphData, task_graph
from parsl_repro.viz.pages.graph import figure_graph, layered_layout
from tests.viz.conftest import Dashboard, run_script, settle

WIDE = r'''
import parsl_repro as parsl
from parsl_repro import python_app
from parsl_repro.config import Config
from parsl_repro.executors import ThreadPoolExecutor


@python_app
def square(x):
    return x * x


@python_app
def add(a, b):
    return a + b


@python_app
def check(i, value):
    if i % 10 == 3:
        raise ValueError(f"check {i} rejected {value}")
    return value


@python_app
def downstream(value):
    return value


with parsl.load(Config(executors=[ThreadPoolExecutor(max_threads=4)])):
    squares = [square(i) for i in range(200)]
    sums = [add(squares[i], squares[i + 1]) for i in range(0, 200, 2)]
    checks = [check(i, s) for i, s in enumerate(sums)]
    futures = [downstream(c) for c in checks]
    for future in futures:
        try:
            future.result()
        except Exception:
            pass
print("done")
'''
"""500 tasks, more than the default threshold: 200 squares, 100 adds of two squares each, 100
checks of which 10 fail, and 100 downstream tasks of which 10 never run."""


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """A store holding one run of WIDE, and a dashboard on it."""
    root = tmp_path_factory.mktemp("graph-wide")
    url = f"sqlite:///{root / 'provenance.db'}"
    run_script(root / "wide", WIDE, env={"PARSL_REPRO_PROVENANCE_URL": url})
    engine = open_for_reading(url)
    with engine.connect() as conn:
        run_id = conn.execute(text("SELECT run_id FROM workflow")).scalar_one()
        dependencies = conn.execute(text("SELECT count(*) FROM dependency WHERE run_id = :r"), {"r": run_id}).scalar()
    server = Dashboard(url, root / "dashboard.log")
    yield {"url": url, "engine": engine, "run_id": run_id, "dependencies": dependencies, "dashboard": server}
    err = server.stop()
    engine.dispose()
    assert "Traceback" not in err, err


def nodes(graph: GraphData) -> dict[str, object]:
    return {node.key: node for node in graph.nodes}


def dependency_weight(graph: GraphData) -> int:
    return sum(edge.weight for edge in graph.edges if edge.kind != "file")


# --- the read function -------------------------------------------------------------------------------
def test_small_run_is_drawn_task_by_task_with_its_failure_chain(sqlite_store, first_run):
    engine, ids = first_run
    graph = task_graph(engine, sqlite_store.first)
    assert not graph.collapsed and graph.total_tasks == 19 and graph.drawn_tasks == 19
    by_key = nodes(graph)
    explode, noisy = ids["explode"][0], ids["noisy"][0]
    assert by_key[f"task:{explode}"].state == "failed" and by_key[f"task:{noisy}"].state == "failed"
    assert {by_key[f"task:{i}"].state for i in ids["after"]} == {"dep_fail"}
    assert by_key[f"task:{ids['write'][0]}"].state == "exec_done"
    assert sum(1 for i in ids["square"] if by_key[f"task:{i}"].state == "memo_done") == 3
    firsts = {node.key for node in graph.nodes if node.first_failures}
    assert firsts == {f"task:{explode}", f"task:{noisy}"}
    failing = {(edge.source, edge.target) for edge in graph.edges if edge.failing}
    first_after, second_after, third_after = ids["after"]
    assert failing == {(f"task:{explode}", f"task:{first_after}"), (f"task:{explode}", f"task:{second_after}"),
                       (f"task:{second_after}", f"task:{third_after}")}
    # the file hello.txt sits between the task that wrote it and the one that read it
    files = [node for node in graph.nodes if node.kind == "file"]
    assert [node.label for node in files] == ["hello.txt"]
    file_edges = {(edge.source, edge.target) for edge in graph.edges if edge.kind == "file"}
    assert file_edges == {(f"task:{ids['write'][0]}", files[0].key), (files[0].key, f"task:{ids['count_chars'][0]}")}


def test_past_the_threshold_the_graph_collapses_by_app_with_weighted_edges(sqlite_store, first_run):
    engine, ids = first_run
    graph = task_graph(engine, sqlite_store.first, threshold=5)
    assert graph.collapsed and graph.drawn_tasks == 0
    by_key = nodes(graph)
    assert by_key["app:square"].counts == {"exec_done": 5, "memo_done": 3}
    assert by_key["app:after"].counts == {"dep_fail": 3} and by_key["app:after"].state == "dep_fail"
    assert by_key["app:explode"].state == "failed" and by_key["app:explode"].first_failures == 1
    assert "1 dependencies between its own tasks" in by_key["app:after"].detail  # after(after(...))
    edges = {(edge.source, edge.target): edge for edge in graph.edges}
    assert edges[("app:explode", "app:after")].weight == 2 and edges[("app:explode", "app:after")].failing == 2
    assert edges[("app:square", "app:total")].weight == 8 and edges[("app:square", "app:total")].failing == 0
    assert ("app:after", "app:after") not in edges  # counted in the node instead
    assert sum(node.size for node in graph.nodes) == 19


def test_a_selected_task_is_expanded_with_its_chain_back_to_the_first_failure(sqlite_store, first_run):
    engine, ids = first_run
    last_after = ids["after"][-1]  # after(after(explode)): two steps from explode
    graph = task_graph(engine, sqlite_store.first, task=last_after, threshold=5, depth=1)
    by_key = nodes(graph)
    drawn = {node.task_id for node in graph.nodes if node.kind == "task"}
    assert drawn == {last_after, ids["after"][1], ids["explode"][0]}  # depth 1, plus the chain to explode
    assert by_key[f"task:{last_after}"].focus
    assert by_key[f"task:{ids['explode'][0]}"].first_failures == 1
    assert "app:explode" not in by_key and by_key["app:after"].counts == {"dep_fail": 1}
    assert {(e.source, e.target) for e in graph.edges if e.failing} == {
        (f"task:{ids['explode'][0]}", f"task:{ids['after'][1]}"), (f"task:{ids['after'][1]}", f"task:{last_after}"),
        (f"task:{ids['explode'][0]}", "app:after")}
    assert sum(node.size for node in graph.nodes) == 19


def test_a_missing_task_or_app_is_reported_and_the_run_still_drawn(sqlite_store, first_run):
    engine, _ = first_run
    graph = task_graph(engine, sqlite_store.first, task=99_999)
    assert graph.problem == "This run has no task 99999: showing the whole run." and graph.drawn_tasks == 19
    graph = task_graph(engine, sqlite_store.first, app="nope", threshold=5)
    assert "no app 'nope'" in (graph.problem or "") and graph.drawn_tasks == 0


def test_every_dependency_is_counted_once_however_the_graph_is_cut(wide):
    engine, run_id = wide["engine"], wide["run_id"]
    assert wide["dependencies"] == 200 + 100 + 100
    collapsed = task_graph(engine, run_id)
    assert collapsed.collapsed and {node.key for node in collapsed.nodes} == {
        "app:square", "app:add", "app:check", "app:downstream"}
    edges = {(edge.source, edge.target): (edge.weight, edge.failing) for edge in collapsed.edges}
    assert edges == {("app:square", "app:add"): (200, 0), ("app:add", "app:check"): (100, 0),
                     ("app:check", "app:downstream"): (100, 10)}
    assert nodes(collapsed)["app:check"].counts == {"exec_done": 90, "failed": 10}
    for graph in (task_graph(engine, run_id, app="check"), task_graph(engine, run_id, app="square", threshold=50),
                  task_graph(engine, run_id, task=150), task_graph(engine, run_id, task=0, depth=3)):
        assert dependency_weight(graph) == 400, graph.notes
        assert sum(node.size for node in graph.nodes) == 500
        assert sum(edge.failing for edge in graph.edges) == 10
    expanded = task_graph(engine, run_id, app="square", threshold=50)
    assert expanded.drawn_tasks == 50 and nodes(expanded)["app:square"].counts == {"exec_done": 150}
    assert any("first 50 tasks of square" in note for note in expanded.notes)


def test_layers_follow_the_longest_path_and_cycles_do_not_hang():
    positions = layered_layout(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("a", "c"), ("d", "c")])
    assert {key: x for key, (x, _) in positions.items()} == {"a": 0, "b": 1, "c": 2, "d": 0}
    cycle = layered_layout(["x", "y", "z"], [("x", "y"), ("y", "z"), ("z", "x"), ("y", "y")])
    assert sorted(x for x, _ in cycle.values()) == [0, 1, 2]


def test_the_figure_is_bounded_and_names_its_traces_by_state(sqlite_store, first_run):
    engine, ids = first_run
    figure = figure_graph(task_graph(engine, sqlite_store.first))
    by_name = {trace.name: trace for trace in figure.data}
    assert set(by_name["failed"].customdata) == {f"task:{ids['explode'][0]}", f"task:{ids['noisy'][0]}"}
    assert all(trace.type == "scatter" for trace in figure.data)  # small: SVG draws faster than WebGL
    assert None in by_name["failure chain"].x  # one trace for every failing edge, None between them


# --- in the browser ----------------------------------------------------------------------------------
FIGURE = "document.querySelector('#graph-figure .js-plotly-plot')"


def figure_data(page) -> dict[str, dict]:
    """The drawn figure's traces by name (read from the plotly div, once it is drawn)."""
    page.wait_for_function(f"() => {{ const g = {FIGURE}; return g && g.data && g._fullLayout "
                           f"&& g._fullLayout.xaxis && g.querySelector('.main-svg'); }}", timeout=20_000)
    return page.evaluate(f"""() => Object.fromEntries({FIGURE}.data.map(t => [t.name, {{
        customdata: t.customdata || [], hovertext: t.hovertext || [], x: t.x, y: t.y, mode: t.mode}}]))""")


def click_node(page, key: str) -> None:
    """Click the node whose ``customdata`` is ``key`` where plotly drew it."""
    point = page.evaluate(f"""key => {{
        const g = {FIGURE};
        for (const t of g._fullData) {{
            const i = (t.customdata || []).indexOf(key);
            if (i < 0) continue;
            const xa = g._fullLayout.xaxis, ya = g._fullLayout.yaxis, box = g.getBoundingClientRect();
            return {{x: box.left + xa._offset + xa.d2p(t.x[i]), y: box.top + ya._offset + ya.d2p(t.y[i])}};
        }}
        return null;
    }}""", key)
    assert point, f"no node {key} in the figure"
    page.mouse.move(point["x"] + 2, point["y"] + 2)
    page.mouse.click(point["x"], point["y"])


def test_graph_page_shows_every_task_in_its_state_and_the_failed_chain(sqlite_store, first_run, dashboard, page):
    _, ids = first_run
    page.goto(f"{dashboard.base}/run/{sqlite_store.first}/graph")
    settle(page)
    traces = figure_data(page)
    explode, noisy = f"task:{ids['explode'][0]}", f"task:{ids['noisy'][0]}"
    assert set(traces["failed"]["customdata"]) == {explode, noisy}
    assert set(traces["dep_fail"]["customdata"]) == {f"task:{i}" for i in ids["after"]}
    assert len(traces["memo_done"]["customdata"]) == 3
    assert f"task:{ids['write'][0]}" in traces["exec_done"]["customdata"]
    assert set(traces["first failure"]["customdata"]) == {explode, noisy}
    assert sum(1 for x in traces["failure chain"]["x"] if x is None) == 3  # explode->after twice, after->after
    assert traces["files"]["customdata"] and "hello.txt" in traces["files"]["hovertext"][0]
    hover = traces["failed"]["hovertext"][traces["failed"]["customdata"].index(explode)]
    assert "ValueError: bad value 7: the input was rejected" in hover
    assert "All 19 tasks, task by task" in page.inner_text("#graph-summary")


def test_a_click_on_a_task_opens_its_page(sqlite_store, first_run, dashboard, page):
    _, ids = first_run
    page.goto(f"{dashboard.base}/run/{sqlite_store.first}/graph")
    settle(page)
    figure_data(page)
    click_node(page, f"task:{ids['explode'][0]}")
    page.wait_for_url(f"**/run/{sqlite_store.first}/task/{ids['explode'][0]}")


def test_task_query_expands_around_the_task_with_the_rest_collapsed(sqlite_store, first_run, dashboard, page):
    _, ids = first_run
    last_after = ids["after"][-1]
    page.goto(f"{dashboard.base}/run/{sqlite_store.first}/graph?task={last_after}&threshold=5")
    settle(page)
    traces = figure_data(page)
    assert traces["selected task"]["customdata"] == [f"task:{last_after}"]
    assert set(traces["dep_fail"]["customdata"]) == {f"task:{i}" for i in ids["after"][1:]}
    assert traces["failed"]["customdata"] == [f"task:{ids['explode'][0]}"]
    assert "app:square" in traces["exec_done (apps)"]["customdata"]
    assert "app:noisy" in traces["failed (apps)"]["customdata"]
    assert f"Task {last_after} and its neighbours" in page.inner_text("#graph-summary")


def test_a_large_run_is_collapsed_and_a_click_on_an_app_expands_it(wide, page):
    base = f"{wide['dashboard'].base}/run/{wide['run_id']}/graph"
    page.goto(base)
    settle(page)
    traces = figure_data(page)
    assert set(traces["exec_done (apps)"]["customdata"]) == {"app:square", "app:add"}
    assert traces["failed (apps)"]["customdata"] == ["app:check"]
    assert traces["dep_fail (apps)"]["customdata"] == ["app:downstream"]
    check_hover = traces["failed (apps)"]["hovertext"][0]
    assert "app check: 100 tasks" in check_hover and "exec_done: 90" in check_hover and "failed: 10" in check_hover
    assert traces["first failure"]["customdata"] == ["app:check"]
    assert "500 tasks, more than 300: collapsed into 4 app nodes" in page.inner_text("#graph-summary")
    click_node(page, "app:check")
    page.wait_for_url(lambda url: url.endswith("/graph?app=check"))
    page.wait_for_function(f"() => {FIGURE} && {FIGURE}.data.some(t => t.name === 'failed' "
                           f"&& t.customdata.length === 10)", timeout=20_000)
    traces = figure_data(page)
    assert len(traces["exec_done"]["customdata"]) == 90 and len(traces["failed"]["customdata"]) == 10
    assert set(traces["exec_done (apps)"]["customdata"]) == {"app:square", "app:add"}
    assert "The tasks of check are drawn one by one" in page.inner_text("#graph-summary")


def test_expanding_around_a_dependency_failure_draws_its_first_failure(wide, page):
    engine = wide["engine"]
    with engine.connect() as conn:
        victim = conn.execute(text("SELECT min(task_id) FROM task WHERE run_id = :r AND task_status_name = 'dep_fail'"),
                              {"r": wide["run_id"]}).scalar()
    page.goto(f"{wide['dashboard'].base}/run/{wide['run_id']}/graph")
    settle(page)
    figure_data(page)
    page.fill("#graph-task", str(victim))
    page.click("#graph-expand")
    page.wait_for_url(lambda url: url.endswith(f"/graph?task={victim}"))
    page.wait_for_function(f"() => {FIGURE} && {FIGURE}.data.some(t => t.name === 'selected task')", timeout=20_000)
    traces = figure_data(page)
    assert traces["selected task"]["customdata"] == [f"task:{victim}"]
    failed_check = traces["failed"]["customdata"]
    assert len(failed_check) == 1 and failed_check[0] in traces["first failure"]["customdata"]
    assert "app:check" in traces["first failure"]["customdata"]  # the other nine checks that failed
    # two failing edges: the failed check to the selected task, and the other checks to their downstream tasks
    assert len(traces["failure chain"]["x"]) == 6


def test_bad_input_shows_a_message(sqlite_store, dashboard, page):
    page.goto(f"{dashboard.base}/run/no-such-run/graph")
    settle(page)
    assert "There is no run 'no-such-run'" in page.inner_text(".notice")
    page.goto(f"{dashboard.base}/run/{sqlite_store.first}/graph?task=abc&threshold=0")
    settle(page)
    problems = page.inner_text("#graph-problems")
    assert "The task 'abc' is not a number" in problems and "threshold must be from 1" in problems
    page.goto(f"{dashboard.base}/run/{sqlite_store.first}/graph?task=99999")
    settle(page)
    assert "This run has no task 99999" in page.inner_text("#graph-body")
    page.fill("#graph-task", "x1")
    page.click("#graph-expand")
    page.wait_for_selector("text=A task id is a number, not 'x1'.")


def test_a_killed_run_is_drawn_with_its_tasks_in_flight(sqlite_store, dashboard, page):
    page.goto(f"{dashboard.base}/run/{sqlite_store.killed}/graph")
    settle(page)
    traces = figure_data(page)
    assert len(traces["launched"]["customdata"]) == 6
    assert "killed" in page.inner_text(".subtitle")


def test_state_counts_match_the_run(sqlite_store, first_run):
    engine, _ = first_run
    graph = task_graph(engine, sqlite_store.first)
    drawn = Counter(node.state for node in graph.nodes if node.kind == "task")
    assert dict(drawn) == graph.states


def test_the_collapsed_graph_is_the_same_on_postgresql(postgres_store):
    engine = open_for_reading(postgres_store.url)
    try:
        graph = task_graph(engine, postgres_store.first, threshold=5)
    finally:
        engine.dispose()
    edges = {(edge.source, edge.target): (edge.weight, edge.failing) for edge in graph.edges}
    assert edges[("app:explode", "app:after")] == (2, 2) and edges[("app:square", "app:total")] == (8, 0)
    assert nodes(graph)["app:explode"].first_failures == 1 and sum(node.size for node in graph.nodes) == 19
