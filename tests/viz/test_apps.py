"""The Apps page in Chromium, and its read functions against the same store: per app calls,
states, failures, retries, memo hits and durations as the store has them, the recorded source of
each version of an app, one app's histogram and slowest tasks, and clear messages for an app or a
run that does not exist."""
from __future__ import annotations

import pytest

from parsl_repro.monitoring.queries import NothingMatches
from parsl_repro.monitoring.read.apps import AppSummary, Histogram, empty_histogram, run_apps
from tests.viz.conftest import figure_data, settle, store_rows, table_rows

APPS = {"square", "total", "write", "count_chars", "explode", "after", "shout", "fan", "noisy"}


def open_apps(page, dashboard, run_id: str, query: str = "") -> None:
    page.goto(f"{dashboard.base}/run/{run_id}/apps{query}")
    settle(page)


# --- in the browser -----------------------------------------------------------------------------------
def test_every_app_is_listed_with_the_counts_the_store_has(sqlite_store, dashboard, page, engine):
    open_apps(page, dashboard, sqlite_store.first)
    listed = {row["name"]: row for row in table_rows(page, "apps")}
    assert set(listed) == APPS
    for name, calls, failed, memo_hits, failed_tries in store_rows(
            engine, "SELECT task_func_name, count(*), sum(task_status_name = 'failed'), "
                    "sum(task_status_name = 'memo_done'), sum(task_fail_count) FROM task WHERE run_id = :run "
                    "GROUP BY task_func_name", run=sqlite_store.first):
        row = listed[name]
        assert (row["calls"], row["failures"], row["memo_hits"], row["failed_tries"]) == \
               (str(calls), str(failed), str(memo_hits), str(failed_tries)), name
    assert int(listed["square"]["memo_hits"]) == 3  # fan's three squares reuse the run's own
    assert (listed["square"]["kind"], listed["write"]["kind"], listed["fan"]["kind"]) == ("python", "bash", "join")
    explode = listed["explode"]
    assert (explode["failures"], explode["failed_tries"], explode["retries"]) == ("1", "2", "1")
    assert listed["after"]["dep_failures"] == "3" and "dep_fail 3" in listed["after"]["state_summary"]
    assert listed["noisy"]["retries"] == "1"


def test_the_second_run_shows_every_square_as_a_memo_hit(sqlite_store, dashboard, page):
    open_apps(page, dashboard, sqlite_store.second)
    square = next(row for row in table_rows(page, "apps") if row["name"] == "square")
    assert square["calls"] == square["memo_hits"] == "8" and square["state_summary"] == "memo_done 8"


def test_the_source_of_each_version_of_an_app_is_shown_by_digest(sqlite_store, dashboard, page, engine):
    open_apps(page, dashboard, sqlite_store.first)
    [(digest, tasks)] = store_rows(engine, "SELECT app_digest, count(*) FROM task WHERE run_id = :run AND "
                                           "task_func_name = 'square' GROUP BY app_digest", run=sqlite_store.first)
    version = page.locator(f".app-version[data-digest='{digest}']")
    assert version.count() == 1
    assert "return x * x" in version.locator("pre").inner_text()
    assert f"{tasks} tasks" in version.inner_text() and digest[:16] in version.inner_text()
    # every app's code is recorded, cached or not: each has its version, none is unidentified
    digests = {d for (d,) in store_rows(engine, "SELECT DISTINCT app_digest FROM task WHERE run_id = :run",
                                        run=sqlite_store.first)}
    assert None not in digests and page.locator(".app-version").count() == len(digests)
    assert "No code recorded for" not in page.inner_text("#apps-body")


def test_every_finished_app_has_a_box_of_its_durations(sqlite_store, dashboard, page):
    open_apps(page, dashboard, sqlite_store.first)
    [box] = figure_data(page, "apps-durations")
    assert box["type"] == "box" and set(box["x"]) == APPS
    for low, q1, median, q3, high in zip(box["lowerfence"], box["q1"], box["median"], box["q3"], box["upperfence"],
                                         strict=True):
        assert low <= q1 <= median <= q3 <= high


def test_a_focused_apps_histogram_counts_each_of_its_finished_tasks(sqlite_store, dashboard, page, engine):
    open_apps(page, dashboard, sqlite_store.first, "?app=square")
    assert page.inner_text("#page-title") == "App square"
    assert [row["name"] for row in table_rows(page, "apps")] == ["square"]
    [bars] = figure_data(page, "apps-histogram")
    [(finished,)] = store_rows(engine, "SELECT count(*) FROM task WHERE run_id = :run AND task_func_name = 'square' "
                                       "AND task_time_returned IS NOT NULL", run=sqlite_store.first)
    assert bars["type"] == "bar" and sum(bars["y"]) == finished == 8
    slowest = table_rows(page, "apps-slowest")
    assert sorted(int(row["task_id"]) for row in slowest) == \
           [task_id for (task_id,) in store_rows(engine, "SELECT task_id FROM task WHERE run_id = :run AND "
                                                         "task_func_name = 'square' ORDER BY task_id",
                                                 run=sqlite_store.first)]
    page.click("#apps-slowest tbody tr:first-child a")
    page.wait_for_url(f"**/run/{sqlite_store.first}/task/*")
    settle(page)
    assert "square" in page.inner_text("#page-title")


def test_an_app_the_run_does_not_have_names_the_apps_it_has(sqlite_store, dashboard, page):
    open_apps(page, dashboard, sqlite_store.first, "?app=nope")
    message = page.inner_text(".notice.error")
    assert message == (f"Run {sqlite_store.first[:12]} has no app 'nope'; its apps are: "
                       f"{', '.join(sorted(APPS))}")
    assert page.locator("#run-tabs .tab.active").inner_text() == "Apps"


def test_a_killed_runs_apps_say_no_task_finished(sqlite_store, dashboard, page):
    open_apps(page, dashboard, sqlite_store.killed, "?app=step")
    [step] = table_rows(page, "apps")
    assert (step["calls"], step["finished"], step["state_summary"]) == ("6", "0", "launched 6")
    assert "No task of step finished: the run ended (killed) before any did, so it has no durations." in \
        page.inner_text("#apps-body")


def test_a_run_that_does_not_exist_is_a_message(dashboard, page):
    page.goto(f"{dashboard.base}/run/no-such-run/apps")
    settle(page)
    assert "There is no run 'no-such-run'" in page.inner_text(".notice.error")


# --- the read layer ----------------------------------------------------------------------------------------
def test_run_apps_matches_the_store(sqlite_store, engine):
    data = run_apps(engine, sqlite_store.first)
    assert data.apps_total == len(data.apps) == len(APPS) and not data.live
    expected = {name: (calls, finished) for name, calls, finished in store_rows(
        engine, "SELECT task_func_name, count(*), count(task_time_returned) FROM task WHERE run_id = :run "
                "GROUP BY task_func_name", run=sqlite_store.first)}
    for app in data.apps:
        assert (app.calls, app.finished) == expected[app.name]
        assert app.histogram.total == app.finished
        assert app.min is not None and app.max is not None and app.min <= app.mean <= app.max  # type: ignore[operator]
        assert app.total_time == pytest.approx(app.mean * app.finished)  # type: ignore[operator]
    assert sorted(version.app for version in data.versions) == sorted(APPS)  # every app's code, cached or not
    assert data.versions_total == len(APPS) and data.unidentified == []


def test_run_apps_focused_on_an_app_lists_its_slowest_tasks_first(sqlite_store, engine):
    data = run_apps(engine, sqlite_store.htex, "burn")
    assert [app.name for app in data.apps] == ["burn"] and data.slowest is not None
    durations = [task["duration"] for task in data.slowest.items]
    assert len(durations) == data.slowest.total == 4 and durations == sorted(durations, reverse=True)
    assert durations[-1] > 0.5  # each burns 0.6 s of CPU


def test_run_apps_refuses_an_app_the_run_does_not_have(sqlite_store, engine):
    with pytest.raises(NothingMatches, match="has no app 'nope'; its apps are: burn, crash"):
        run_apps(engine, sqlite_store.htex, "nope")


def test_histogram_bins_and_quantiles():
    assert empty_histogram(None, None, 30).counts == []
    narrow = empty_histogram(0.0, 0.002, 30)  # no bin narrower than a millisecond
    assert narrow.width == 0.001 and len(narrow.counts) == 3
    wide = empty_histogram(1.0, 4.0, 30)
    assert wide.width == pytest.approx(0.1) and len(wide.counts) == 30 and wide.edges()[-1] == pytest.approx(4.0)
    histogram = Histogram(0.0, 1.0, [2, 0, 2])
    assert histogram.quantile(0.5) == pytest.approx(1.0) and histogram.quantile(1.0) == pytest.approx(3.0)
    app = AppSummary("a", "python", 4, {}, 0, 0, 4, 0.2, 1.5, 2.5, 6.0, 0, histogram)
    assert app.quantile(1.0) == 2.5 and app.quantile(0.0) == 0.2  # kept between the shortest and the longest
    assert Histogram().quantile(0.5) is None
