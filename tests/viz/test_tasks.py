"""The Tasks page in Chromium, and its read function against the same store: every task of a run
with its app, state and dependencies as the store has them, filtered by app and by state, a page at
a time, linked to each task and to the tasks it waited on; clear messages for an app or a state the
run does not have."""
from __future__ import annotations

import pytest

from parsl_repro.monitoring.queries import NothingMatches, RunNotFound
from parsl_repro.monitoring.read.tasks import run_tasks
from parsl_repro.viz.pages.tasks import _pager
from tests.viz.conftest import settle, store_rows, table_rows


def open_tasks(page, dashboard, run_id: str, query: str = "") -> None:
    page.goto(f"{dashboard.base}/run/{run_id}/tasks{query}")
    settle(page)


def recorded(engine, run_id: str) -> dict[int, tuple[str, str, list[int]]]:
    """Each task of the run: app, state and the tasks it waited on, from the dependency table."""
    found = {task_id: (app, state, []) for task_id, app, state in store_rows(
        engine, "SELECT task_id, task_func_name, task_status_name FROM task WHERE run_id = :r", r=run_id)}
    for task_id, upstream in store_rows(engine, "SELECT task_id, depends_on FROM dependency WHERE run_id = :r "
                                                "AND kind = 'data' ORDER BY depends_on", r=run_id):
        found[task_id][2].append(upstream)
    return found


# --- in the browser -----------------------------------------------------------------------------------
def test_every_task_is_listed_with_its_app_state_and_dependencies(sqlite_store, dashboard, page, engine):
    run_id = sqlite_store.first
    expected = recorded(engine, run_id)
    open_tasks(page, dashboard, run_id)
    shown = table_rows(page, "tasks-table")
    assert [int(row["task_id"]) for row in shown] == sorted(expected)
    for row in shown:
        app, state, upstream = expected[int(row["task_id"])]
        assert (row["app"], row["state"]) == (app, state)
        assert [int(part) for part in row["depends"].split(" · ") if part] == upstream
    assert page.locator("#tasks-pager").count() == 0  # one page holds them all
    assert page.inner_text("#run-tabs .tab.active") == "Tasks"


def test_the_filters_narrow_the_list_and_a_dependency_opens_its_task(sqlite_store, dashboard, page, engine):
    run_id = sqlite_store.first
    expected = recorded(engine, run_id)
    open_tasks(page, dashboard, run_id)
    page.click("#tasks-apps a:has-text('after')")
    page.wait_for_url("**/tasks?app=after")
    settle(page)
    afters = sorted(task_id for task_id, (app, _, _) in expected.items() if app == "after")
    assert [int(row["task_id"]) for row in table_rows(page, "tasks-table")] == afters
    assert page.inner_text("#tasks-app-chosen") == f"after ({len(afters)})"
    page.click("#tasks-states a:has-text('dep_fail')")  # the app stays chosen
    page.wait_for_url("**/tasks?app=after&state=dep_fail")
    settle(page)
    shown = table_rows(page, "tasks-table")
    assert shown and all(row["app"] == "after" and row["state"] == "dep_fail" for row in shown)
    last = max(int(row["task_id"]) for row in shown)
    upstream = expected[last][2][0]
    page.click(f"#tasks-table tr:has(td[data-col=task_id] a[href$='/task/{last}']) td[data-col=depends] a")
    page.wait_for_url(f"**/run/{run_id}/task/{upstream}")
    settle(page)
    assert page.inner_text("#page-title").startswith(f"Task {upstream}:")


def test_an_apps_page_links_to_every_task_of_the_app(sqlite_store, dashboard, page, engine):
    run_id = sqlite_store.first
    page.goto(f"{dashboard.base}/run/{run_id}/apps?app=square")
    settle(page)
    page.click("#apps-all-tasks")
    page.wait_for_url("**/tasks?app=square")
    settle(page)
    squares = [task_id for task_id, (app, _, _) in sorted(recorded(engine, run_id).items()) if app == "square"]
    assert [int(row["task_id"]) for row in table_rows(page, "tasks-table")] == squares


def test_an_app_the_run_does_not_have_names_the_apps_it_has(sqlite_store, dashboard, page):
    open_tasks(page, dashboard, sqlite_store.first, "?app=nope")
    message = page.inner_text(".notice.error")
    assert "has no app 'nope'" in message and "square" in message


# --- the read layer ----------------------------------------------------------------------------------------
def test_run_tasks_pages_through_the_filtered_tasks(sqlite_store, engine):
    run_id = sqlite_store.first
    expected = recorded(engine, run_id)
    every = run_tasks(engine, run_id)
    assert every.tasks.total == len(expected) and every.apps == {
        app: sum(1 for a, _, _ in expected.values() if a == app) for app, _, _ in expected.values()}
    pages = [run_tasks(engine, run_id, offset=offset, limit=4) for offset in range(0, len(expected), 4)]
    assert [row["task_id"] for part in pages for row in part.tasks.items] == sorted(expected)
    assert pages[-1].tasks.more == 0 and pages[0].tasks.more == len(expected) - 4
    failed = run_tasks(engine, run_id, state="failed")
    assert {row["task_id"] for row in failed.tasks.items} == {
        task_id for task_id, (_, state, _) in expected.items() if state == "failed"}
    middle = run_tasks(engine, run_id, app="square", offset=2, limit=2)
    links = {link.id: link.href for link in _pager(middle).children if hasattr(link, "href")}
    assert links == {"tasks-previous": f"/run/{run_id}/tasks?app=square",
                     "tasks-next": f"/run/{run_id}/tasks?app=square&from=4"}


def test_run_tasks_refuses_what_the_run_does_not_have(sqlite_store, engine):
    with pytest.raises(NothingMatches, match="no app 'nope'"):
        run_tasks(engine, sqlite_store.first, app="nope")
    with pytest.raises(NothingMatches, match="in state 'nope'"):
        run_tasks(engine, sqlite_store.first, state="nope")
    with pytest.raises(RunNotFound):
        run_tasks(engine, "no-such-run")
