"""A user's way through the dashboard, one click at a time, in Chromium: from the list of runs to a
run, to its failures, to a task that failed because of another, to that upstream failure; from a
task to the file it read and to the task that made it. Each step asserts what the page shows."""
from __future__ import annotations

import hashlib

from parsl_repro.monitoring.engine import default_url, prepare_default_store
from parsl_repro.monitoring.schema import ensure_schema
from tests.viz.conftest import Dashboard, settle, store_rows, table_rows


def click(page, selector: str, url_glob: str) -> str:
    page.click(selector)
    page.wait_for_url(url_glob)
    settle(page)
    return page.inner_text("body")


def test_from_the_runs_list_to_the_first_failure_upstream(sqlite_store, dashboard, page, engine):
    run = sqlite_store.first
    page.goto(dashboard.base + "/")
    settle(page)
    text = click(page, f"#runs a:has-text('{run[:8]}')", f"**/run/{run}")
    assert "Run overview" in text and "failed" in text
    text = click(page, "#run-tabs a:has-text('Failures')", f"**/run/{run}/failures")
    assert "ValueError" in text and "bad value 7: the input was rejected" in text
    # a task that failed only because its dependency had: task 11, after(after(explode))
    [[dependant]] = store_rows(engine, "SELECT max(task_id) FROM task WHERE run_id = :r AND task_func_name = 'after'",
                               r=run)
    [[explode]] = store_rows(engine, "SELECT task_id FROM task WHERE run_id = :r AND task_func_name = 'explode'", r=run)
    text = click(page, f"#failures-task-{dependant} a[href$='/task/{dependant}']", f"**/run/{run}/task/{dependant}")
    assert f"Task {dependant}: after" in text and "This task never ran" in text
    assert f"the first failure upstream: task {explode} (explode)" in text
    text = click(page, f"#task-first-failure-{explode}", f"**/run/{run}/task/{explode}")
    assert f"Task {explode}: explode" in text and "Traceback" in text
    assert [row["try_id"] for row in table_rows(page, "task-tries")] == ["0", "1"]


def test_from_a_task_to_the_file_it_read_and_the_task_that_made_it(sqlite_store, dashboard, page, engine):
    run = sqlite_store.first
    [[reader]] = store_rows(engine, "SELECT task_id FROM task WHERE run_id = :r AND task_func_name = 'count_chars'",
                            r=run)
    [[writer]] = store_rows(engine, "SELECT task_id FROM task WHERE run_id = :r AND task_func_name = 'write'", r=run)
    page.goto(f"{dashboard.base}/run/{run}/task/{reader}")
    settle(page)
    [used] = table_rows(page, "task-files")
    assert used["role"] == "input" and used["url"].endswith("hello.txt")
    text = click(page, "#task-files a", "**/file/*")
    digest = hashlib.sha256((sqlite_store.root / "threads" / "hello.txt").read_bytes()).hexdigest()
    assert digest in text and "hello.txt" in text
    producers = table_rows(page, "file-producers")
    assert {(row["run_id"], row["task_id"]) for row in producers} >= {(run[:8], str(writer))}
    text = click(page, f"#file-producers tr:has(td[data-col=run_id]:has-text('{run[:8]}')) "
                       f"td[data-col=task_id] a", f"**/run/{run}/task/{writer}")
    assert f"Task {writer}: write" in text and "echo hello" in text


def test_an_empty_store_says_there_is_nothing_yet(tmp_path, page):
    prepare_default_store(str(tmp_path / "runinfo"))
    url = default_url(str(tmp_path / "runinfo"))
    from parsl_repro.monitoring.engine import make_engine

    writer = make_engine(url, writer=True)
    ensure_schema(writer, url)
    writer.dispose()
    server = Dashboard(url, tmp_path / "dashboard.log")
    try:
        page.goto(server.base + "/")
        settle(page)
        assert "This store holds no runs yet" in page.inner_text("body")
        page.goto(server.base + "/run/nonesuch/failures")
        settle(page)
        assert "There is no run 'nonesuch'" in page.inner_text("body")
    finally:
        assert "Traceback" not in server.stop()
