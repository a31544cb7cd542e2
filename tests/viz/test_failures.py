"""The Failures page in Chromium and its read function: failures grouped by exception type, each
failed task with its message, traceback, stderr tail and tries, the first failure upstream of a
dependency failure (a link to it), paging, a stderr file deleted since, and runs with no failure."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from parsl_repro.monitoring.engine import open_for_reading
from parsl_repro.monitoring.read.failures import failures, split_error, stderr_tail
from parsl_repro.viz.pages.failures import failures_section
from tests.viz.conftest import Dashboard, run_script, scalar, settle, start_script, wait_for

MANY = r'''
import os
import parsl_repro as parsl
from parsl_repro import bash_app, python_app
from parsl_repro.config import Config
from parsl_repro.executors import ThreadPoolExecutor


@python_app
def check(x):
    if x % 2 == 0:
        raise KeyError(f"missing key {x}")
    return x


@python_app
def downstream(x):
    return x


@bash_app
def grumble(stderr="grumble.err"):
    return "echo 'out of cheese' >&2; exit 2"


@python_app
def nap(x):
    import time
    time.sleep(1)
    return x


try:
    with parsl.load(Config(executors=[ThreadPoolExecutor(max_threads=4)])):
        checks = [check(i) for i in range(60)]
        futures = checks + [downstream(c) for c in checks] + [grumble()]
        for future in futures:
            try:
                future.result()
            except Exception:
                pass
        gate = nap(-1)
        waiting = [downstream(gate) for _ in range(3)]
        raise KeyboardInterrupt
except KeyboardInterrupt:
    pass
os.remove("grumble.err")
print("done")
'''
"""61 failures, more than a page: 30 KeyErrors, the 30 tasks that depended on them, and a bash
app whose stderr file is deleted once the run is over; then an interrupt cancels the three tasks
still waiting for a nap (not failures)."""


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    """A store holding one run of MANY, and a dashboard on it."""
    root = tmp_path_factory.mktemp("failures-many")
    url = f"sqlite:///{root / 'provenance.db'}"
    run_script(root / "many", MANY, env={"PARSL_REPRO_PROVENANCE_URL": url})
    engine = open_for_reading(url)
    with engine.connect() as conn:
        run_id = conn.execute(text("SELECT run_id FROM workflow")).scalar_one()
    server = Dashboard(url, root / "dashboard.log")
    yield {"engine": engine, "run_id": run_id, "dashboard": server}
    err = server.stop()
    engine.dispose()
    assert "Traceback" not in err, err


# --- the read function -------------------------------------------------------------------------------
def test_failures_are_grouped_by_exception_type_and_explained(sqlite_store, first_run):
    engine, ids = first_run
    data = failures(engine, sqlite_store.first)
    assert (data.failed, data.dep_failed, data.cancelled, data.unfinished) == (2, 3, 0, 0)
    groups = {(group["exception"], group["state"]): group for group in data.groups}
    assert groups[("ValueError", "failed")]["count"] == 1
    assert groups[("ValueError", "failed")]["example_message"] == "bad value 7: the input was rejected"
    assert groups[("BashExitFailure", "failed")]["count"] == 1
    assert groups[("DependencyError", "dep_fail")]["count"] == 3
    assert data.groups[0]["exception"] == "DependencyError"  # the largest group first
    by_app = {task.app: task for task in data.tasks}
    assert [task.state for task in data.tasks] == ["failed", "failed", "dep_fail", "dep_fail", "dep_fail"]
    explode = by_app["explode"]
    assert (explode.exception, explode.message) == ("ValueError", "bad value 7: the input was rejected")
    assert [attempt["try_id"] for attempt in explode.tries] == [0, 1] and explode.fail_count == 2
    assert all(attempt["error"] == "ValueError: bad value 7: the input was rejected" for attempt in explode.tries)
    assert explode.tries[0]["hostname"] and explode.tries[0]["pid"] == explode.tries[1]["pid"]
    assert "bad value 7" in explode.traceback and "in explode" in explode.traceback
    assert explode.stderr is None and explode.first_failures == []
    noisy = by_app["noisy"]
    assert noisy.stderr.exists and "disk quota exceeded on /scratch" in noisy.stderr.text
    assert noisy.stderr.path == str(sqlite_store.root / "threads" / "noisy.err")
    after = [task for task in data.tasks if task.app == "after"]
    assert [[(root.task_id, root.app) for root in task.first_failures] for task in after] == \
        [[(ids["explode"][0], "explode")]] * 3
    assert [root.via for task in after for root in task.first_failures] == [[], [], [ids["after"][1]]]
    assert all(task.tries == [] for task in after)


def test_a_filter_by_exception_type_and_pages(many):
    data = failures(many["engine"], many["run_id"])
    assert (data.failed, data.dep_failed, data.matching, data.pages, data.after) == (31, 30, 61, 2, 11)
    assert [group["exception"] for group in data.groups] == ["DependencyError", "KeyError", "BashExitFailure"]
    assert len(data.tasks) == 50 and data.tasks[0].exception == "KeyError"
    second = failures(many["engine"], many["run_id"], page=2)
    assert len(second.tasks) == 11 and {task.state for task in second.tasks} == {"dep_fail"} and second.after == 0
    keys = failures(many["engine"], many["run_id"], exception="KeyError")
    assert keys.matching == 30 and {task.exception for task in keys.tasks} == {"KeyError"}
    beyond = failures(many["engine"], many["run_id"], page=9)
    assert beyond.tasks == [] and beyond.matching == 61


def test_cancelled_tasks_are_counted_apart_not_as_failures(many):
    data = failures(many["engine"], many["run_id"])
    assert data.cancelled in (3, 4)  # the nap they waited for too, unless it finished first
    assert data.total == 61 and data.outcome == "interrupted"
    assert [row["app"] for row in data.cancelled_tasks][-3:] == ["downstream"] * 3


def test_a_deleted_stderr_file_is_reported(many):
    data = failures(many["engine"], many["run_id"], exception="BashExitFailure")
    (grumble,) = data.tasks
    assert not grumble.stderr.exists and grumble.stderr.note.endswith("grumble.err: the file no longer exists")


def test_stderr_tail_reads_only_the_end_of_a_regular_file(tmp_path):
    big = tmp_path / "big.err"
    big.write_text("".join(f"line {n}\n" for n in range(100_000)))
    tail = stderr_tail("big.err", str(tmp_path))
    assert tail.exists and tail.cut and tail.text.splitlines() == [f"line {n}" for n in range(99_960, 100_000)]
    short = tmp_path / "short.err"
    short.write_text("one\ntwo\n")
    assert stderr_tail(f"file://{short}", None).text == "one\ntwo" and not stderr_tail(str(short), None).cut
    os.mkfifo(tmp_path / "pipe.err")
    assert "not a regular file" in stderr_tail("pipe.err", str(tmp_path)).note  # and it did not block
    assert "not a local file" in stderr_tail("globus://ep/x.err", None).note
    assert "working directory was not recorded" in stderr_tail("x.err", None).note
    assert stderr_tail("gone.err", str(tmp_path)).note.endswith("gone.err: the file no longer exists")


def test_errors_split_at_the_first_colon():
    assert split_error("ValueError: bad value 7: rejected") == ("ValueError", "bad value 7: rejected")
    assert split_error("worker lost") == ("worker lost", "")
    assert split_error(None) == ("", "")


def test_the_section_is_built_without_a_server(sqlite_store, first_run):
    engine, _ = first_run
    section = failures_section(failures(engine, sqlite_store.first))
    assert section.id == "failures-section" and "bad value 7" in str(section)


# --- in the browser ----------------------------------------------------------------------------------
def group_rows(page) -> list[dict[str, str]]:
    return page.eval_on_selector_all("#failures-groups tbody tr", """rows => rows.map(row => Object.fromEntries(
        [...row.querySelectorAll('td')].map(td => [td.dataset.col, td.innerText])))""")


def test_failures_page_explains_each_failure(sqlite_store, first_run, dashboard, page):
    _, ids = first_run
    page.goto(f"{dashboard.base}/run/{sqlite_store.first}/failures")
    settle(page)
    groups = {(row["exception"], row["state"]): row for row in group_rows(page)}
    assert groups[("ValueError", "failed")]["count"] == "1"
    assert groups[("ValueError", "failed")]["example_message"] == "bad value 7: the input was rejected"
    assert groups[("DependencyError", "dep_fail")]["count"] == "3"
    explode_id = ids["explode"][0]
    explode = page.locator(f"#failures-task-{explode_id}")
    assert "ValueError: bad value 7: the input was rejected" in explode.inner_text()
    assert page.locator(f"#failures-tries-{explode_id} tbody tr").count() == 2
    traceback = page.inner_text(f"#failures-traceback-{explode_id}")
    assert "bad value 7" in traceback and "in explode" in traceback
    assert "disk quota exceeded on /scratch" in page.inner_text(f"#failures-stderr-{ids['noisy'][0]}")
    for after in ids["after"]:
        link = page.locator(f"#failures-first-{after}-{explode_id}")
        assert link.inner_text() == f"task {explode_id}"
        assert link.get_attribute("href") == f"/run/{sqlite_store.first}/task/{explode_id}"
    assert "No try was recorded: it never ran: a dependency failed first." in \
        page.inner_text(f"#failures-task-{ids['after'][0]}")
    page.click(f"#failures-first-{ids['after'][-1]}-{explode_id}")
    page.wait_for_url(f"**/run/{sqlite_store.first}/task/{explode_id}")


def test_a_click_on_an_exception_type_shows_only_those_tasks(sqlite_store, first_run, dashboard, page):
    _, ids = first_run
    page.goto(f"{dashboard.base}/run/{sqlite_store.first}/failures")
    settle(page)
    page.click("#failures-groups a:has-text('ValueError')")
    page.wait_for_url(lambda url: url.endswith("/failures?exception=ValueError"))
    page.wait_for_selector("text=Showing only 'ValueError': 1 task.")
    assert page.locator("section.failure").count() == 1
    assert page.locator(f"#failures-task-{ids['explode'][0]}").is_visible()


def test_many_failures_are_paged_and_a_deleted_stderr_file_is_said_so(many, page):
    base = f"{many['dashboard'].base}/run/{many['run_id']}/failures"
    page.goto(base)
    settle(page)
    assert page.locator("section.failure").count() == 50
    assert "... and 11 more failed tasks on later pages not shown" in page.inner_text("#failures-section")
    assert "the file no longer exists" in page.inner_text("section.failure-failed:has-text('grumble')")
    page.click("#failures-next")
    page.wait_for_url(lambda url: url.endswith("/failures?page=2"))
    page.wait_for_selector("text=page 2 of 2")
    assert page.locator("section.failure").count() == 11
    page.goto(base + "?page=2")
    settle(page)
    cancelled = page.inner_text("#failures-cancelled")
    assert cancelled.count("downstream") == 3 and "the run ended first" in cancelled
    assert "cancelled (not failures)" in page.inner_text(".cards")
    page.goto(base + "?page=7")
    settle(page)
    assert "There is no page 7: these failures fill 2 pages." in page.inner_text("#failures-section")
    page.goto(base + "?page=x")
    settle(page)
    assert "The page 'x' is not a page number" in page.inner_text("#failures-body")


def test_runs_without_failures_say_so(sqlite_store, dashboard, page):
    page.goto(f"{dashboard.base}/run/{sqlite_store.killed}/failures")
    settle(page)
    body = page.inner_text("#failures-section")
    assert "This run has no failed tasks." in body
    assert "6 tasks never finished: the run ended (killed) while they were in flight" in body


def test_a_run_that_does_not_exist_shows_a_message(dashboard, page):
    page.goto(f"{dashboard.base}/run/no-such-run/failures")
    settle(page)
    assert "There is no run 'no-such-run'" in page.inner_text(".notice")


def test_failures_are_grouped_the_same_on_postgresql(postgres_store):
    engine = open_for_reading(postgres_store.url)
    try:
        data = failures(engine, postgres_store.first)
    finally:
        engine.dispose()
    assert {(group["exception"], group["state"]): group["count"] for group in data.groups} == {
        ("ValueError", "failed"): 1, ("BashExitFailure", "failed"): 1, ("DependencyError", "dep_fail"): 3}
    after = [task for task in data.tasks if task.app == "after"]
    assert [[root.app for root in task.first_failures] for task in after] == [["explode"]] * 3


SLOW_FAILURES = r'''
import parsl_repro as parsl
from parsl_repro import python_app
from parsl_repro.config import Config
from parsl_repro.executors import ThreadPoolExecutor


@python_app
def fail_later(i):
    import time
    time.sleep(1.5)
    raise RuntimeError(f"failure {i}")


with parsl.load(Config(executors=[ThreadPoolExecutor(max_threads=1)])):
    print("started", flush=True)
    futures = [fail_later(i) for i in range(6)]
    for future in futures:
        try:
            future.result()
        except Exception:
            pass
print("done")
'''
"""Six tasks that fail one after the other, 1.5 s apart."""


def test_a_live_run_s_failures_appear_without_reloading(tmp_path, page):
    url = f"sqlite:///{tmp_path / 'provenance.db'}"
    process = start_script(tmp_path / "live", SLOW_FAILURES, env={"PARSL_REPRO_PROVENANCE_URL": url})
    wait_for(lambda: _recorded_run(url), 30, "the run's record")
    server = Dashboard(url, tmp_path / "dashboard.log")
    try:
        run_id = _recorded_run(url)
        page.goto(f"{server.base}/run/{run_id}/failures")
        settle(page)
        assert "live" in page.inner_text(".subtitle")
        first = int(page.inner_text("#failures-failed .value"))
        assert first < 6
        page.evaluate("() => { window.notReloaded = true; }")
        page.wait_for_function("() => document.querySelector('#failures-failed .value').innerText === '6'",
                               timeout=30_000)
        assert page.evaluate("() => window.notReloaded === true")
        assert page.locator("section.failure").count() == 6
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log = server.stop()
    assert "Traceback" not in log, log


def _recorded_run(url: str) -> str | None:
    try:
        return scalar(url, "SELECT run_id FROM workflow")
    except Exception:  # the store is still being laid out
        return None
