"""The Runs page in Chromium: every run with its outcome and counts; a killed run is shown as
killed; filter and sort; a click opens the run."""
from __future__ import annotations

from tests.viz.conftest import settle


def rows(page) -> list[dict[str, str]]:
    return page.eval_on_selector_all("#runs tbody tr", """rows => rows.map(row => Object.fromEntries(
        [...row.querySelectorAll('td')].map(td => [td.dataset.col, td.innerText])))""")


def test_every_run_is_listed_newest_first_with_outcome_and_counts(sqlite_store, dashboard, page):
    page.goto(dashboard.base + "/")
    settle(page)
    listed = rows(page)
    assert [row["run_id"] for row in listed] == [run_id[:8] for run_id in reversed(sqlite_store.run_ids())]
    by_id = {row["run_id"]: row for row in listed}
    killed, htex, second = (by_id[r[:8]] for r in (sqlite_store.killed, sqlite_store.htex, sqlite_store.second))
    assert killed["outcome"] == "killed" and killed["tasks"] == "6" and "launched 6" in killed["state_summary"]
    assert htex["outcome"] == "failed"
    assert "failed 1" in htex["state_summary"] and "exec_done 4" in htex["state_summary"]
    assert second["memo_hits"] == "8"  # its five squares from the first run, three of its own in fan
    assert second["script_path"].endswith("threads/wf.py") and second["duration"].endswith("s")


def test_filter_and_sort(sqlite_store, dashboard, page):
    page.goto(dashboard.base + "/")
    settle(page)
    page.fill("#runs-filter", "htex")
    page.press("#runs-filter", "Enter")
    page.wait_for_function("() => document.querySelectorAll('#runs tbody tr').length === 1")
    assert rows(page)[0]["run_id"] == sqlite_store.htex[:8]
    page.fill("#runs-filter", "no run has this")
    page.press("#runs-filter", "Enter")
    page.wait_for_selector("text=No run matches 'no run has this'")
    page.fill("#runs-filter", "")
    page.press("#runs-filter", "Enter")
    page.wait_for_function("() => document.querySelectorAll('#runs tbody tr').length === 4")
    page.click("#runs-sort")
    page.click("text=sort by tasks")
    page.wait_for_function("() => document.querySelector('#runs tbody tr td[data-col=tasks]').innerText === '19'")


def test_a_click_on_a_run_opens_it(sqlite_store, dashboard, page):
    page.goto(dashboard.base + "/")
    settle(page)
    page.click(f"#runs a:has-text('{sqlite_store.htex[:8]}')")
    page.wait_for_url(f"**/run/{sqlite_store.htex}")
    settle(page)
    assert page.locator("#run-tabs").is_visible()
