"""The Files pages in Chromium, and their read functions against the same store: every file with
the sha256 of the real file, the task that wrote it and the tasks that used it; search by path and
by sha256 prefix; one file's page saying whether its content still matches, and that a deleted
file no longer exists; a run's files by role; clear messages for a file id that does not exist."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from sqlalchemy import text

from parsl_repro.monitoring.engine import open_for_reading
from parsl_repro.monitoring.queries import RunNotFound
from parsl_repro.monitoring.read.files import FileNotFound, check_on_disk, file_detail, files, local_path, run_files
from tests.viz.conftest import Dashboard, run_script, settle, store_rows, table_rows

WRITE_THREE = r'''
import parsl_repro as parsl
from parsl_repro import bash_app
from parsl_repro.config import Config
from parsl_repro.data_provider.files import File
from parsl_repro.executors import ThreadPoolExecutor


@bash_app
def write(message, outputs=()):
    return f"echo {message} > {outputs[0]}"


with parsl.load(Config(executors=[ThreadPoolExecutor(max_threads=2)])):
    for name in ("kept.txt", "gone.txt", "edited.txt"):
        write(name.upper(), outputs=[File(name)]).result()
print("done")
'''
"""Three files written by tasks: one kept, one deleted and one edited after the run."""


@pytest.fixture(scope="module")
def changed(tmp_path_factory):
    """A store of WRITE_THREE's run whose gone.txt was deleted and edited.txt edited since (same
    size, other content), and a dashboard on it."""
    root = tmp_path_factory.mktemp("files-changed")
    url = f"sqlite:///{root / 'provenance.db'}"
    work = root / "work"
    run_script(work, WRITE_THREE, env={"PARSL_REPRO_PROVENANCE_URL": url})
    (work / "gone.txt").unlink()
    (work / "edited.txt").write_text("EDITED.TXX\n")
    engine = open_for_reading(url)
    with engine.connect() as conn:
        recorded = conn.execute(text("SELECT file_id, url FROM file")).all()
    ids = {Path(path).name: file_id for file_id, path in recorded}
    server = Dashboard(url, root / "dashboard.log")
    yield {"engine": engine, "ids": ids, "dashboard": server, "work": work}
    err = server.stop()
    engine.dispose()
    assert "Traceback" not in err, err


def hello(sqlite_store) -> tuple[Path, str]:
    path = sqlite_store.root / "threads" / "hello.txt"
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def hello_id(engine, path: Path) -> int:
    (file_id,), = store_rows(engine, "SELECT file_id FROM file WHERE url = :u", u=str(path))
    return file_id


# --- in the browser -----------------------------------------------------------------------------------
def test_the_files_page_lists_hello_with_its_real_sha256_and_the_tasks_that_made_and_used_it(
        sqlite_store, dashboard, page):
    path, digest = hello(sqlite_store)
    page.goto(dashboard.base + "/files")
    settle(page)
    listed = [row for row in table_rows(page, "files") if row["url"] == str(path)]
    assert len(listed) == 1
    assert listed[0]["sha256"] == digest and listed[0]["size"] == f"{path.stat().st_size} B"
    assert listed[0]["made_by"] == f"write (task 6) in run {sqlite_store.second[:8]}"
    assert listed[0]["used_by"] == f"count_chars (task 7) in run {sqlite_store.second[:8]}"
    assert listed[0]["producers"] == "2" and listed[0]["users"] == "2"  # once in each threads run
    row = page.locator("#files tbody tr", has_text=str(path))
    assert row.locator("td[data-col=made_by] a.task-link").get_attribute("href") == \
        f"/run/{sqlite_store.second}/task/6"
    assert row.locator("td[data-col=used_by] a.task-link").get_attribute("href") == \
        f"/run/{sqlite_store.second}/task/7"


def test_search_by_part_of_the_path_and_by_sha256_prefix(sqlite_store, dashboard, page):
    path, digest = hello(sqlite_store)
    page.goto(dashboard.base + "/files")
    settle(page)
    page.fill("#files-search", digest[:10])
    page.press("#files-search", "Enter")
    page.wait_for_function("() => document.querySelectorAll('#files tbody tr').length === 1")
    assert table_rows(page, "files")[0]["url"] == str(path)
    page.fill("#files-search", "noisy.e")
    page.press("#files-search", "Enter")
    page.wait_for_function("() => [...document.querySelectorAll('#files td[data-col=url]')]"
                           ".every(td => td.innerText.endsWith('noisy.err'))")
    assert len(table_rows(page, "files")) == 2  # noisy.err grew in the second run: two contents, two records
    page.fill("#files-search", "no file is called this")
    page.press("#files-search", "Enter")
    page.wait_for_selector("text=No file matches 'no file is called this'")
    page.goto(dashboard.base + "/files?q=hello.tx")
    settle(page)
    assert [row["url"] for row in table_rows(page, "files")] == [str(path)]


def test_a_click_opens_the_file_page_which_says_its_content_still_matches(sqlite_store, dashboard, page, engine):
    path, digest = hello(sqlite_store)
    page.goto(dashboard.base + "/files?q=hello.tx")
    settle(page)
    page.click(f"#files a:has-text('{path}')")
    page.wait_for_url(f"**/file/{hello_id(engine, path)}")
    settle(page)
    assert page.inner_text("#page-title") == "File: hello.txt"
    assert page.inner_text("#file-sha256") == digest
    assert page.inner_text("#file-disk").startswith("exists and its content still matches the recorded sha256")
    made = table_rows(page, "file-producers")
    assert {(row["run_id"], row["task_id"], row["app"]) for row in made} == {
        (sqlite_store.first[:8], "6", "write"), (sqlite_store.second[:8], "6", "write")}
    uses = table_rows(page, "file-uses")
    assert {(row["role"], row["app"]) for row in uses} == {("output", "write"), ("input", "count_chars")}
    page.click(f"#file-producers a[href='/run/{sqlite_store.first}/task/6']")
    page.wait_for_url(f"**/run/{sqlite_store.first}/task/6")


def test_the_file_page_shows_where_hello_came_from_and_what_read_it(sqlite_store, dashboard, page, engine):
    path, _digest = hello(sqlite_store)
    page.goto(f"{dashboard.base}/file/{hello_id(engine, path)}")
    settle(page)
    tasks = "els => els.map(e => e.dataset.task)"
    # the earliest writer is followed, the second run's writer listed as also writing the same content
    assert page.eval_on_selector_all("#file-lineage-back li.lineage-task", tasks) == [
        f"{sqlite_store.first}:6", f"{sqlite_store.second}:6"]
    assert "also written by write (task 6)" in page.inner_text("#file-lineage-back")
    assert sorted(page.eval_on_selector_all("#file-lineage-forward li.lineage-task", tasks)) == sorted([
        f"{sqlite_store.first}:7", f"{sqlite_store.second}:7"])
    assert "read by count_chars (task 7)" in page.inner_text("#file-lineage-forward")
    page.click(f"#file-lineage-forward a[href='/run/{sqlite_store.second}/task/7']")
    page.wait_for_url(f"**/run/{sqlite_store.second}/task/7")


def test_a_deleted_file_no_longer_exists_and_an_edited_one_changed(changed, page):
    base = changed["dashboard"].base
    page.goto(f"{base}/file/{changed['ids']['gone.txt']}")
    settle(page)
    assert page.inner_text("#file-disk").startswith("no longer exists at this path")
    assert table_rows(page, "file-producers")[0]["app"] == "write"  # still recorded: where it came from
    page.goto(f"{base}/file/{changed['ids']['edited.txt']}")
    settle(page)
    assert page.inner_text("#file-disk").startswith("exists, but its content changed since it was recorded")
    page.goto(f"{base}/file/{changed['ids']['kept.txt']}")
    settle(page)
    assert "still matches" in page.inner_text("#file-disk")


def test_the_run_files_tab_lists_noisy_err_as_stderr_and_hello_as_output(sqlite_store, dashboard, page, engine):
    path, _ = hello(sqlite_store)
    page.goto(f"{dashboard.base}/run/{sqlite_store.first}/files")
    settle(page)
    assert page.locator("#run-tabs a.active").inner_text() == "Files"
    stderr = table_rows(page, "run-files-stderr")
    assert len(stderr) == 1 and stderr[0]["url"].endswith("noisy.err") and stderr[0]["app"] == "noisy"
    assert page.get_attribute("#run-files-stderr td[data-col=task_id] a", "href") == \
        f"/run/{sqlite_store.first}/task/18"
    outputs = table_rows(page, "run-files-output")
    assert [(row["url"], row["app"]) for row in outputs] == [(str(path), "write")]
    assert page.get_attribute("#run-files-output td[data-col=url] a", "href") == f"/file/{hello_id(engine, path)}"
    assert [row["app"] for row in table_rows(page, "run-files-input")] == ["count_chars"]


def test_a_run_without_files_says_so(sqlite_store, dashboard, page):
    page.goto(f"{dashboard.base}/run/{sqlite_store.htex}/files")
    settle(page)
    assert "This run recorded no files" in page.inner_text("#run-files")


def test_a_file_or_run_that_does_not_exist_is_a_message(dashboard, page):
    page.goto(dashboard.base + "/file/987654")
    settle(page)
    assert "There is no file 987654 in this store" in page.inner_text(".notice")
    page.goto(dashboard.base + "/file/not-a-number")
    settle(page)
    assert "'not-a-number' is not a file id" in page.inner_text(".notice")
    page.goto(dashboard.base + "/run/no-such-run/files")
    settle(page)
    assert "There is no run 'no-such-run' in this store" in page.inner_text(".notice")


# --- the read functions ------------------------------------------------------------------------------
def test_files_match_the_store_newest_first(sqlite_store, engine):
    path, digest = hello(sqlite_store)
    (count,), = store_rows(engine, "SELECT count(*) FROM file")
    page = files(engine)
    assert page.total == count and [item["file_id"] for item in page.items] == sorted(
        (item["file_id"] for item in page.items), reverse=True)
    found = files(engine, digest[:8]).items
    assert [item["url"] for item in found] == [str(path)]
    assert found[0]["made_by"]["run_id"] == sqlite_store.second and found[0]["made_by"]["app"] == "write"
    assert files(engine, "100%_not_a_wildcard").total == 0  # % and _ are matched as themselves
    assert files(engine, "hello.txt", limit=0).more == 1


def test_file_detail_lists_every_use_and_raises_for_an_unknown_id(sqlite_store, engine):
    path, _ = hello(sqlite_store)
    detail = file_detail(engine, hello_id(engine, path))
    assert detail.roles == {"input": 2, "output": 2}
    assert {use["run_id"] for use in detail.producers} == {sqlite_store.first, sqlite_store.second}
    assert detail.base_dir == str(sqlite_store.root / "threads")
    with pytest.raises(FileNotFound):
        file_detail(engine, 987654)


def test_run_files_by_role(sqlite_store, engine):
    pages = run_files(engine, sqlite_store.first)
    assert list(pages) == ["input", "output", "stderr"]
    assert pages["stderr"].items[0]["task_id"] == 18
    with pytest.raises(RunNotFound):
        run_files(engine, "no-such-run")


def test_run_files_pages_through_a_role(changed):
    """Each role is read a page at a time; the pager links to the neighbouring pages of that role
    and keeps the other roles' pages."""
    from parsl_repro.viz.pages.run_files import role_pager

    engine = changed["engine"]
    [(run, role, total)] = store_rows(engine, "SELECT run_id, role, count(*) AS n FROM file_use "
                                              "WHERE role = 'output' GROUP BY run_id, role")
    assert total == 3
    every = [(use["task_id"], use["file_id"]) for use in run_files(engine, run, limit=total)[role].items]
    assert len(every) == total
    middle = run_files(engine, run, limit=1, offsets={role: 1})
    assert [(use["task_id"], use["file_id"]) for use in middle[role].items] == every[1:2]
    assert (middle[role].offset, middle[role].more) == (1, total - 2)
    assert run_files(engine, run, limit=1, offsets={role: 10 ** 6})[role].items  # past the end: the last page
    links = role_pager(run, role, middle).to_plotly_json()["props"]["children"]
    hrefs = {link.id: link.href for link in links if hasattr(link, "href")}
    assert hrefs == {f"run-files-{role}-previous": f"/run/{run}/files",
                     f"run-files-{role}-next": f"/run/{run}/files?from_{role}=2"}
    assert role_pager(run, role, run_files(engine, run, limit=total)) is None


def test_check_on_disk_hashes_only_regular_files_under_the_limit(tmp_path):
    data = tmp_path / "data.bin"
    data.write_bytes(b"x" * 100)
    digest = hashlib.sha256(b"x" * 100).hexdigest()
    assert check_on_disk(str(data), digest, 100).matches is True
    assert check_on_disk(f"file://{data}", digest, 100).matches is True
    large = check_on_disk(str(data), digest, 100, hash_limit=10)
    assert large.matches is None and "not checked" in large.note
    assert check_on_disk(str(data), digest, 99).matches is False  # the size alone tells
    assert check_on_disk(str(data), "0" * 64, 100).matches is False
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert "not a regular file" in check_on_disk(str(fifo), digest, 100).note  # never opened: it would block
    assert check_on_disk("https://example.org/data.bin", digest, 100).path is None
    assert local_path("data.bin", str(tmp_path)) == str(data) and local_path("data.bin") is None
    assert check_on_disk("data.bin", digest, 100).note.startswith("a relative path")
