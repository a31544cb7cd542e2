"""Dashboard benchmark: our ``parsl-visualize`` (Dash) vs real Parsl's ``parsl-visualize`` (Flask), page by page.

1. Fill a store with one workflow run per size in ``--sizes`` (10,000 and 100,000 tasks) plus, for each, a
   re-run of its first tenth (mostly memo hits of the first run, one app changed, one package bumped: what
   the compare page compares). The rows are made up, not run, and written with bulk INSERTs through
   SQLAlchemy Core into our tables (``parsl_repro.monitoring.models``, schema made by ``ensure_schema``), in
   the shape our writer gives them: a workflow of groups of ten tasks (a bash ``fetch_input`` writing a
   chunk file, six cached ``simulate`` reading it, an ``analyze`` on GPU nodes, a bash ``plot_results``, a
   ``summarize`` join app), on three executors (threads, a CPU HTEX of 4 blocks x 8 workers of which one
   block fails at 70% and is replaced, a GPU HTEX of 2 blocks x 4 workers), list-scheduled over about an
   hour; a third of the executed tasks are retried (``retries=2``), 1% fail for good and their dependants
   dep_fail, 10% of simulations are memo hits, ~2-3 resource samples per HTEX try, files and file uses,
   nodes, blocks, dependency edges, arguments, results and app rows with their source. Every column that
   Parsl's visualizer reads (``parsl/monitoring/visualization``: models, views, plots) is filled. The store
   is cached under ``bench/.venvs/viz-stores`` keyed by the sizes (and the schema and fill versions), so a
   rerun skips the fill (``--refill`` forces it); ``--db URL`` fills (once) and uses another database.
2. Start our dashboard (``python -m parsl_repro.viz.cli DB -p PORT``) and real Parsl's ``parsl-visualize``
   (``parsl[monitoring,visualization]`` pinned as ``core_threads.py`` pins Parsl, in ``bench/.venvs/parsl-viz``,
   created on first use) on the same database, and measure their pages taking turns page by page (so a burst
   of other work on this shared machine hits both rather than all of one).
3. Per page and size, in headless Chromium through Playwright (the system Chromium, launched as
   tests/viz/conftest.py launches it), the median of ``--repeats`` loads after ``--warmup`` loads, each in a
   fresh tab of one browser context (so scripts come from the browser's cache after the warm-up); a load
   slower than 20 s is the page's only one:
   - server ms: time to first byte of the requests that produce the page, from Resource/Navigation Timing
     (``responseStart - requestStart``): for ours the ``_dash-update-component`` callbacks that render the
     page (summed), for Parsl's the page itself (Flask renders it whole before answering);
   - drawn ms: from navigation start until every plotly figure on the page is drawn (``.js-plotly-plot``
     with its layout and SVG), no Dash callback is in flight or marked loading, and the DOM has been still
     for 0.5 s (the drawn time is the last change before that quiet half second).
   A page that takes longer than ``--timeout`` (120 s) is reported as timed out, and its server is
   restarted so the abandoned request does not run on in the background; an HTTP error is reported as such.
4. Peak RSS of each dashboard process (and its children), sampled with psutil while its pages load.

Parsl's pages load jQuery, Bootstrap and plotly.js from CDNs, which this machine cannot reach. A stand-in for
``https://cdn.plot.ly`` in this process serves the plotly.min.js of the plotly package in Parsl's venv (Chromium
resolves the name to it with ``--host-resolver-rules`` and trusts its self-signed certificate by its key with
``--ignore-certificate-errors-spki-list``); every other outside name resolves to nothing, so those requests fail
at once (the pages are unstyled, but every figure draws). Nothing is intercepted with Playwright's routing,
which would turn the browser's HTTP cache off: after the warm-up, plotly.js (ours and Parsl's alike) and our
Dash bundles come from the cache, as on a user's second visit. Parsl's DAG pages lay the graph out with
Graphviz's ``dot``, installed with ``scripts/system-packages.sh dot:graphviz`` when missing.

Goals (issue 11): every page of ours under 1 s server time and under 2 s to drawn figures at 100,000 tasks,
and faster than Parsl's on every shared page. Exit status: 0 goals met, 1 a goal missed, 2 the harness
failed (a server did not start, a store could not be filled).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import heapq
import http.server
import json
import math
import os
import pickle
import random
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from core_threads import BENCH_DIR, DEFAULT_OURS_PYTHON, PARSL_VERSION, ensure_venv
from sqlalchemy import Engine, Table, func, inspect, select, text

from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.engine import make_engine
from parsl_repro.monitoring.schema import ensure_schema
from parsl_repro.version import VERSION

REPO = BENCH_DIR.parent
DEFAULT_PARSL_VIZ_VENV = BENCH_DIR / ".venvs" / "parsl-viz"
STORE_DIR = BENCH_DIR / ".venvs" / "viz-stores"
CDN_DIR = BENCH_DIR / ".venvs" / "viz-cdn"
FILL_VERSION = 2
"""Bump when the fill's shape changes: cached stores of another version are not reused."""
FILL_KEY = "bench_viz_fill"
"""The ``schema_info`` key where a filled store records what it holds (sizes, run ids, the task to show)."""
SEED = 20261206
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 1000}
SERVER_GOAL_MS = 1000.0
DRAWN_GOAL_MS = 2000.0
GOAL_SIZE = 100_000
QUIET_MS = 500
SLOW_LOAD_MS = 20_000
"""A load slower than this is the page's only timed load (a warm cache cannot matter to it); the run stays short."""
STUB_TEXT = "This view is not built yet"
SQL_PREFIX = "BENCH_VIZ_SQL "
"""Marks a statement's timing in the log of our dashboard run with ``--sql-profile``."""

# --------------------------------------------------------------------------------------------------------------
# The fill: a made-up workflow, written as our writer writes a real one.
# --------------------------------------------------------------------------------------------------------------

ROOT = "/scratch/alice/ensemble"
HOST = "login01.hpc.example.org"
USER = "alice"
KERNEL_PID = 40213
RETRIES = 2
SPAN_S = 3300.0  # the main runs' executors are kept busy for about this long
BASE_TIME = dt.datetime(2026, 3, 2, 8, 0, 0)  # naive UTC, as the store keeps times
GROUP = ("fetch_input", *["simulate"] * 6, "analyze", "plot_results", "summarize")


@dataclass(frozen=True)
class AppSpec:
    kind: str
    executor: str
    units: float  # relative duration
    cache: bool
    source: str


APPS = {
    "fetch_input": AppSpec("bash", "threads", 1.0, False, '''@bash_app
def fetch_input(chunk, outputs=(), stdout=None, stderr=None):
    """Download one chunk of the forcing data set."""
    return f"curl -fsS https://data.example.org/era5/{chunk}.csv -o {outputs[0]}"
'''),
    "simulate": AppSpec("python", "htex_cpu", 4.0, True, '''@python_app(cache=True)
def simulate(inputs=(), seed=0, steps=2000, dt=0.01):
    """Integrate one ensemble member over the chunk; returns the member's mean anomaly."""
    import numpy as np
    from ensemble.model import Model

    forcing = np.loadtxt(inputs[0], delimiter=",")
    model = Model(forcing, rng=np.random.default_rng(seed))
    for step in range(steps):
        model.advance(dt)
        if not np.isfinite(model.state).all():
            raise ValueError(f"simulation diverged at step {step} (dt={dt})")
    return float(model.state.mean())
'''),
    "analyze": AppSpec("python", "htex_gpu", 6.0, True, '''@python_app(cache=True)
def analyze(*members, outputs=()):
    """Fit the ensemble's spread on the GPU and write the summary as JSON."""
    import json

    import cupy as cp

    values = cp.asarray(members)
    summary = {"mean": float(values.mean()), "std": float(values.std()), "n": len(members)}
    with open(outputs[0], "w") as f:
        json.dump(summary, f)
    return summary
'''),
    "plot_results": AppSpec("bash", "threads", 1.5, False, '''@bash_app
def plot_results(summary, inputs=(), outputs=(), stdout=None, stderr=None):
    """Render the chunk's figure with gnuplot."""
    return f"gnuplot -e \\"in='{inputs[0]}'; out='{outputs[0]}'\\" plot_summary.gp"
'''),
    "summarize": AppSpec("join", "_parsl_internal", 0.0, False, '''@join_app
def summarize(summary, figure):
    """Wait for the chunk's figure, then hand back the summary with it."""
    return figure
'''),
}
ANALYZE_V2 = APPS["analyze"].source.replace('"n": len(members)}', '"n": len(members), "median": '
                                            'float(cp.median(values))}')
PACKAGES = [("numpy", "2.3.1"), ("scipy", "1.16.0"), ("cupy-cuda12x", "13.4.1"), ("pandas", "2.3.0"),
            ("xarray", "2025.6.1"), ("netCDF4", "1.7.2"), ("matplotlib", "3.10.3"), ("dill", "0.4.0"),
            ("parsl-repro", VERSION), ("pyzmq", "27.0.0"), ("psutil", "7.0.0"), ("sqlalchemy", "2.0.41"),
            ("typeguard", "4.4.4"), ("tblib", "3.1.0"), ("rich", "14.0.0"), ("requests", "2.32.4")]
TRACEBACK = '''Traceback (most recent call last):
  File "/home/alice/.venv/lib/python3.11/site-packages/parsl_repro/executors/high_throughput/process_worker_pool.py", \
line 903, in worker
    result = execute_task(req['buffer'])
  File "/scratch/alice/ensemble/workflow.py", line {line}, in {app}
    {code}
{error}
'''


def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass
class Worker:
    executor: str
    block_id: str | None
    hostname: str
    manager: str | None
    pid: int
    start: float  # seconds from the run's start when it takes tasks
    end: float = math.inf  # when its block died


@dataclass
class BlockSpec:
    executor: str
    block_id: str
    job_id: str
    hostname: str
    manager: str
    workers: int
    start: float
    failed_at: float | None = None


class Sink:
    """Rows buffered per table, written in batches with executemany."""

    def __init__(self, engine: Engine, batch: int = 20_000) -> None:
        self.engine = engine
        self.batch = batch
        self.buffers: dict[Table, list[dict[str, Any]]] = {}
        self.counts: Counter[str] = Counter()
        self._columns = {table: {c.name for c in table.c} for table in m.Base.metadata.tables.values()}

    def add(self, model: type, row: dict[str, Any]) -> None:
        table = model.__table__
        buffer = self.buffers.setdefault(table, [])
        buffer.append(row)
        if len(buffer) >= self.batch:
            self.flush(table)

    def flush(self, table: Table | None = None) -> None:
        for t in [table] if table is not None else list(self.buffers):
            buffer = self.buffers.get(t)
            if not buffer:
                continue
            columns = self._columns[t]
            if not set(buffer[0]) <= columns:  # a column this schema version lacks: leave it out
                buffer = [{k: v for k, v in row.items() if k in columns} for row in buffer]
            with self.engine.begin() as conn:
                conn.execute(t.insert(), buffer)
            self.counts[t.name] += len(buffer)
            self.buffers[t] = []


class RunFiller:
    """Makes up one run's rows, task by task in id order (a list scheduler places the tries on workers)."""

    def __init__(self, sink: Sink, rng: random.Random, files: dict[tuple[str, str], int], next_file_id: list[int],
                 arguments: set[str]) -> None:
        self.sink, self.rng, self.files, self.next_file_id, self.arguments = sink, rng, files, next_file_id, arguments
        self.keys: set[str] = set()  # environments and apps written (shared by the runs that have them)

    # -- the executors -----------------------------------------------------------------------------------------
    def _blocks(self) -> list[BlockSpec]:
        rng = self.rng
        blocks = []
        for b in range(4):
            blocks.append(BlockSpec("htex_cpu", str(b), str(rng.randint(100000, 999999)), f"cpu{b + 1:03d}",
                                    f"{rng.getrandbits(48):012x}", 8, 20.0 + 8 * b))
        blocks[2].failed_at = 0.7 * SPAN_S
        blocks.append(BlockSpec("htex_cpu", "4", str(rng.randint(100000, 999999)), "cpu005",
                                f"{rng.getrandbits(48):012x}", 8, 0.7 * SPAN_S + 90))
        for b in range(2):
            blocks.append(BlockSpec("htex_gpu", str(b), str(rng.randint(100000, 999999)), f"gpu{b + 1:03d}",
                                    f"{rng.getrandbits(48):012x}", 4, 25.0 + 10 * b))
        return blocks

    def _workers(self, blocks: list[BlockSpec]) -> dict[str, list[Worker]]:
        workers: dict[str, list[Worker]] = {"threads": [Worker("threads", None, HOST, None, KERNEL_PID, 0.0)
                                                        for _ in range(4)]}
        for block in blocks:
            for _ in range(block.workers):
                workers.setdefault(block.executor, []).append(Worker(
                    block.executor, block.block_id, block.hostname, block.manager, self.rng.randint(2000, 60000),
                    block.start, block.failed_at if block.failed_at is not None else math.inf))
        return workers

    # -- files ---------------------------------------------------------------------------------------------------
    def _file(self, path: str, version: int, when: dt.datetime, small: bool = False) -> int:
        url = f"{ROOT}/{path}"
        sha = _digest(url, version)
        key = (url, sha)
        file_id = self.files.get(key)
        if file_id is None:
            file_id = self.files[key] = self.next_file_id[0]
            self.next_file_id[0] += 1
            size = int(sha[:8], 16) % (4_000 if small else 40_000_000) + (100 if small else 2_000_000)
            self.sink.add(m.File, {"file_id": file_id, "url": url, "sha256": sha, "size": size,
                                   "mtime": when.replace(tzinfo=dt.UTC).timestamp()})
        return file_id

    def _use(self, run_id: str, task_id: int, try_id: int, file_id: int, role: str, when: dt.datetime) -> None:
        self.sink.add(m.FileUse, {"run_id": run_id, "task_id": task_id, "try_id": try_id, "file_id": file_id,
                                  "role": role, "timestamp": when})

    # -- one run -------------------------------------------------------------------------------------------------
    def fill(self, run_id: str, n: int, begin: dt.datetime, index: int,
             main: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write a run of ``n`` tasks (a re-run of ``main``'s first ``n`` when given); returns what the
        benchmark needs of it, and, for a main run, what a re-run reuses."""
        rng, sink = self.rng, self.sink

        def stamp(seconds: float) -> dt.datetime:
            return begin + dt.timedelta(seconds=seconds)

        rerun = main is not None
        blocks = self._blocks()
        workers = self._workers(blocks)
        heaps: dict[str, list[tuple[float, int, int]]] = {}
        for executor, ws in workers.items():
            heaps[executor] = [(w.start, i, i) for i, w in enumerate(ws)]
            heapq.heapify(heaps[executor])
        groups = math.ceil((main["n"] if rerun else n) / 10)
        units = main["units"] if rerun else {  # seconds per duration unit, so each executor is busy ~SPAN_S
            "threads": SPAN_S * 4 / (groups * 2.5 * 1.3),
            "htex_cpu": SPAN_S * 32 / (groups * 6 * 4.0 * 0.9 * 1.3),
            "htex_gpu": SPAN_S * 8 / (groups * 6.0 * 1.3)}
        app_digests = {name: _digest("app", name, ANALYZE_V2 if rerun and name == "analyze" else spec.source)
                       for name, spec in APPS.items()}
        state: list[str] = [""] * n
        done_at: list[float] = [0.0] * n
        hashsum: list[str | None] = [None] * n
        args_digest: list[str] = [""] * n
        chain_of: list[list[int]] = [[] for _ in range(n)]  # a failure's path back to the task that failed first
        error_of: list[str] = [""] * n  # and that task's error
        counts: Counter[str] = Counter()
        show_task: int | None = None
        seq = [0]

        def place(executor: str, ready: float, duration: float) -> tuple[Worker, float, float, bool]:
            heap, ws = heaps[executor], workers[executor]
            while True:
                free, _, wi = heapq.heappop(heap)
                w = ws[wi]
                start = max(ready + 0.002, free + 0.001, w.start)
                if start < w.end:
                    break
            end = start + duration
            lost = end > w.end
            if lost:
                end = w.end
            else:
                seq[0] += 1
                heapq.heappush(heap, (end, seq[0], wi))
            return w, start, end, lost

        def status(tid: int, try_id: int, name: str, when: float, previous: str | None, cause: str,
                   detail: str | None = None) -> None:
            sink.add(m.Status, {"run_id": run_id, "task_id": tid, "try_id": try_id, "task_status_name": name,
                                "timestamp": stamp(when), "previous_status_name": previous, "cause": cause,
                                "detail": detail})

        def edges(tid: int) -> tuple[list[int], list[int], list[int]]:
            """A task's data dependencies, the tasks it joins, and the tasks that wait on it."""
            base, pos = tid - tid % 10, tid % 10
            deps = {0: [], 7: list(range(base + 1, base + 7)), 8: [base + 7], 9: [base + 7]}.get(pos, [base])
            joins = [base + 8] if pos == 9 else []
            after = {0: list(range(base + 1, base + 7)), 7: [base + 8, base + 9], 8: [base + 9], 9: []}.get(
                pos, [base + 7])
            return [d for d in deps if d < n], [d for d in joins if d < n], [d for d in after if d < n]

        # Tasks are placed in the order they become ready (a list scheduler), as an executor sees them.
        waiting = [sum(map(len, edges(tid)[:2])) for tid in range(n)]
        ready_queue = [(0.5 + tid * 4e-5, tid) for tid in range(n) if not waiting[tid]]
        heapq.heapify(ready_queue)
        while ready_queue:
            _, tid = heapq.heappop(ready_queue)
            g, pos = divmod(tid, 10)
            app = GROUP[pos]
            spec = APPS[app]
            base = g * 10
            chunk = f"data/chunk_{g:06d}.csv"
            seed = pos
            deps, joins, after = edges(tid)
            invoked = 0.5 + tid * 4e-5
            chain: list[int] = []
            root_error = ""
            task: dict[str, Any] = {
                "run_id": run_id, "task_id": tid, "task_depends": ",".join(map(str, deps)) or None,
                "task_func_name": app, "task_memoize": str(spec.cache), "task_hashsum": None,
                "task_inputs": None, "task_outputs": None, "task_stdin": None, "task_stdout": None,
                "task_stderr": None, "task_time_invoked": stamp(invoked), "task_time_returned": None,
                "task_fail_count": 0, "task_fail_cost": 0.0, "task_status_name": "pending", "app_kind": spec.kind,
                "app_digest": app_digests[app], "executor": spec.executor, "args_repr": None,
                "memo_components": None, "cache_note": None, "result_digest": None, "args_digest": None,
                "args_note": None, "command": None, "memo_source_run": None, "memo_source_task": None,
                "error": None, "traceback": None}
            if app == "fetch_input":
                task["task_outputs"] = f"[File('{chunk}')]"
                task["task_stdout"], task["task_stderr"] = f"logs/fetch_{g:06d}.out", f"logs/fetch_{g:06d}.err"
                task["args_repr"] = f"('{chunk[5:-4]}', outputs=[File('{chunk}')], stdout='logs/fetch_{g:06d}.out'," \
                                    f" stderr='logs/fetch_{g:06d}.err')"
                task["command"] = f"curl -fsS https://data.example.org/era5/{chunk[5:-4]}.csv -o {chunk}"
                args: tuple[Any, ...] = ((chunk[5:-4],), {"outputs": [chunk]})
            elif app == "simulate":
                task["task_inputs"] = f"[<output '{chunk}' of task {base}>]"
                task["args_repr"] = f"(inputs=[<output '{chunk}' of task {base}>], seed={seed})"
                args = ((), {"inputs": [chunk], "seed": seed})
            elif app == "analyze":
                task["task_outputs"] = f"[File('results/analysis_{g:06d}.json')]"
                task["args_repr"] = "(" + ", ".join(f"<result of task {d}>" for d in deps) + \
                                    f", outputs=[File('results/analysis_{g:06d}.json')])"
                args = (tuple(deps), {"outputs": [f"results/analysis_{g:06d}.json"]})
            elif app == "plot_results":
                task["task_inputs"] = f"[File('results/analysis_{g:06d}.json')]"
                task["task_outputs"] = f"[File('plots/fig_{g:06d}.png')]"
                task["task_stdout"], task["task_stderr"] = f"logs/plot_{g:06d}.out", f"logs/plot_{g:06d}.err"
                task["args_repr"] = f"(<result of task {base + 7}>, inputs=[File('results/analysis_{g:06d}.json')]," \
                                    f" outputs=[File('plots/fig_{g:06d}.png')])"
                task["command"] = f"gnuplot -e \"in='results/analysis_{g:06d}.json'; out='plots/fig_{g:06d}.png'\"" \
                                  " plot_summary.gp"
                args = ((base + 7,), {})
            else:
                task["args_repr"] = f"(<result of task {base + 7}>, <result of task {base + 8}>)"
                args = ((base + 7, base + 8), {})
            digest = _digest("args", run_id if app in ("analyze", "summarize", "plot_results") else "", args)
            memo_source: tuple[str, int] | None = None
            if app == "simulate":
                if rerun and main["state"][tid] == "exec_done":
                    memo_source = (main["run_id"], tid)
                    digest, key = main["args_digest"][tid], main["hashsum"][tid]
                elif not rerun and g >= 20 and rng.random() < 0.10:
                    for _ in range(4):
                        source = rng.randrange(0, g - 19) * 10 + rng.randrange(1, 7)
                        if state[source] == "exec_done":
                            memo_source = (run_id, source)
                            digest, key = args_digest[source], hashsum[source]
                            break
            if spec.cache and memo_source is None:
                key = _digest("memo", app_digests[app], digest)
            if spec.cache:
                task["task_hashsum"] = key
                task["memo_components"] = json.dumps({"code": app_digests[app], "inputs": _digest("in", chunk),
                                                      "seed": _digest("seed", seed)}, sort_keys=True)
            task["args_digest"] = digest
            if digest not in self.arguments:
                self.arguments.add(digest)
                value = pickle.dumps(args)
                sink.add(m.Argument, {"digest": digest, "serializer": "pickle", "size": len(value), "value": value})
            hashsum[tid] = task["task_hashsum"]
            args_digest[tid] = digest

            failed_deps = [d for d in deps if state[d] in ("failed", "dep_fail")]
            ready = max([invoked] + [done_at[d] for d in deps])
            status(tid, 0, "pending", invoked, None, "submitted")
            tries = 0
            if failed_deps:
                end = ready + 0.0003
                first = failed_deps[0]
                chain = [first, *chain_of[first]] if state[first] == "dep_fail" else [first]
                root_error = error_of[first]
                via = " <- ".join(f"task {x}" for x in chain)
                error = (f"DependencyError: Dependency failure for task {tid}. The representative cause is via "
                         f"{via}: {root_error}")
                status(tid, 0, "dep_fail", end, "pending", "dependency failed", error)
                final = "dep_fail"
                task["error"] = error
            elif memo_source is not None:
                end = ready + 0.0002
                status(tid, 0, "memo_done", end, "pending", "memo hit")
                final = "memo_done"
                task["memo_source_run"], task["memo_source_task"] = memo_source
                task["result_digest"] = _digest("result", key)
            elif app == "summarize":
                launched = ready + 0.0004
                joining = launched + 0.003
                status(tid, 0, "launched", launched, "pending", "dependencies met, sent to executor", spec.executor)
                status(tid, 0, "joining", joining, "launched", "join app returned futures to wait on")
                plot = joins[0] if joins else None
                end = max(joining, done_at[plot] if plot is not None else joining) + 0.0005
                if plot is not None and state[plot] in ("failed", "dep_fail"):
                    root_error = error_of[plot]
                    status(tid, 0, "failed", end, "joining", "a joined future failed", root_error)
                    final = "failed"
                    task["error"] = root_error
                else:
                    status(tid, 0, "exec_done", end, "joining", "joined futures completed")
                    final = "exec_done"
                    task["result_digest"] = _digest("result", run_id, tid)
                sink.add(m.Try, self._try(run_id, tid, 0, None, HOST, spec.executor, stamp(launched),
                                          stamp(launched + 0.001), stamp(joining), None, KERNEL_PID,
                                          ",".join(map(str, joins)) or None))
                tries = 1
            else:
                r = rng.random()
                planned = 1 if r < 0.25 else 2 if r < 0.33 else 3 if r < 0.34 else 0
                failures = 0
                t = ready
                unit = units[spec.executor]
                while True:
                    try_id = tries
                    if try_id:
                        status(tid, try_id, "pending", t, "fail_retryable", "retry")
                        launched = t + 0.0003
                    else:
                        launched = ready + 0.0004
                    status(tid, try_id, "launched", launched, "pending", "dependencies met, sent to executor",
                           spec.executor)
                    planned_fail = failures < planned
                    duration = unit * spec.units * rng.lognormvariate(0, 0.35)
                    if planned_fail:
                        duration *= rng.uniform(0.05, 0.8)
                    w, start, end, lost = place(spec.executor, launched, duration)
                    tries += 1
                    if lost:
                        error = (f"WorkerLost: Task failure due to loss of worker {rng.randrange(8)}, pid {w.pid} "
                                 f"on host {w.hostname} (block {w.block_id}); exit code 9")
                        trace = None
                    elif planned_fail:
                        error, trace = self._error(app, g, tid)
                    else:
                        error = trace = None
                    if error is not None:
                        failures += 1
                        last = failures > RETRIES
                        name = "failed" if last else "fail_retryable"
                        status(tid, try_id, name, end, "launched", "executor returned an error, "
                               + ("no retries left" if last else "will retry"), error)
                    else:
                        status(tid, try_id, "exec_done", end, "launched", "executor returned a result")
                    threads = spec.executor == "threads"
                    sink.add(m.Try, self._try(
                        run_id, tid, try_id, w.block_id, w.hostname, spec.executor, stamp(launched), stamp(start),
                        stamp(end), error, KERNEL_PID if threads else w.pid, None, manager=w.manager, trace=trace))
                    if not threads:
                        self._samples(run_id, tid, try_id, w, start, end, app, stamp)
                    if error is None:
                        final = "exec_done"
                        task["result_digest"] = _digest("result", run_id, tid)
                        self._files_of(run_id, tid, try_id, app, g, start, end, stamp, rerun)
                        if spec.cache:
                            value = pickle.dumps(round(rng.gauss(0.0, 1.0), 6))
                            sink.add(m.Result, {"memo_key": key, "run_id": run_id, "task_id": tid,
                                                "result_digest": task["result_digest"], "serializer": "pickle",
                                                "size": len(value), "value": value, "outputs": None,
                                                "created": stamp(end)})
                        if (show_task is None and not rerun and app == "simulate" and tries >= 2
                                and tid >= n // 2):
                            show_task = tid
                        break
                    if failures > RETRIES:
                        final, root_error = "failed", error
                        task["error"], task["traceback"] = error, trace
                        if spec.kind == "bash":
                            self._files_of(run_id, tid, try_id, app, g, start, end, stamp, rerun, failed=True)
                        break
                    t = end + 0.0004
                task["task_fail_count"] = failures
                task["task_fail_cost"] = float(failures)
            state[tid], done_at[tid] = final, end
            chain_of[tid] = chain if final == "dep_fail" else []
            error_of[tid] = root_error if final in ("failed", "dep_fail") else ""
            counts[final] += 1
            for d in after:
                waiting[d] -= 1
                if not waiting[d]:
                    deps_d, joins_d, _ = edges(d)
                    heapq.heappush(ready_queue, (max([0.5 + d * 4e-5] + [done_at[x] for x in deps_d + joins_d]), d))
            task["task_status_name"] = final
            task["task_time_returned"] = stamp(end)
            sink.add(m.Task, task)
            for d in dict.fromkeys(deps):
                sink.add(m.Dependency, {"run_id": run_id, "task_id": tid, "depends_on": d, "kind": "data"})
            for d in joins:
                sink.add(m.Dependency, {"run_id": run_id, "task_id": tid, "depends_on": d, "kind": "join"})

        makespan = max(done_at) + 1.5
        self._blocks_and_nodes(run_id, blocks, makespan, stamp)
        packages = [(name, "2.3.2" if rerun and name == "numpy" else version) for name, version in PACKAGES]
        packages_json = json.dumps(sorted(packages))
        packages_digest = _digest(packages_json)
        if packages_digest not in self.keys:
            self.keys.add(packages_digest)
            sink.add(m.Environment, {"packages_digest": packages_digest, "packages": packages_json})
        for name, spec in APPS.items():
            if app_digests[name] not in self.keys:
                self.keys.add(app_digests[name])
                source = ANALYZE_V2 if rerun and name == "analyze" else spec.source
                sink.add(m.App, {"app_digest": app_digests[name], "qualname": name, "module": "__main__",
                                 "kind": spec.kind, "source": source,
                                 "components": json.dumps({"name": _digest(name), "source": _digest(source)})})
        failed = counts["failed"] + counts["dep_fail"]
        sink.add(m.Workflow, {
            "run_id": run_id, "workflow_name": "workflow.py", "workflow_version": str(begin.replace(microsecond=0)),
            "time_began": begin, "time_completed": stamp(makespan), "host": HOST, "user": USER,
            "rundir": f"{ROOT}/runinfo/{index:03d}", "tasks_failed_count": failed,
            "tasks_completed_count": counts["exec_done"] + counts["memo_done"], "runinfo_dir": f"{ROOT}/runinfo",
            "outcome": "failed" if failed else "completed", "pid": KERNEL_PID, "script_path": f"{ROOT}/workflow.py",
            "script_sha256": _digest("script", rerun), "argv": json.dumps(["workflow.py", "--chunks", str(groups)]),
            "cwd": ROOT, "python_version": "3.11.7", "platform": "Linux-5.14.0-427.el9.x86_64-x86_64-with-glibc2.34",
            "packages_digest": packages_digest, "git_repository": "https://git.example.org/alice/ensemble.git",
            "git_commit": _digest("commit", rerun)[:40], "git_dirty": rerun, "git_diff_sha256":
            _digest("diff") if rerun else None, "config_summary": CONFIG_SUMMARY, "parent_run_id":
            main["run_id"] if rerun else None, "parsl_repro_version": VERSION,
            "memo_sources": json.dumps({"enabled": True, "from_store": True, "runs": [main["run_id"]] if rerun else [],
                                        "files": [], "results": main["counts"]["exec_done"] if rerun else 0})})
        return {"run_id": run_id, "n": n, "units": units, "state": state, "hashsum": hashsum,
"args_digest": args_digest, "counts": dict(counts),
                "show_task": show_task if show_task is not None else n // 2}

    def _try(self, run_id: str, tid: int, try_id: int, block_id: str | None, hostname: str, executor: str,
             launched: dt.datetime, running: dt.datetime, returned: dt.datetime, error: str | None, pid: int,
             joins: str | None, manager: str | None = None, trace: str | None = None) -> dict[str, Any]:
        return {"run_id": run_id, "task_id": tid, "try_id": try_id, "block_id": block_id, "hostname": hostname,
                "task_executor": executor, "task_try_time_launched": launched, "task_try_time_running": running,
                "task_try_time_returned": returned, "task_fail_history": error, "task_joins": joins, "pid": pid,
                "error": error, "manager": manager, "traceback": trace}

    def _error(self, app: str, g: int, tid: int) -> tuple[str, str | None]:
        rng = self.rng
        if app == "fetch_input":
            return (f"BashExitFailure: bash_app fetch_input failed with unix exit code 22; its stderr is in "
                    f"{ROOT}/logs/fetch_{g:06d}.err", None)
        if app == "plot_results":
            return (f"BashExitFailure: bash_app plot_results failed with unix exit code 1; its stderr is in "
                    f"{ROOT}/logs/plot_{g:06d}.err", None)
        if app == "analyze":
            error = "RuntimeError: CUDA error: out of memory (tried to allocate 2.00 GiB)"
            return error, TRACEBACK.format(line=41, app=app, code="values = cp.asarray(members)", error=error)
        error = rng.choice([f"ValueError: simulation diverged at step {rng.randrange(200, 2000)} (dt=0.01)",
                            "FloatingPointError: overflow encountered in multiply", "MemoryError"])
        return error, TRACEBACK.format(line=27, app=app, code="model.advance(dt)", error=error)

    def _samples(self, run_id: str, tid: int, try_id: int, w: Worker, start: float, end: float, app: str,
                 stamp: Any) -> None:
        rng = self.rng
        k = 2 if rng.random() < 0.6 else 3
        resident = rng.uniform(1.5e8, 8e8) if app == "simulate" else rng.uniform(1e9, 4e9)
        for i in range(1, k + 1):
            elapsed = max(0.0, (end - start) * i / k - 0.01)
            self.sink.add(m.Resource, {
                "run_id": run_id, "task_id": tid, "try_id": try_id, "timestamp": stamp(start + elapsed),
                "resource_monitoring_interval": round((end - start) / k, 3), "psutil_process_pid": w.pid,
                "psutil_process_memory_percent": resident / 2.5e11 * 100, "psutil_process_children_count": 0.0,
                "psutil_process_time_user": round(0.92 * elapsed + 0.3, 3),
                "psutil_process_time_system": round(0.04 * elapsed + 0.02, 3),
                "psutil_process_memory_virtual": resident * 1.6,
                "psutil_process_memory_resident": resident * (0.6 + 0.4 * i / k),
                "psutil_process_disk_read": float(rng.randrange(0, 50_000_000)),
                "psutil_process_disk_write": float(rng.randrange(0, 5_000_000)), "psutil_process_status": "running",
                "psutil_cpu_num": str(rng.randrange(64)),
                "psutil_process_num_ctx_switches_voluntary": float(rng.randrange(10, 5000)),
                "psutil_process_num_ctx_switches_involuntary": float(rng.randrange(0, 500))})

    def _files_of(self, run_id: str, tid: int, try_id: int, app: str, g: int, start: float, end: float,
                  stamp: Any, rerun: bool, failed: bool = False) -> None:
        began, ended = stamp(start), stamp(end)
        version = 2 if rerun and g % 7 == 0 else 1  # some chunks changed upstream between the runs
        if app == "fetch_input":
            if not failed:
                self._use(run_id, tid, try_id, self._file(f"data/chunk_{g:06d}.csv", version, ended), "output", ended)
            for ext, role in (("out", "stdout"), ("err", "stderr")):
                file_id = self._file(f"logs/fetch_{g:06d}.{ext}", (rerun, failed), ended, small=True)
                self._use(run_id, tid, try_id, file_id, role, ended)
        elif app == "simulate":
            self._use(run_id, tid, try_id, self._file(f"data/chunk_{g:06d}.csv", version, began), "input", began)
        elif app == "analyze":
            self._use(run_id, tid, try_id, self._file(f"results/analysis_{g:06d}.json", (rerun, version), ended,
                                                      small=True), "output", ended)
        elif app == "plot_results":
            analysis = self._file(f"results/analysis_{g:06d}.json", (rerun, version), began, small=True)
            self._use(run_id, tid, try_id, analysis, "input", began)
            if not failed:
                self._use(run_id, tid, try_id, self._file(f"plots/fig_{g:06d}.png", (rerun, version), ended),
                          "output", ended)
            for ext, role in (("out", "stdout"), ("err", "stderr")):
                file_id = self._file(f"logs/plot_{g:06d}.{ext}", (rerun, failed), ended, small=True)
                self._use(run_id, tid, try_id, file_id, role, ended)

    def _blocks_and_nodes(self, run_id: str, blocks: list[BlockSpec], makespan: float, stamp: Any) -> None:
        for block in blocks:
            if block.start >= makespan:
                continue  # a replacement the run ended before needing
            failed = block.failed_at is not None and block.failed_at < makespan
            end = block.failed_at if failed else makespan
            for when, state in ((block.start - 25, "PENDING"), (block.start - 3, "RUNNING"),
                                (end, "FAILED" if failed else "SCALED_IN")):
                self.sink.add(m.Block, {"run_id": run_id, "executor_label": block.executor,
                                        "block_id": block.block_id, "timestamp": stamp(max(0.0, when)),
                                        "job_id": block.job_id, "status": state})
            gpu = block.executor == "htex_gpu"
            for when, active in ((block.start - 1, True), (end, False)):
                self.sink.add(m.Node, {"run_id": run_id, "hostname": block.hostname, "uid": block.manager,
                                       "block_id": block.block_id, "cpu_count": 32 if gpu else 64,
                                       "total_memory": (512 if gpu else 256) * 2**30, "active": active,
                                       "worker_count": block.workers, "python_v": "3.11.7", "timestamp": stamp(when),
                                       "last_heartbeat": stamp(when if active else end - 2)})


CONFIG_SUMMARY = """Config(
    executors=(ThreadPoolExecutor(label='threads', max_threads=4),
               HighThroughputExecutor(label='htex_cpu', max_workers_per_node=8,
                                      provider=SlurmProvider(partition='cpu', nodes_per_block=1, init_blocks=4,
                                                             max_blocks=5)),
               HighThroughputExecutor(label='htex_gpu', max_workers_per_node=4,
                                      provider=SlurmProvider(partition='gpu', nodes_per_block=1, init_blocks=2,
                                                             max_blocks=2))),
    retries=2,
    reuse_from_store=True,
    run_dir='runinfo'
)"""


def fill_store(engine: Engine, url: str, sizes: list[int]) -> dict[str, Any]:
    """Fill an empty (or foreign) store with a run and a re-run per size; returns what it wrote."""
    ensure_schema(engine, url)
    with engine.connect() as conn:
        next_file_id = (conn.execute(select(func.max(m.File.file_id))).scalar() or 0) + 1
    rng = random.Random(f"{SEED}-{','.join(map(str, sizes))}")
    sink = Sink(engine)
    filler = RunFiller(sink, rng, {}, [next_file_id], set())
    info: dict[str, Any] = {"fill_version": FILL_VERSION, "sizes": sizes, "runs": {}}
    for i, n in enumerate(sizes):
        started = time.perf_counter()
        begin = BASE_TIME + dt.timedelta(days=i)
        main = filler.fill(_uuid(rng), n, begin, 2 * i)
        again = filler.fill(_uuid(rng), max(10, n // 10), begin + dt.timedelta(hours=2), 2 * i + 1, main=main)
        sink.flush()
        info["runs"][str(n)] = {"run": main["run_id"], "rerun": again["run_id"], "task": main["show_task"],
                                "app": "simulate", "states": main["counts"], "rerun_states": again["counts"]}
        print(f"  filled {n:,} tasks (+ a re-run of {again['n']:,}) in {time.perf_counter() - started:.0f} s",
              file=sys.stderr, flush=True)
    info["rows"] = dict(sink.counts)
    with engine.begin() as conn:
        conn.execute(m.SchemaInfo.__table__.delete().where(m.SchemaInfo.key == FILL_KEY))
        conn.execute(m.SchemaInfo.__table__.insert(), [{"key": FILL_KEY, "value": json.dumps(info)}])
    return info


def stored_fill(engine: Engine) -> dict[str, Any] | None:
    """What a filled store records about its fill, or None."""
    try:
        with engine.connect() as conn:
            value = conn.execute(select(m.SchemaInfo.value).where(m.SchemaInfo.key == FILL_KEY)).scalar()
    except Exception:
        return None
    return json.loads(value) if value else None


def add_missing_indexes(url: str) -> list[str]:
    """Create the models' indexes a reused store lacks (added to ``models.py`` since it was filled); returns
    their names."""
    engine = make_engine(url, writer=True)
    added = []
    try:
        with engine.begin() as conn:
            existing = {(ix["name"]) for table in m.Base.metadata.tables.values()
                        for ix in inspect(conn).get_indexes(table.name)}
            for table in m.Base.metadata.tables.values():
                for index in table.indexes:
                    if index.name not in existing:
                        index.create(conn)
                        added.append(index.name)
    finally:
        engine.dispose()
    return added


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {name: conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                for name in ("workflow", "task", "try", "status", "resource", "dependency", "file", "file_use",
                             "node", "block", "app", "argument", "result")}


def _report_indexes(added: list[str]) -> None:
    if added:
        print(f"added the indexes models.py has gained since the store was filled: {', '.join(added)}",
              file=sys.stderr)


def prepare_store(args: argparse.Namespace, sizes: list[int]) -> tuple[str, dict[str, Any]]:
    """The URL of a store filled for ``sizes`` (filled now unless cached) and what its fill recorded."""
    if args.db:
        url = args.db
        engine = make_engine(url, writer=True)
        try:
            found = stored_fill(engine)
            if found and found.get("sizes") == sizes and found.get("fill_version") == FILL_VERSION and not args.refill:
                _report_indexes(add_missing_indexes(url))
                return url, found
            if found:
                raise SystemExit(f"{url} already holds a benchmark fill of sizes {found.get('sizes')} (fill version "
                                 f"{found.get('fill_version')}): give a fresh database to --db")
            print(f"filling {url} for sizes {sizes} ...", file=sys.stderr, flush=True)
            return url, fill_store(engine, url, sizes)
        finally:
            engine.dispose()
    STORE_DIR.mkdir(parents=True, exist_ok=True)
    path = STORE_DIR / f"store-{'_'.join(map(str, sizes))}-schema{m.SCHEMA_VERSION}-fill{FILL_VERSION}.db"
    url = f"sqlite:///{path}"
    if path.exists() and not args.refill:
        engine = make_engine(url, writer=False)
        try:
            found = stored_fill(engine)
        finally:
            engine.dispose()
        if found and found.get("sizes") == sizes:
            print(f"reusing the store {path} (--refill to fill it again)", file=sys.stderr)
            _report_indexes(add_missing_indexes(url))
            return url, found
    for stale in STORE_DIR.glob(f"store-{'_'.join(map(str, sizes))}-*"):  # this one, other versions, partial fills
        stale.unlink()
    partial = path.with_name(path.name + ".partial")
    print(f"filling {path} for sizes {sizes} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    engine = make_engine(f"sqlite:///{partial}", writer=True)
    try:
        info = fill_store(engine, url, sizes)
    finally:
        engine.dispose()  # the last connection to close checkpoints the WAL into the file
    for suffix in ("-wal", "-shm"):
        leftover = partial.with_name(partial.name + suffix)
        if leftover.exists():
            leftover.unlink()
    os.replace(partial, path)
    print(f"filled in {time.perf_counter() - started:.0f} s: {path} ({path.stat().st_size / 2**20:.0f} MiB)",
          file=sys.stderr, flush=True)
    return url, info


# --------------------------------------------------------------------------------------------------------------
# The servers.
# --------------------------------------------------------------------------------------------------------------


def ensure_parsl_viz_venv(venv_dir: Path) -> Path:
    """Create (or reuse) a venv with ``parsl[monitoring,visualization]==PARSL_VERSION``; return its python."""
    return ensure_venv(venv_dir, f"parsl[monitoring,visualization]=={PARSL_VERSION}",
                       "import os, sys, parsl, flask, flask_sqlalchemy, pandas, networkx, pydot, plotly; "
                       f"sys.exit(parsl.__version__ != {PARSL_VERSION!r} or not os.path.exists("
                       "os.path.join(os.path.dirname(sys.executable), 'parsl-visualize')))")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A dashboard in its own process group on a free loopback port; restartable; its RSS sampled."""

    def __init__(self, name: str, command: list[str], ready_path: str, workdir: Path) -> None:
        self.name, self.command, self.ready_path, self.workdir = name, command, ready_path, workdir
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.label = ""  # the page being measured: peaks are kept per label
        self.peaks: dict[str, int] = {}
        self.restarts = 0
        self._stop_sampling = threading.Event()
        self._sampler: threading.Thread | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        log = self.workdir / f"{self.name}.log"
        with open(log, "a") as err:
            self.process = subprocess.Popen([*self.command[:1], *[part.replace("{port}", str(self.port)) for part in
                                                                   self.command[1:]]],
                                            cwd=self.workdir, stdout=err, stderr=err, start_new_session=True)
        deadline = time.monotonic() + 90
        while not self._ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}): {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not answer within 90 s: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        self._stop_sampling.clear()
        self._sampler = threading.Thread(target=self._sample, name=f"rss-{self.name}", daemon=True)
        self._sampler.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def statements_since(self, offset: int) -> list[dict[str, Any]]:
        """The statements our profiled dashboard logged after ``offset`` (``--sql-profile``)."""
        if not self.log_path.exists():
            return []
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            lines = f.read().decode(errors="replace").splitlines()
        found = []
        for line in lines:
            if line.startswith(SQL_PREFIX):
                try:
                    found.append(json.loads(line[len(SQL_PREFIX):]))
                except ValueError:  # a line another thread's output broke into
                    pass
        return found

    def log_tail(self, lines: int = 15) -> str:
        log = self.workdir / f"{self.name}.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + self.ready_path, timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def _sample(self) -> None:
        assert self.process is not None
        try:
            root = psutil.Process(self.process.pid)
        except psutil.Error:
            return
        while not self._stop_sampling.wait(0.05):
            try:
                rss = root.memory_info().rss
                for child in root.children(recursive=True):
                    try:
                        rss += child.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                return
            if rss > self.peaks.get(self.label, 0):
                self.peaks[self.label] = rss

    def stop(self) -> None:
        self._stop_sampling.set()
        if self._sampler is not None:
            self._sampler.join(timeout=2)
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)  # SIGINT may be ignored in a process started in background
            self.process.wait(timeout=10)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()

    def restart(self) -> None:
        """After a timed-out page: the abandoned request would otherwise keep a core busy."""
        self.restarts += 1
        self.stop()
        self.start()


# --------------------------------------------------------------------------------------------------------------
# The browser: what one page load measures.
# --------------------------------------------------------------------------------------------------------------

INIT_SCRIPT = r"""
(() => {
  const MODE = MODE_VALUE, QUIET = QUIET_VALUE;
  performance.setResourceTimingBufferSize(5000);
  const b = window.__bench = {inflight: 0, callbacks: 0, lastMutation: 0, readySince: null, done: null, plots: 0};
  const fetch0 = window.fetch.bind(window);
  window.fetch = (input, init) => {
    const url = typeof input === "string" ? input : (input && input.url) || "";
    const answer = fetch0(input, init);
    if (!url.includes("_dash-update-component")) return answer;
    b.inflight++; b.callbacks++;
    return answer.then(
      r => { r.clone().arrayBuffer().catch(() => null).then(() => { b.inflight--; }); return r; },
      e => { b.inflight--; throw e; });
  };
  new MutationObserver(() => { b.lastMutation = performance.now(); })
    .observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
  function ready() {
    if (document.readyState !== "complete") return false;
    if (MODE === "dash") {
      if (!document.getElementById("page-title")) return false;
      if (b.inflight > 0 || document.querySelector('[data-dash-is-loading="true"]')) return false;
      for (const g of document.querySelectorAll(".dash-graph"))
        if (g.classList.contains("dash-graph--pending") || !g.querySelector(".js-plotly-plot")) return false;
    } else {
      for (const g of document.querySelectorAll(".plotly-graph-div"))
        if (!g.classList.contains("js-plotly-plot")) return false;
    }
    for (const p of document.querySelectorAll(".js-plotly-plot"))
      if (!p._fullLayout || !p.querySelector(".main-svg")) return false;
    return true;
  }
  function tick() {
    const now = performance.now();
    // window.Plotly.version: the library itself, not the stand-in of our loader
    if (b.plotlyAt === undefined && window.Plotly && window.Plotly.version) b.plotlyAt = now;
    if (ready()) {
      if (b.readySince === null) b.readySince = now;
      const settled = Math.max(b.readySince, b.lastMutation);
      if (now - settled >= QUIET) {
        b.done = settled;
        b.plots = document.querySelectorAll(".js-plotly-plot").length;
        return;
      }
    } else {
      b.readySince = null;
    }
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
})();
"""

METRICS_JS = r"""
() => {
  const b = window.__bench, nav = performance.getEntriesByType("navigation")[0];
  const callbacks = performance.getEntriesByType("resource")
    .filter(e => e.name.includes("_dash-update-component") && e.startTime <= b.done)
    .map(e => ({start: e.startTime, server: e.responseStart - e.requestStart, end: e.responseEnd,
                bytes: e.encodedBodySize, status: e.responseStatus}));
  const notices = [...document.querySelectorAll(".notice.error, .notice.warning")].map(n => n.innerText);
  const traces = [...document.querySelectorAll(".js-plotly-plot")].map(p => (p.data || []).map(
    t => `${t.type || "scatter"}:${(t.x || t.y || t.z || t.values || []).length}`));
  return {drawn: b.done, plots: b.plots, traces, callbacks, plotlyAt: b.plotlyAt === undefined ? null : b.plotlyAt,
          nav: {server: nav.responseStart - nav.requestStart, transfer: nav.responseEnd - nav.responseStart,
                bytes: nav.encodedBodySize, load: nav.loadEventEnd, status: nav.responseStatus},
          stub: document.body.innerText.includes(STUB_TEXT), notices};
}
""".replace("STUB_TEXT", json.dumps(STUB_TEXT))


@dataclass
class Target:
    view: str  # the shared name of the view (the table's "page")
    size: str  # tasks in the run shown, or "store" for store-wide pages
    path: str


@dataclass
class Measure:
    side: str
    target: Target
    loads: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    attempts: int = 0  # loads made, warm-up included
    first: dict[str, Any] | None = None  # the first load (a warm-up): the server's caches still empty
    statements: list[dict[str, Any]] = field(default_factory=list)  # --sql-profile: what the loads executed
    slowest: list[dict[str, Any]] = field(default_factory=list)  # and the slowest of them, re-run alone

    def _median(self, key: str) -> float | None:
        values = [load[key] for load in self.loads if load.get(key) is not None]
        return statistics.median(values) if values else None

    @property
    def server_ms(self) -> float | None:
        return self._median("server_ms")

    @property
    def drawn_ms(self) -> float | None:
        return self._median("drawn_ms")

    @property
    def plotly_ms(self) -> float | None:
        """When plotly.js was ready (median), on pages that draw figures."""
        return self._median("plotly_ready_ms") if any(load.get("plots") for load in self.loads) else None

    @property
    def first_drawn_ms(self) -> float | None:
        """Drawn time of the first load, before the server kept anything of the page's run."""
        return None if self.first is None or self.first.get("error") else self.first.get("drawn_ms")

    @property
    def stub(self) -> bool:
        return any(load.get("stub") for load in self.loads)

    def as_json(self) -> dict[str, Any]:
        return {"side": self.side, "view": self.target.view, "size": self.target.size, "path": self.target.path,
                "server_ms": self.server_ms, "drawn_ms": self.drawn_ms, "error": self.error, "stub": self.stub,
                "first_drawn_ms": self.first_drawn_ms, "loads": self.loads, "slowest_statements": self.slowest}


def load_once(context: Any, server: Server, target: Target, timeout_s: float, dash: bool) -> dict[str, Any]:
    """One load of a page in a fresh tab: its figures (or the error that stopped it)."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)[:300]))
    started = time.monotonic()
    try:
        try:
            response = page.goto(server.base + target.path, wait_until="commit", timeout=timeout_s * 1000)
        except PlaywrightTimeout:
            return {"error": f"timed out ({timeout_s:g} s)"}
        if response is None or response.status >= 400:
            return {"error": f"HTTP {response.status if response else '?'}"}
        left = timeout_s - (time.monotonic() - started)
        try:
            page.wait_for_function("() => window.__bench && window.__bench.done !== null", polling=100,
                                   timeout=max(1.0, left) * 1000)
        except PlaywrightTimeout:
            return {"error": f"timed out ({timeout_s:g} s)" + (" (figures never drawn)" if not dash else "")}
        got = page.evaluate(METRICS_JS)
    except PlaywrightError as e:
        return {"error": f"browser: {str(e).splitlines()[0][:200]}"}
    finally:
        try:
            page.close()
        except Exception:
            pass
    failed = [c for c in got["callbacks"] if c.get("status") and c["status"] >= 400]
    result = {
        "server_ms": sum(c["server"] for c in got["callbacks"]) if dash else got["nav"]["server"],
        "drawn_ms": got["drawn"], "plots": got["plots"], "traces": got["traces"], "callbacks": len(got["callbacks"]),
        "callback_server_ms": [round(c["server"], 1) for c in got["callbacks"]],
        "response_bytes": (sum(c["bytes"] or 0 for c in got["callbacks"]) if dash else got["nav"]["bytes"]),
        "transfer_ms": None if dash else got["nav"]["transfer"], "stub": got["stub"],
        "load_event_ms": got["nav"]["load"], "plotly_ready_ms": got["plotlyAt"],
        "last_callback_end_ms": max((c["end"] for c in got["callbacks"]), default=None),
        "notices": got["notices"], "page_errors": errors}
    if failed:
        result["error"] = f"HTTP {failed[0]['status']} from a callback"
    return result


def measure(context: Any, server: Server, side: str, target: Target, args: argparse.Namespace,
            dash: bool) -> Measure:
    """``args.warmup`` untimed loads, then ``args.repeats`` timed ones; stop at the first error."""
    result = Measure(side, target)
    server.label = target.size
    offset = server.log_size()
    print(f"  {side:5} {target.view:<11} {target.size:>7}  {target.path}", file=sys.stderr, flush=True)
    for i in range(args.warmup + args.repeats):
        load = load_once(context, server, target, args.timeout, dash)
        result.attempts += 1
        if result.first is None:
            result.first = load
        if not server.alive():
            code = server.process.returncode if server.process else None
            load["error"] = f"server exited ({code})"
            print(f"{server.name} dashboard exited ({code}) on {target.path}; its log ends:\n{server.log_tail()}",
                  file=sys.stderr)
        if load.get("error"):
            result.error = load["error"]
            result.loads.append(load)
            if "timed out" in result.error or "exited" in result.error:
                server.restart()
            break
        slow = (load.get("drawn_ms") or 0) > SLOW_LOAD_MS
        if i >= args.warmup or slow:
            result.loads.append(load)
        if slow:
            break
    if args.sql_profile and server.alive():
        result.statements = server.statements_since(offset)
    return result


def ours_targets(info: dict[str, Any], sizes: list[int]) -> list[Target]:
    targets = [Target("runs list", "store", "/"), Target("files", "store", "/files")]
    for n in sizes:
        run = info["runs"][str(n)]
        r, size = run["run"], str(n)
        targets += [Target("overview", size, f"/run/{r}"), Target("graph", size, f"/run/{r}/graph"),
                    Target("failures", size, f"/run/{r}/failures"), Target("apps", size, f"/run/{r}/apps"),
                    Target("task", size, f"/run/{r}/task/{run['task']}"), Target("tasks", size, f"/run/{r}/tasks"),
                    Target("resources", size, f"/run/{r}/resources"), Target("run files", size, f"/run/{r}/files"),
                    Target("compare", size, f"/compare?a={run['rerun']}&b={r}")]
    return targets


def parsl_targets(info: dict[str, Any], sizes: list[int]) -> list[Target]:
    targets = [Target("runs list", "store", "/")]
    for n in sizes:
        run = info["runs"][str(n)]
        w, size = f"/workflow/{run['run']}", str(n)
        targets += [Target("overview", size, f"{w}/"), Target("graph", size, f"{w}/dag_group_by_apps"),
                    Target("dag states", size, f"{w}/dag_group_by_states"),
                    Target("apps", size, f"{w}/app/{run['app']}"), Target("task", size, f"{w}/task/{run['task']}"),
                    Target("tasks", size, f"{w}/task/"),  # "All Apps": every task of the run
                    Target("resources", size, f"{w}/resource_usage")]
    return targets


def parsl_plotly_js(parsl_python: Path) -> bytes:
    """The plotly.js bundled with the plotly package in Parsl's venv (what its pages get for the CDN's)."""
    where = subprocess.run([str(parsl_python), "-c", "import os, plotly; print(os.path.join(os.path.dirname("
                            "plotly.__file__), 'package_data', 'plotly.min.js'))"], check=True, capture_output=True,
                           text=True).stdout.strip()
    return Path(where).read_bytes()


class CdnStandIn:
    """``https://cdn.plot.ly`` on a loopback port: every path answers the plotly.min.js it is given, cacheable.

    Its certificate (made once with openssl, kept in ``bench/.venvs/viz-cdn``) is for cdn.plot.ly; Chromium
    trusts it by the hash of its public key (``chromium_flags``)."""

    def __init__(self, body: bytes) -> None:
        CDN_DIR.mkdir(parents=True, exist_ok=True)
        cert, key = CDN_DIR / "cert.pem", CDN_DIR / "key.pem"
        if not cert.exists() or not key.exists():
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                            str(cert), "-subj", "/CN=cdn.plot.ly", "-addext", "subjectAltName=DNS:cdn.plot.ly",
                            "-days", "3650"], check=True, capture_output=True)
        public = subprocess.run(["openssl", "x509", "-in", str(cert), "-pubkey", "-noout"], check=True,
                                capture_output=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=public, check=True,
                             capture_output=True).stdout
        self.spki = base64.b64encode(hashlib.sha256(der).digest()).decode()
        self.requests = 0
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server interface)
                stand_in.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/javascript; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "public, max-age=31536000, immutable")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="cdn-stand-in", daemon=True)
        self.thread.start()

    def chromium_flags(self) -> list[str]:
        port = self.server.server_address[1]
        return [f"--host-resolver-rules=MAP cdn.plot.ly 127.0.0.1:{port},MAP * ~NOTFOUND,EXCLUDE 127.0.0.1",
                f"--ignore-certificate-errors-spki-list={self.spki}"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def new_context(browser: Any, mode: str) -> Any:
    """A browser context as the tests' ``page`` fixture makes one, with the measuring script installed."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(INIT_SCRIPT.replace("MODE_VALUE", json.dumps(mode)).replace("QUIET_VALUE", str(QUIET_MS)))
    return context


def in_turns(sides: dict[str, list[Target]]) -> list[tuple[str, Target]]:
    """Every side's targets, the sides taking turns page by page (size by size, then by view), so a burst of
    other work on the machine hits both dashboards rather than all of one."""
    order = {"runs list": 0, "files": 1, "overview": 2, "graph": 3, "dag states": 4, "failures": 5, "apps": 6,
             "task": 7, "tasks": 8, "resources": 9, "run files": 10, "compare": 11}
    turns = [(side, target) for side, targets in sides.items() for target in targets]
    rank = {side: i for i, side in enumerate(sides)}
    return sorted(turns, key=lambda st: (st[1].size != "store", int(st[1].size) if st[1].size != "store" else 0,
                                         order.get(st[1].view, 99), rank[st[0]]))


def run_sides(browser: Any, servers: dict[str, Server], sides: dict[str, list[Target]],
              args: argparse.Namespace) -> dict[str, list[Measure]]:
    """Start every side's server, measure all their pages in turns, stop the servers."""
    contexts = {side: new_context(browser, "dash" if side == "ours" else "flask") for side in sides}
    measures: dict[str, list[Measure]] = {side: [] for side in sides}
    started: list[Server] = []
    try:
        for side in sides:
            servers[side].start()
            started.append(servers[side])
        for side, target in in_turns(sides):
            measures[side].append(measure(contexts[side], servers[side], side, target, args, side == "ours"))
    finally:
        for server in started:
            server.stop()
        for context in contexts.values():
            context.close()
    return measures


def slowest_statements(url: str, statements: list[dict[str, Any]], top: int = 3) -> list[dict[str, Any]]:
    """The ``top`` slowest of a page's distinct statements, each re-run alone with all its rows fetched (the
    best of two), with the database's plan (SQLite: EXPLAIN QUERY PLAN)."""
    distinct: dict[tuple[str, str], dict[str, Any]] = {}
    for st in statements:
        key = (st["sql"], json.dumps(st["params"]))
        seen = distinct.setdefault(key, {"sql": st["sql"], "params": st["params"], "count": 0, "execute_ms": 0.0})
        seen["count"] += 1
        seen["execute_ms"] = max(seen["execute_ms"], st["ms"])
    engine = make_engine(url, writer=False)
    timed = []
    try:
        with engine.connect() as conn:
            for st in distinct.values():
                params = tuple(st["params"]) if isinstance(st["params"], list) else st["params"]
                best = math.inf
                try:
                    for _ in range(2):
                        started = time.perf_counter()
                        rows = conn.exec_driver_sql(st["sql"], params).fetchall()
                        best = min(best, (time.perf_counter() - started) * 1000)
                except Exception as e:  # a statement that only runs inside its transaction, say
                    st["error"] = str(e).splitlines()[0]
                    continue
                timed.append({**st, "ms": best, "rows": len(rows)})
            timed.sort(key=lambda st: -st["ms"])
            for st in timed[:top]:
                params = tuple(st["params"]) if isinstance(st["params"], list) else st["params"]
                explain = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
                try:
                    plan = conn.exec_driver_sql(explain + st["sql"], params).fetchall()
                    st["plan"] = [str(row[-1]) for row in plan]
                except Exception as e:
                    st["plan"] = [f"(no plan: {str(e).splitlines()[0]})"]
    finally:
        engine.dispose()
    return timed[:top]


def serve_profiled(cli_args: list[str]) -> int:
    """Our dashboard (``parsl_repro.viz.cli``) with every statement's execution time written to stderr."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine as AnyEngine

    from parsl_repro.viz import cli

    lock = threading.Lock()  # callbacks run in parallel threads: one whole line each

    @event.listens_for(AnyEngine, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, _statement: str, _parameters: Any, _context: Any, _many: bool) -> None:
        conn.info.setdefault("bench_viz_started", []).append(time.perf_counter())

    @event.listens_for(AnyEngine, "after_cursor_execute")
    def _after(conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        ms = (time.perf_counter() - conn.info["bench_viz_started"].pop()) * 1000
        line = SQL_PREFIX + json.dumps({"ms": ms, "sql": statement, "params": parameters}, default=str) + "\n"
        with lock:
            sys.stderr.write(line)
            sys.stderr.flush()

    return cli.main(cli_args)


def print_slowest(measures: list[Measure]) -> None:
    profiled = [mm for mm in measures if mm.slowest]
    if not profiled:
        return
    print()
    print("slowest statements per page of ours (--sql-profile): each distinct statement re-run alone, rows fetched, "
          "best of 2; 'in page': its execute() time during the loads, n: times run per page load")
    for mm in profiled:
        size = "all" if mm.target.size == "store" else f"{int(mm.target.size):,}"
        loads = max(1, mm.attempts)
        print(f"{mm.target.view} {size}:")
        for st in mm.slowest:
            sql = " ".join(st["sql"].split())
            print(f"  {st['ms']:8.0f} ms (in page {st['execute_ms']:.0f} ms, n {st['count'] / loads:.3g}, "
                  f"{st['rows']:,} rows)  {sql[:150]}{' ...' if len(sql) > 150 else ''}")
            for line in st.get("plan", []):
                print(f"           plan: {line}")


# --------------------------------------------------------------------------------------------------------------
# The report.
# --------------------------------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _cell(measure: Measure | None, key: str) -> str:
    if measure is None:
        return "-"
    if measure.error:
        return measure.error.split(" (")[0] if key == "server_ms" else ""
    return _ms(getattr(measure, key))


def _ratio(parsl: Measure | None, ours: Measure | None, key: str, timeout_s: float) -> str:
    """Parsl's time over ours; past Parsl's timeout, the lower bound the timeout gives."""
    if parsl is None or ours is None or ours.error or ours.stub:
        return "-"
    b = getattr(ours, key)
    if parsl.error:
        return f">{timeout_s * 1000 / b:.0f}x" if "timed out" in parsl.error and b else "-"
    a = getattr(parsl, key)
    return f"{a / b:.1f}x" if a and b else "-"


def print_table(ours: list[Measure], parsl: list[Measure], sizes: list[int],
                timeout_s: float) -> list[tuple[str, bool]]:
    """Print the per-page table; return the goal verdicts."""
    by_key = {(mm.side, mm.target.view, mm.target.size): mm for mm in ours + parsl}
    views = list(dict.fromkeys([mm.target.view for mm in ours] + [mm.target.view for mm in parsl]))
    order = {"runs list": 0, "overview": 1, "graph": 2, "dag states": 3, "failures": 4, "apps": 5, "task": 6,
             "tasks": 7, "resources": 8, "run files": 9, "files": 10, "compare": 11}
    views.sort(key=lambda v: order.get(v, 99))
    print()
    print("per page: ours (Dash) vs Parsl's parsl-visualize (Flask); milliseconds, median of the timed loads")
    print(f"{'page':<11}{'size':>9}{'ours server':>13}{'ours drawn':>12}{'(plotly)':>10}{'Parsl server':>14}"
          f"{'Parsl drawn':>13}{'(plotly)':>10}{'server x':>10}{'drawn x':>9}{'ours 1st':>10}{'Parsl 1st':>11}  notes")
    slow: list[str] = []
    slower: list[str] = []
    for view in views:
        for size in ["store"] + [str(n) for n in sizes]:
            o, p = by_key.get(("ours", view, size)), by_key.get(("parsl", view, size))
            if o is None and p is None:
                continue
            notes = []
            if o is not None and o.stub:
                notes.append("ours: not built yet")
            if o is not None and o.error:
                notes.append(f"ours: {o.error}")
            if p is not None and p.error:
                notes.append(f"Parsl: {p.error}")
            if o is not None and not o.error and not o.stub and size != "store" and int(size) >= GOAL_SIZE:
                if (o.server_ms or 0) > SERVER_GOAL_MS or (o.drawn_ms or 0) > DRAWN_GOAL_MS:
                    notes.append("SLOW")
                    slow.append(f"{view} {size}")
            if o is not None and o.error and size != "store" and int(size) >= GOAL_SIZE:
                slow.append(f"{view} {size}")
            if o is not None and p is not None and not o.error and not p.error and not o.stub:
                if (o.drawn_ms or 0) > (p.drawn_ms or 0) or (o.server_ms or 0) > (p.server_ms or 0):
                    notes.append("slower than Parsl")
                    slower.append(f"{view} {size}")
            for side, mm in (("ours", o), ("Parsl", p)):
                if mm is not None and mm.loads and mm.loads[-1].get("notices"):
                    notes.append(f"{side} shows: {mm.loads[-1]['notices'][0][:80]!r}")
            size_label = "all" if size == "store" else f"{int(size):,}"
            print(f"{view:<11}{size_label:>9}{_cell(o, 'server_ms'):>13}{_cell(o, 'drawn_ms'):>12}"
                  f"{_cell(o, 'plotly_ms'):>10}{_cell(p, 'server_ms'):>14}{_cell(p, 'drawn_ms'):>13}"
                  f"{_cell(p, 'plotly_ms'):>10}{_ratio(p, o, 'server_ms', timeout_s):>10}"
                  f"{_ratio(p, o, 'drawn_ms', timeout_s):>9}{_cell(o, 'first_drawn_ms'):>10}"
                  f"{_cell(p, 'first_drawn_ms'):>11}  "
                  f"{'; '.join(notes)}")
    print("(server: time to first byte of the page's data requests, ours summed over its Dash callbacks; drawn: "
          "navigation start to every figure drawn, nothing pending; (plotly): when plotly.js was loaded and ready, "
          "on pages with figures: the part of drawn no query can shorten; x: Parsl's / ours; size all: the store; "
          "1st: drawn on the first (untimed) load, before a server kept anything of the run: ours keeps a finished "
          "run's progress and Gantt series, Parsl nothing)")
    goals: list[tuple[str, bool]] = []
    if ours and any(n >= GOAL_SIZE for n in sizes):
        ok = not slow
        goals.append((f"ours under {SERVER_GOAL_MS / 1000:g} s server and {DRAWN_GOAL_MS / 1000:g} s drawn at "
                      f"{GOAL_SIZE:,} tasks", ok))
        print(f"goal: every page of ours under {SERVER_GOAL_MS / 1000:g} s server, {DRAWN_GOAL_MS / 1000:g} s drawn at "
              f"{GOAL_SIZE:,} tasks: {'PASS' if ok else 'FAIL (' + ', '.join(slow) + ')'}")
    if ours and parsl:
        ok = not slower
        goals.append(("faster than Parsl on every shared page", ok))
        print(f"goal: faster than Parsl's on every shared page both served: "
              f"{'PASS' if ok else 'FAIL (' + ', '.join(slower) + ')'}")
    stubs = sorted({mm.target.view for mm in ours if mm.stub})
    if stubs:
        print(f"not built yet (timed as they stand, goals not judged): {', '.join(stubs)}")
    return goals


def print_rss(servers: dict[str, Server], sizes: list[int]) -> dict[str, dict[str, int]]:
    print()
    print("peak RSS of the dashboard process and its children, sampled every 50 ms while its pages loaded (MiB)")
    labels = ["store"] + [str(n) for n in sizes]
    print(f"{'dashboard':<12}" + "".join(f"{('pages of ' + (lb if lb == 'store' else f'{int(lb):,}')):>20}"
                                         for lb in labels) + f"{'restarts':>10}")
    out = {}
    for name, server in servers.items():
        out[name] = dict(server.peaks)
        print(f"{name:<12}" + "".join(f"{server.peaks[lb] / 2**20:>20.0f}" if lb in server.peaks else f"{'-':>20}"
                                      for lb in labels) + f"{server.restarts:>10}")
    print("(pages of all: the runs list and store-wide pages; a restart follows each timed-out page, so a peak "
          "after one is of the new process)")
    return out


# --------------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--sizes", default="10000,100000", help="tasks per run, comma-separated (default 10000,100000)")
    p.add_argument("--quick", action="store_true", help="smoke test: sizes 2000, one timed load per page")
    p.add_argument("--only", choices=("ours", "parsl"), help="measure one dashboard only")
    p.add_argument("--pages", help="comma-separated subset of pages (e.g. overview,task,runs list)")
    p.add_argument("--db", help="fill (once) and use this database URL instead of the cached SQLite store")
    p.add_argument("--refill", action="store_true", help="fill the cached store again")
    p.add_argument("--repeats", type=int, default=3, help="timed loads per page; the median is reported")
    p.add_argument("--warmup", type=int, default=1, help="untimed loads per page first")
    p.add_argument("--timeout", type=float, default=120.0, help="per page load (s)")
    p.add_argument("--python", default=str(DEFAULT_OURS_PYTHON) if DEFAULT_OURS_PYTHON.exists() else sys.executable,
                   help="interpreter with parsl_repro installed (runs our dashboard)")
    p.add_argument("--parsl-venv", type=Path, default=DEFAULT_PARSL_VIZ_VENV)
    p.add_argument("--json", type=Path, help="also write the raw loads, figures and goal verdicts here")
    p.add_argument("--sql-profile", action="store_true",
                   help="time every statement our dashboard runs; print each page's slowest, with its query plan")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-profiled"]:  # the dashboard's process under --sql-profile
        return serve_profiled(argv[1:])
    args = parse_args(argv)
    sizes = [2000] if args.quick else [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if args.quick:
        args.repeats = 1
    load_before = os.getloadavg()[0]
    try:
        url, info = prepare_store(args, sizes)
    except SystemExit:
        raise
    except Exception as e:
        print(f"filling the store failed: {e!r}", file=sys.stderr)
        return 2
    engine = make_engine(url, writer=False)
    try:
        counts = row_counts(engine)
    finally:
        engine.dispose()
    pages = {p.strip() for p in args.pages.split(",")} if args.pages else None
    print(f"store: {url}")
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    for n in sizes:
        run = info["runs"][str(n)]
        print(f"run of {n:,}: {run['run']} (task shown: {run['task']}; states {run['states']}); "
              f"re-run {run['rerun']}")

    subprocess.run(["bash", str(REPO / "scripts/system-packages.sh"), "chromium:chromium"], check=True)
    parsl_python = None
    if args.only != "ours":
        parsl_python = ensure_parsl_viz_venv(args.parsl_venv.resolve())
        graphviz = subprocess.run(["bash", str(REPO / "scripts/system-packages.sh"), "dot:graphviz"], check=False)
        if graphviz.returncode:
            print("Graphviz's dot is missing and could not be installed: Parsl's DAG pages will fail",
                  file=sys.stderr)
    from playwright.sync_api import sync_playwright

    servers: dict[str, Server] = {}
    ours: list[Measure] = []
    parsl: list[Measure] = []
    cdn = CdnStandIn(parsl_plotly_js(parsl_python)) if parsl_python is not None else None
    flags = CHROMIUM_FLAGS + (cdn.chromium_flags() if cdn else [])
    with tempfile.TemporaryDirectory(prefix="bench-viz-") as tmp, sync_playwright() as pw:
        workdir = Path(tmp)
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        sides: dict[str, list[Target]] = {}
        if args.only != "parsl":
            entry = [str(Path(__file__).resolve()), "--serve-profiled"] if args.sql_profile else \
                ["-m", "parsl_repro.viz.cli"]
            servers["ours"] = Server("ours", [args.python, *entry, url, "-p", "{port}", "--refresh", "3600"],
                                     "/_dash-layout", workdir)
            sides["ours"] = [t for t in ours_targets(info, sizes) if pages is None or t.view in pages]
        if parsl_python is not None:
            servers["parsl"] = Server("parsl", [str(parsl_python.parent / "parsl-visualize"), url, "-p", "{port}"],
                                      "/static/parsl-monitor.css", workdir)
            sides["parsl"] = [t for t in parsl_targets(info, sizes) if pages is None or t.view in pages]
        print(f"measuring {' and '.join(f'{len(t)} pages of {side}' for side, t in sides.items())}, in turns ...",
              file=sys.stderr, flush=True)
        try:
            measures = run_sides(browser, servers, sides, args)
            ours, parsl = measures.get("ours", []), measures.get("parsl", [])
        except RuntimeError as e:
            print(f"a dashboard failed: {e}", file=sys.stderr)
            return 2
        finally:
            browser.close()
            if cdn is not None:
                cdn.close()

    print()
    print(f"parsl-visualize benchmark: ours (parsl_repro {VERSION}, --refresh 3600) vs Parsl {PARSL_VERSION}; "
          f"{args.repeats} timed load(s) after {args.warmup} warm-up per page, timeout {args.timeout:g} s; "
          f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    goals = print_table(ours, parsl, sizes, args.timeout)
    rss = print_rss(servers, sizes)
    if args.sql_profile:
        for mm in ours:
            mm.slowest = slowest_statements(url, mm.statements)
        print_slowest(ours)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "args": {k: str(v) for k, v in vars(args).items()}, "store": {"url": url, "rows": counts, "fill": info},
            "pages": [mm.as_json() for mm in ours + parsl], "rss_bytes": rss,
            "goals": [{"goal": label, "met": ok} for label, ok in goals]}, indent=2) + "\n")
    return 1 if any(not ok for _, ok in goals) else 0


if __name__ == "__main__":
    sys.exit(main())
