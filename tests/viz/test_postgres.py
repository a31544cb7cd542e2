"""The dashboard on a PostgreSQL store (a real server on loopback, scripts/postgres.sh): every page
of a run draws what the store holds, with no error in the page, and the password of the URL is
never shown."""
from __future__ import annotations

import pytest

from tests.viz.conftest import Dashboard, settle

PAGES = ["/", "/run/{run}", "/run/{run}/graph", "/run/{run}/failures", "/run/{run}/apps", "/run/{run}/task/8",
         "/run/{run}/resources", "/run/{run}/files", "/files", "/compare?a={first}&b={run}"]


@pytest.fixture(scope="module")
def pg_dashboard(postgres_store, tmp_path_factory):
    server = Dashboard(postgres_store.url, tmp_path_factory.mktemp("pg-dashboard") / "stderr.log")
    yield server
    log = server.stop()
    assert "Traceback" not in log, log


@pytest.mark.parametrize("path", PAGES)
def test_every_page_draws_from_postgresql(postgres_store, pg_dashboard, page, path):
    page.goto(pg_dashboard.base + path.format(run=postgres_store.second, first=postgres_store.first))
    settle(page)
    text = page.inner_text("body")
    assert page.locator(".notice.error").count() == 0, text
    assert "not built yet" not in text
    password = postgres_store.url.split(":")[2].split("@")[0]
    assert password not in page.content()
    if path == "/":
        assert postgres_store.second[:8] in text and postgres_store.first[:8] in text
    elif path.endswith("/task/8"):
        assert "explode" in text and "bad value 7" in text
    elif path.endswith("/failures"):
        assert "ValueError" in text and "noisy" in text
    elif path.endswith("/apps"):
        assert "square" in text and "count_chars" in text
    elif path == "/files":
        assert "hello.txt" in text
