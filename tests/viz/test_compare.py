"""The Compare page in Chromium, and its read function against the same store: the two threads
runs (same code, memo hits differ), a threads run against the HTEX run (different apps), packages
added, removed and changed between two environments, runs chosen in the dropdowns, and a clear
message for a run id that does not exist."""
from __future__ import annotations

import json
import sqlite3

import pytest

from parsl_repro.monitoring.engine import open_for_reading, sqlite_path
from parsl_repro.monitoring.queries import RunNotFound
from parsl_repro.monitoring.read.compare import compare, run_choices
from parsl_repro.viz.pages.compare import comparison_section
from tests.viz.conftest import settle


def side_by_side(page, table_id: str) -> dict[str, dict[str, str]]:
    """A side-by-side table's rows by label: {label: {a, b, delta}}."""
    return page.eval_on_selector_all(f"#{table_id} tbody tr", """rows => Object.fromEntries(rows.map(row =>
        [row.dataset.label, Object.fromEntries([...row.querySelectorAll('td')].map(td => [td.dataset.col,
                                                                                           td.innerText]))]))""")


def apps(page) -> dict[str, dict[str, str]]:
    return page.eval_on_selector_all("#compare-apps tbody tr", """rows => Object.fromEntries(rows.map(row =>
        [row.dataset.app, Object.fromEntries([...row.querySelectorAll('td')].map(td => [td.dataset.col,
                                                                                         td.innerText]))]))""")


def open_compare(page, dashboard, a: str, b: str) -> None:
    page.goto(f"{dashboard.base}/compare?a={a}&b={b}")
    settle(page)


# --- in the browser -----------------------------------------------------------------------------------
def test_the_two_threads_runs_have_the_same_code_and_different_memo_hits(sqlite_store, dashboard, page):
    open_compare(page, dashboard, sqlite_store.first, sqlite_store.second)
    summary = side_by_side(page, "compare-summary")
    assert summary["Memo hits"] == {"a": "3", "b": "8", "delta": "+5"}  # fan's own three; then all eight
    assert summary["Tasks"]["delta"] == "same" and summary["Outcome"]["a"] == summary["Outcome"]["b"] == "failed"
    states = side_by_side(page, "compare-states")
    assert states["memo_done"] == {"a": "3", "b": "8", "delta": "+5"}
    assert states["exec_done"]["delta"] == "−5" and states["failed"]["delta"] == "same"
    assert "No app digest differs between the two runs" in page.inner_text("#compare-code-same")
    assert page.locator("#compare-code").count() == 0
    provenance = side_by_side(page, "compare-provenance")
    assert provenance["Script sha256"]["a"] == provenance["Script sha256"]["b"] != "not recorded"
    assert provenance["Script sha256"]["delta"] == ""
    by_app = apps(page)
    assert by_app["square"]["a_memo_hits"] == "3" and by_app["square"]["b_memo_hits"] == "8"
    assert by_app["square"]["calls_delta"] == "same" and by_app["write"]["in"] == "both"
    assert side_by_side(page, "compare-environment")["Python"]["delta"] == ""
    assert page.inner_text("#compare-packages-same").startswith("Same packages")


def test_a_threads_run_against_the_htex_run_differs_in_apps(sqlite_store, dashboard, page):
    open_compare(page, dashboard, sqlite_store.first, sqlite_store.htex)
    code = page.eval_on_selector_all("#compare-code tbody tr", """rows => Object.fromEntries(rows.map(row =>
        [row.querySelector('[data-col=app]').innerText, row.querySelector('[data-col=difference]').innerText]))""")
    assert code["burn"] == "only in B" and code["crash"] == "only in B"
    assert code["write"] == "only in A" and code["square"] == "only in A"
    by_app = apps(page)
    assert by_app["burn"]["in"] == "B only" and by_app["burn"]["b_calls"] == "4" and by_app["burn"]["a_calls"] == ""
    assert by_app["noisy"]["in"] == "A only"
    summary = side_by_side(page, "compare-summary")
    assert summary["Tasks"] == {"a": "19", "b": "5", "delta": "−14"}
    assert side_by_side(page, "compare-provenance")["Script sha256"]["delta"] == "differs"


def test_runs_chosen_in_the_dropdowns_are_compared(sqlite_store, dashboard, page):
    page.goto(dashboard.base + "/compare")
    settle(page)
    # with nothing asked, the two newest runs: the HTEX run against the killed run
    assert sqlite_store.htex in page.inner_text("#compare-summary tr[data-label=Run] td[data-col=a]")
    page.click("#compare-a")
    page.click(f"[role=option]:has(input[value='{sqlite_store.first}'])")
    page.wait_for_function(f"() => document.querySelector('#compare-summary tr[data-label=Run] td[data-col=a]')"
                           f".innerText === '{sqlite_store.first}'")
    page.click("#compare-b")
    page.click(f"[role=option]:has(input[value='{sqlite_store.second}'])")
    page.wait_for_function("() => document.querySelector('#compare-summary tr[data-label=\"Memo hits\"] "
                           "td[data-col=delta]').innerText === '+5'")
    href = page.get_attribute("#compare-permalink", "href")
    assert href == f"/compare?a={sqlite_store.first}&b={sqlite_store.second}"


def test_an_unknown_run_id_is_a_message(sqlite_store, dashboard, page):
    open_compare(page, dashboard, "no-such-run", sqlite_store.first)
    assert "There is no run 'no-such-run' in this store" in page.inner_text("#compare-body .notice")
    # the dropdowns stay to choose another; dcc.Dropdown is an async chunk that may draw after the notice
    page.locator("#compare-a").wait_for(state="visible", timeout=20_000)


# --- the read function -------------------------------------------------------------------------------
def test_compare_the_threads_runs(sqlite_store, engine):
    found = compare(engine, sqlite_store.first, sqlite_store.second)
    assert found.a.run["memo_hits"] == 3 and found.b.run["memo_hits"] == 8
    assert found.code == [] and found.packages_known
    assert not found.packages_added and not found.packages_removed and not found.packages_changed
    square = next(row for row in found.apps if row["app"] == "square")
    assert square["a_calls"] == square["b_calls"] == 8 and square["b_memo_hits"] == 8
    assert found.a.digests["square"] == found.b.digests["square"]
    assert all(line.same for line in found.environment)
    assert comparison_section(found).id == "compare-result"  # built without a server


def test_compare_against_htex_and_unknown_ids(sqlite_store, engine):
    found = compare(engine, sqlite_store.first, sqlite_store.htex)
    assert {item["app"]: item["difference"] for item in found.code}["burn"] == "only in B"
    with pytest.raises(RunNotFound):
        compare(engine, sqlite_store.first, "no-such-run")
    choices = run_choices(engine)
    assert [run["run_id"] for run in choices.items] == list(reversed(sqlite_store.run_ids()))


def test_packages_added_removed_and_changed(sqlite_store, tmp_path):
    """On a copy of the store whose second run had another environment: one package upgraded, one
    removed, one added."""
    copy = tmp_path / "copy.db"
    with sqlite3.connect(sqlite_path(sqlite_store.url)) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    with sqlite3.connect(copy) as db:
        packages = dict(json.loads(db.execute(
            "SELECT packages FROM environment JOIN workflow USING (packages_digest) WHERE run_id = ?",
            (sqlite_store.first,)).fetchone()[0]))
        gone, bumped = sorted(packages)[:2]
        changed = {**{name: version for name, version in packages.items() if name != gone},
                   bumped: packages[bumped] + ".post1", "brand-new": "1.0"}
        db.execute("INSERT INTO environment VALUES ('other-env', ?)", (json.dumps(sorted(changed.items())),))
        db.execute("UPDATE workflow SET packages_digest = 'other-env', python_version = '3.12.1' WHERE run_id = ?",
                   (sqlite_store.second,))
    engine = open_for_reading(f"sqlite:///{copy}")
    try:
        found = compare(engine, sqlite_store.first, sqlite_store.second)
    finally:
        engine.dispose()
    assert found.packages_added == [("brand-new", "1.0")]
    assert found.packages_removed == [(gone, packages[gone])]
    assert found.packages_changed == [(bumped, packages[bumped], packages[bumped] + ".post1")]
    python = next(line for line in found.environment if line.label == "Python")
    assert not python.same and python.b == "3.12.1"
