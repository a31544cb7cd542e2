"""Fixtures for the dashboard tests: stores filled by real runs, the real ``parsl-visualize``
server on loopback, and headless Chromium driven by Playwright (Debian's ``chromium``, installed by
scripts/system-packages.sh; ``playwright install`` cannot download here).

Screenshots of every page a test visits are written under ``test-artifacts/screenshots/`` (or
``$PARSL_REPRO_TEST_ARTIFACTS``), never committed.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from parsl_repro.monitoring.engine import make_engine
from tests.viz import workflows

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("PARSL_REPRO_TEST_ARTIFACTS") or REPO / "test-artifacts") / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def run_script(directory: Path, source: str, *args: str, env: dict | None = None, timeout: float = 180) -> str:
    """Write ``source`` as wf.py in ``directory`` and run it there, as a user would."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "wf.py").write_text(source)
    done = subprocess.run([sys.executable, "wf.py", *args], cwd=directory, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    assert done.returncode == 0, f"workflow failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def start_script(directory: Path, source: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    """Start ``source`` as wf.py in ``directory``; returns once it printed "started"."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "wf.py").write_text(source)
    process = subprocess.Popen([sys.executable, "wf.py", *args], cwd=directory, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env={**os.environ, **(env or {})},
                               start_new_session=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "started"
    return process


def wait_for(condition, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def scalar(url: str, sql: str, **params):
    engine = make_engine(url, writer=False)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()
    finally:
        engine.dispose()


@dataclass
class Store:
    """A store filled by real runs, with the run ids the tests visit."""

    url: str
    root: Path
    first: str = ""  # threads workflow, first run
    second: str = ""  # the same again: memo hits
    htex: str = ""
    killed: str = ""

    def run_ids(self) -> list[str]:
        engine = make_engine(self.url, writer=False)
        try:
            with engine.connect() as conn:
                return [r[0] for r in conn.execute(text("SELECT run_id FROM workflow ORDER BY time_began"))]
        finally:
            engine.dispose()


def fill(root: Path, url: str, *, with_htex: bool = True, with_killed: bool = True) -> Store:
    env = {"PARSL_REPRO_PROVENANCE_URL": url}
    store = Store(url, root)
    work = root / "threads"
    run_script(work, workflows.THREADS, env=env)
    run_script(work, workflows.THREADS, env=env)
    store.first, store.second = store.run_ids()[-2:]
    if with_htex:
        run_script(root / "htex", workflows.HTEX, env=env)
        store.htex = store.run_ids()[-1]
    if with_killed:
        process = start_script(root / "killed", workflows.SLOW, "6", "60", env=env)
        latest = "(SELECT run_id FROM workflow ORDER BY time_began DESC LIMIT 1)"
        wait_for(lambda: scalar(url, f"SELECT count(*) FROM task WHERE task_status_name = 'launched' "
                                     f"AND run_id = {latest}") == 6, what="six tasks in flight")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        store.killed = store.run_ids()[-1]
    return store


@pytest.fixture(scope="session")
def sqlite_store(tmp_path_factory) -> Store:
    """One SQLite store: the threads workflow twice (memo hits), an HTEX run, a killed run."""
    root = tmp_path_factory.mktemp("viz-sqlite")
    (root / "runinfo").mkdir()
    from parsl_repro.monitoring.engine import default_url, prepare_default_store
    prepare_default_store(str(root / "runinfo"))
    return fill(root, default_url(str(root / "runinfo")))


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    from tests.pg_server import PostgresServer

    server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_store(tmp_path_factory, postgres) -> Store:
    """A PostgreSQL store: the threads workflow twice."""
    return fill(tmp_path_factory.mktemp("viz-pg"), postgres.fresh_database("viz"), with_htex=False,
                with_killed=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dashboard:
    """``parsl-visualize URL`` running in a subprocess on a free loopback port."""

    def __init__(self, url: str, log: Path, *extra: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log  # its stderr (the request log, and any traceback): a file, so it never blocks on a pipe
        with open(log, "w") as err:
            self.process = subprocess.Popen([sys.executable, "-m", "parsl_repro.viz.cli", url, "-p", str(self.port),
                                             "--refresh", "0.5", *extra], stdout=subprocess.DEVNULL, stderr=err)
        wait_for(self._ready, 60, "the dashboard to answer")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"parsl-visualize exited: {self.log.read_text()}")
        try:
            with urllib.request.urlopen(self.base + "/_dash-layout", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> str:
        """Stop it; returns what it wrote to stderr (tracebacks would show there)."""
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.log.read_text()


@pytest.fixture(scope="session")
def dashboard(sqlite_store, tmp_path_factory):
    server = Dashboard(sqlite_store.url, tmp_path_factory.mktemp("dashboard") / "stderr.log")
    yield server
    err = server.stop()
    assert "Traceback" not in err, err


@pytest.fixture(scope="session")
def chromium():
    """Headless Chromium through Playwright; the system package is installed if missing."""
    subprocess.run(["bash", str(REPO / "scripts/system-packages.sh"), "chromium:chromium"], check=True)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, request):
    """A fresh browser page; on teardown, a screenshot of it named after the test."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    screenshot(tab, request.node.name)
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def screenshot(tab, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        tab.screenshot(path=str(ARTIFACTS / (re.sub(r"[^\w.-]+", "_", name) + ".png")), full_page=True)
    except Exception:  # a screenshot is a by-product: it never fails a test
        pass


def settle(tab) -> None:
    """Wait until Dash has drawn the page: its layout is in and no callback is pending."""
    tab.wait_for_selector("#page-title", timeout=20_000)
    tab.wait_for_function("() => !document.querySelector('[data-dash-is-loading=\"true\"]')", timeout=20_000)


@pytest.fixture(scope="module")
def engine(sqlite_store):
    """A read-only engine on the session's SQLite store, as the dashboard opens it."""
    from parsl_repro.monitoring.engine import open_for_reading

    reader = open_for_reading(sqlite_store.url)
    yield reader
    reader.dispose()


def store_rows(engine, sql: str, **params) -> list[tuple]:
    """The rows of ``sql`` as tuples."""
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql), params)]


def table_rows(page, table_id: str) -> list[dict[str, str]]:
    """The rows of the page's table ``table_id`` as {column key: shown text}."""
    return page.eval_on_selector_all(f"#{table_id} tbody tr", """rows => rows.map(row => Object.fromEntries(
        [...row.querySelectorAll('td')].map(td => [td.dataset.col, td.innerText])))""")


def figure_data(page, graph_id: str) -> list[dict]:
    """The traces plotly drew in the graph ``graph_id`` (waits until it has drawn them)."""
    selector = f"#{graph_id} .js-plotly-plot"
    page.wait_for_function(f"() => {{ const g = document.querySelector('{selector}'); "
                           f"return g && g.data && g.data.length > 0 && g.querySelector('.main-svg'); }}",
                           timeout=20_000)
    return page.evaluate(f"() => JSON.parse(JSON.stringify(document.querySelector('{selector}').data))")


@pytest.fixture(scope="module")
def first_run(engine, sqlite_store):
    """The read engine and the first threads run's task ids by app."""
    ids: dict[str, list[int]] = {}
    for task_id, app in store_rows(engine, "SELECT task_id, task_func_name FROM task WHERE run_id = :r "
                                           "ORDER BY task_id", r=sqlite_store.first):
        ids.setdefault(app, []).append(task_id)
    return engine, ids
