"""The Task page in Chromium, and its read function against the same store: a retried failure's
states and tries, resource samples of an HTEX task, a bash task's command line and output file
with its sha256, a memo hit's source in an earlier run, a task that never ran, markup in an
argument shown as text, and clear messages for task ids that do not exist."""
from __future__ import annotations

import hashlib

import pytest

from parsl_repro.monitoring.queries import NothingMatches
from parsl_repro.monitoring.read.task import task_detail
from tests.viz.conftest import settle, store_rows, table_rows


def task_of(engine, run_id: str, app: str, state: str | None = None) -> int:
    """The first task of ``app`` in the run (in ``state`` when given)."""
    found = store_rows(engine, "SELECT task_id FROM task WHERE run_id = :run AND task_func_name = :app "
                               "AND (:state IS NULL OR task_status_name = :state) ORDER BY task_id",
                       run=run_id, app=app, state=state)
    assert found, f"no {app} task in {run_id}"
    return found[0][0]


def open_task(page, dashboard, run_id: str, task_id: int | str) -> None:
    page.goto(f"{dashboard.base}/run/{run_id}/task/{task_id}")
    settle(page)


# --- in the browser -----------------------------------------------------------------------------------
def test_a_retried_failure_shows_each_state_with_its_cause_and_both_tries(sqlite_store, dashboard, page, engine):
    task_id = task_of(engine, sqlite_store.first, "explode")
    open_task(page, dashboard, sqlite_store.first, task_id)
    assert page.inner_text("#page-title") == f"Task {task_id}: explode"
    states = table_rows(page, "task-states")
    assert [row["task_status_name"] for row in states] == \
           ["pending", "launched", "fail_retryable", "pending", "launched", "failed"]
    assert [row["cause"] for row in states] == [
        "submitted", "dependencies met, sent to executor", "executor returned an error, will retry", "retry",
        "dependencies met, sent to executor", "executor returned an error, no retries left"]
    assert "ValueError: bad value 7" in states[-1]["detail"]
    tries = table_rows(page, "task-tries")
    assert [row["try_id"] for row in tries] == ["0", "1"]
    assert all(row["task_executor"] == "threads" and "bad value 7" in row["error"] and row["pid"] for row in tries)
    assert page.locator("details.traceback").count() == 2
    page.click("details.traceback summary >> nth=0")
    assert "raise ValueError" in page.inner_text("details.traceback >> nth=0")
    assert "no resource samples: the threads executor (ThreadPoolExecutor) runs tasks in the workflow's own " \
           "process" in page.inner_text("#task-body")
    downstream = table_rows(page, "task-downstream")
    assert [row["task_func_name"] for row in downstream] == ["after", "after"]
    page.click("#task-downstream tbody tr:first-child a")
    page.wait_for_url(f"**/task/{downstream[0]['task_id']}")
    settle(page)
    assert page.inner_text("#page-title").endswith("after")


def test_an_htex_task_shows_its_resource_samples(sqlite_store, dashboard, page, engine):
    task_id = task_of(engine, sqlite_store.htex, "burn")
    [(samples,)] = store_rows(engine, "SELECT count(*) FROM resource WHERE run_id = :run AND task_id = :task",
                              run=sqlite_store.htex, task=task_id)
    assert samples > 1
    open_task(page, dashboard, sqlite_store.htex, task_id)
    selector = "#task-resources .js-plotly-plot"
    page.wait_for_function(f"() => {{ const g = document.querySelector('{selector}'); "
                           f"return g && g.data && g.data.length && g.querySelector('.main-svg'); }}")
    traces = page.evaluate(f"() => document.querySelector('{selector}').data.map(t => "
                           f"({{name: t.name, axis: t.yaxis, x: t.x.length, y: t.y.filter(v => v !== null).length}}))")
    assert [(trace["name"], trace["axis"]) for trace in traces] == [("try 0 CPU", "y"), ("try 0 RSS", "y2")]
    assert all(trace["x"] == trace["y"] == samples for trace in traces)
    [attempt] = table_rows(page, "task-tries")
    assert attempt["task_executor"] == "htex" and attempt["block_id"] == "0" and attempt["manager"]


def test_a_bash_task_shows_its_command_line_and_its_output_file_with_sha256(sqlite_store, dashboard, page, engine):
    task_id = task_of(engine, sqlite_store.first, "write")
    open_task(page, dashboard, sqlite_store.first, task_id)
    assert "echo hello" in page.inner_text("#task-command")
    assert page.inner_text("#task-args") == "('hello', outputs=[File('hello.txt')])"
    digest = hashlib.sha256((sqlite_store.root / "threads" / "hello.txt").read_bytes()).hexdigest()
    [output] = table_rows(page, "task-files")
    assert output["role"] == "output" and output["url"].endswith("hello.txt") and output["sha256"] == digest
    assert output["size"] == "6 B"
    [(file_id,)] = store_rows(engine, "SELECT file_id FROM file_use WHERE run_id = :run AND task_id = :task",
                              run=sqlite_store.first, task=task_id)
    assert page.get_attribute("#task-files a", "href") == f"/file/{file_id}"
    assert [row["task_func_name"] for row in table_rows(page, "task-downstream")] == ["count_chars"]


def test_a_memo_hit_links_to_the_task_it_reused_in_the_first_run(sqlite_store, dashboard, page, engine):
    task_id = task_of(engine, sqlite_store.second, "square", "memo_done")
    [(source_task, memo_key)] = store_rows(engine, "SELECT memo_source_task, task_hashsum FROM task "
                                                   "WHERE run_id = :run AND task_id = :task",
                                           run=sqlite_store.second, task=task_id)
    open_task(page, dashboard, sqlite_store.second, task_id)
    assert page.get_attribute("#task-memo-source", "href") == f"/run/{sqlite_store.first}/task/{source_task}"
    assert page.inner_text("#task-never-ran") == ("This task never ran: no try was made (it was a memo hit: its "
                                                  f"result was reused from run {sqlite_store.first[:8]}, task "
                                                  f"{source_task}).")
    assert memo_key in page.inner_text("#task-memo")
    components = {row["component"]: row["digest"] for row in table_rows(page, "task-memo-components")}
    assert set(components) == {"arg 0", "code"}
    assert page.get_attribute("#task-app-digest", "href") == f"/run/{sqlite_store.second}/apps?app=square"
    assert page.inner_text("#task-app-digest") == components["code"]
    page.click("#task-memo-source")
    page.wait_for_url(f"**/run/{sqlite_store.first}/task/{source_task}")
    settle(page)
    assert page.inner_text("#page-title") == f"Task {source_task}: square"
    assert [row["task_status_name"] for row in table_rows(page, "task-states")] == ["pending", "launched", "exec_done"]


def test_a_dependency_failure_never_ran_and_names_the_failed_dependency(sqlite_store, dashboard, page, engine):
    task_id = task_of(engine, sqlite_store.first, "after")
    explode = task_of(engine, sqlite_store.first, "explode")
    open_task(page, dashboard, sqlite_store.first, task_id)
    assert page.inner_text("#task-never-ran") == ("This task never ran: no try was made (it failed because a "
                                                  f"dependency failed: task {explode} (explode, failed)).")
    assert page.locator("#task-tries").count() == 0
    assert "no resource samples: the task never ran" in page.inner_text("#task-body")
    assert [row["task_id"] for row in table_rows(page, "task-upstream")] == [str(explode)]


def test_markup_in_an_argument_is_shown_as_text_and_never_run(sqlite_store, dashboard, page, engine):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    task_id = task_of(engine, sqlite_store.first, "shout")
    open_task(page, dashboard, sqlite_store.first, task_id)
    assert page.inner_text("#task-args") == "('<script>alert(1)</script>')"
    page.wait_for_timeout(500)
    assert dialogs == []
    assert not page.evaluate("() => [...document.querySelectorAll('script')]"
                             ".some(s => s.textContent.includes('alert(1)'))")
    assert page.locator("#task-args script").count() == 0


def test_a_task_the_run_does_not_have_says_which_it_has(sqlite_store, dashboard, page, engine):
    [(highest,)] = store_rows(engine, "SELECT max(task_id) FROM task WHERE run_id = :run", run=sqlite_store.first)
    open_task(page, dashboard, sqlite_store.first, 999)
    assert page.inner_text(".notice.error") == \
        f"Run {sqlite_store.first[:12]} has no task 999 (it has tasks 0 to {highest})"
    for wrong in ("abc", "-1", "9" * 40):
        open_task(page, dashboard, sqlite_store.first, wrong)
        assert f"{wrong!r} is not a task id: a task id is a whole number" in page.inner_text(".notice.error")
    open_task(page, dashboard, "no-such-run", 0)
    assert "There is no run 'no-such-run'" in page.inner_text(".notice.error")


def test_a_task_left_in_flight_by_a_killed_run_shows_its_open_try(sqlite_store, dashboard, page):
    open_task(page, dashboard, sqlite_store.killed, 0)
    assert page.inner_text("#page-title") == "Task 0: step"
    [attempt] = table_rows(page, "task-tries")
    assert attempt["task_try_time_launched"] and not attempt["task_try_time_returned"]
    assert [row["task_status_name"] for row in table_rows(page, "task-states")] == ["pending", "launched"]


# --- the read layer ----------------------------------------------------------------------------------------
def test_task_detail_reads_a_retried_failure(sqlite_store, engine):
    detail = task_detail(engine, sqlite_store.first, task_of(engine, sqlite_store.first, "explode"))
    assert [state["task_status_name"] for state in detail.states.items] == \
           ["pending", "launched", "fail_retryable", "pending", "launched", "failed"]
    assert [attempt["try_id"] for attempt in detail.tries.items] == [0, 1] and not detail.never_ran
    assert all(attempt["task_try_time_returned"].tzinfo is not None for attempt in detail.tries.items)
    assert detail.samples.points == [] and "threads" in (detail.samples.reason or "")
    assert detail.upstream.total == 0 and detail.downstream.total == 2


def test_task_detail_reads_samples_memo_and_missing_tasks(sqlite_store, engine):
    burn = task_detail(engine, sqlite_store.htex, task_of(engine, sqlite_store.htex, "burn"))
    assert burn.samples.total == len(burn.samples.points) > 1 and burn.samples.bin_seconds is None
    assert all(point["cpu"] >= 0 and point["rss"] > 0 for point in burn.samples.points)
    hit = task_detail(engine, sqlite_store.second, task_of(engine, sqlite_store.second, "square", "memo_done"))
    assert hit.task["memo_source_run"] == sqlite_store.first and hit.memo_source_exists and hit.never_ran
    assert set(hit.memo_components) == {"arg 0", "code"} and hit.app and hit.app["qualname"] == "square"
    with pytest.raises(NothingMatches, match=r"has no task 999 \(it has tasks 0 to \d+\)"):
        task_detail(engine, sqlite_store.first, 999)
