"""Provenance store benchmark: what recording costs, memo replay speed, bytes per task.

Every figure uses ``Config(executors=[ThreadPoolExecutor(max_threads=2)], run_dir=<fresh tmp dir>)``
and is the median of ``--repeats`` repetitions; each (implementation, part) runs in its own
subprocess (``--worker`` mode of this file), after an untimed warm-up cycle of ``--warmup`` tasks.

1. throughput: ``--tasks`` (10,000) no-op python apps per fresh ``load``, measured (a) from the
   first submit to the last result, and (b) the same plus ``dfk.cleanup()`` (which flushes the
   store). parsl_repro with its store ON (the default) vs OFF (``provenance=False``); real Parsl
   without monitoring vs with ``MonitoringHub(resource_monitoring_enabled=False)``. Recording
   cost = 1 - on/off, for (a) and (b).
2. memo replay: run 1 executes ``--memo-tasks`` (100,000) ``@python_app(cache=True)`` tasks
   ``f(i)``; run 2 loads again with the same ``run_dir`` (so the same store) and
   ``Config(reuse_from_store=True)`` (by Parsl's rules, the default, nothing is reused without
   ``checkpoint_files``) and calls the same tasks: every one must be a memo hit (the app body's call log stays empty and
   ``task_state_counts`` shows N ``memo_done``). Replay tasks/s: (a) submit -> results, (b) the
   same plus ``load`` and ``cleanup``. Real Parsl replays from its checkpoints
   (``checkpoint_mode='task_exit'`` in run 1, ``checkpoint_files=get_all_checkpoints(run_dir)``
   in run 2) with ``--parsl-memo-tasks`` (10,000) tasks.
   2b. (part ``memo_ckpt``) the same replay in Parsl's documented checkpoint pattern, for both:
   ``Config(checkpoint_mode='task_exit', checkpoint_files=get_all_checkpoints(run_dir))`` in both
   runs (so every memo hit is checkpointed too).
3. database bytes per task after cleanup: ``provenance.db`` (+ ``-wal``/``-shm``) / tasks for
   the no-op run and for the cached run; Parsl's ``monitoring.db`` and checkpoint files for
   reference.

Goals: recording cost < 10% of our throughput; memo replay >= 20,000 tasks/s, from the store and in
the checkpoint pattern.

Real Parsl (``parsl[monitoring]==PARSL_VERSION``) lives in its own virtual environment
(``bench/.venvs/parsl-monitoring``), created on first use and reused. The machinery (the
Parsl pin, venv creation, the interpreter defaults, the no-op app, the timer) comes from
``core_threads.py``. The harness itself uses only the standard library.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import inspect
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core_threads import (
    BENCH_DIR,
    DEFAULT_OURS_PYTHON,
    PARSL_VERSION,
    _noop,
    _timed,
    ensure_venv,
)

DEFAULT_PARSL_VENV = BENCH_DIR / ".venvs" / "parsl-monitoring"
RESULT_PREFIX = "STORE_RESULT "
IMPLS = ("parsl_repro", "parsl")
PARTS = ("throughput", "memo", "memo_ckpt")
RECORDING_COST_GOAL = 0.10
REPLAY_GOAL = 20_000.0
STORE_FILE = {"parsl_repro": "provenance.db", "parsl": "monitoring.db"}
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


# --------------------------------------------------------------------------
# Worker side: runs inside the implementation's interpreter.
# --------------------------------------------------------------------------

_EXECUTED: list[int] = []
"""Arguments of every ``_cached_double`` call that really ran (list.append is thread-safe)."""


def _cached_double(i: int) -> int:
    _EXECUTED.append(i)
    return 2 * i


class _Impl:
    """One framework's modules, and the config fields each measured mode adds."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.lib = importlib.import_module(module)
        self.config_cls = importlib.import_module(f"{module}.config").Config
        self.executors = importlib.import_module(f"{module}.executors")

    def config(self, run_dir: str, **fields: Any) -> Any:
        pool = self.executors.ThreadPoolExecutor(max_threads=2)
        return self.config_cls(executors=[pool], run_dir=run_dir, **fields)

    def recording(self, on: bool) -> dict[str, Any]:
        """Config fields for the store ON/OFF (parsl_repro) or monitoring ON/OFF (Parsl)."""
        if self.module == "parsl_repro":
            return {} if on else {"provenance": False}
        if not on:
            return {}
        hub = importlib.import_module("parsl.monitoring").MonitoringHub
        return {"monitoring": hub(resource_monitoring_enabled=False)}

    def checkpointing(self, run_dir: str, first: bool, pattern: str = "default") -> tuple[dict[str, Any], str]:
        """Config fields for memo run 1 / run 2, and how to show them: each framework's default way
        (``pattern="default"``: our store; Parsl's task_exit then get_all_checkpoints), or Parsl's
        documented pattern for both (``"checkpoint"``: task_exit and get_all_checkpoints in both runs)."""
        get_all = importlib.import_module(f"{self.module}.utils").get_all_checkpoints
        if pattern == "checkpoint":
            fields: dict[str, Any] = {"checkpoint_mode": "task_exit", "checkpoint_files": get_all(run_dir)}
            shown = "task_exit + checkpoint_files=get_all_checkpoints() in both runs"
            if "checkpoint_mode" in inspect.signature(self.config_cls).parameters:
                return fields, f"Config({shown})"
            memoizer = importlib.import_module(f"{self.module}.dataflow.memoization").BasicMemoizer
            return {"memoizer": memoizer(**fields)}, f"BasicMemoizer({shown})"
        if self.module == "parsl_repro":  # Parsl's rules by default: reusing the store is asked for
            return ({}, "store") if first else ({"reuse_from_store": True}, "store (Config(reuse_from_store=True))")
        if first:
            fields = {"checkpoint_mode": "task_exit"}
        else:
            fields = {"checkpoint_files": get_all(run_dir)}
        if "checkpoint_mode" in inspect.signature(self.config_cls).parameters:
            return fields, "Config(checkpoint_mode / checkpoint_files): task_exit, then get_all_checkpoints()"
        memoizer = importlib.import_module("parsl.dataflow.memoization").BasicMemoizer
        shown = "BasicMemoizer checkpoints: task_exit, then get_all_checkpoints()"
        return {"memoizer": memoizer(**fields)}, shown

    def store_bytes(self, run_dir: str) -> int:
        """Bytes of the SQLite store (with its -wal/-shm files) in ``run_dir``; 0 if none."""
        base = os.path.join(run_dir, STORE_FILE[self.module])
        return sum(os.path.getsize(base + s) for s in SQLITE_SUFFIXES if os.path.exists(base + s))

    def recorded_tasks(self, run_dir: str) -> int:
        """Rows in the store's ``task`` table (both schemas have one): how many tasks were recorded."""
        path = os.path.join(run_dir, STORE_FILE[self.module])
        if not os.path.exists(path):
            return 0
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return db.execute("SELECT count(*) FROM task").fetchone()[0]
        except sqlite3.Error:
            return -1
        finally:
            db.close()

    def before_cleanup(self, dfk: Any) -> None:
        """Keep Parsl's cleanup from hanging when its monitoring database manager falls behind.

        Parsl joins the manager process for 30 s, then terminates it, then joins the feeder thread of
        the queue that fed it; with messages still in the pipe and no reader, that join never returns.
        Whatever is left in the pipe then is lost either way, so not waiting for it changes nothing
        measured (``recorded_tasks`` shows how much reached the database).
        """
        queue = getattr(getattr(dfk, "monitoring", None), "resource_msgs", None)
        if self.module == "parsl" and queue is not None:
            queue.cancel_join_thread()

    def memo_bytes(self, run_dir: str) -> int:
        """What memo replay reads from: our store, or Parsl's checkpoint files."""
        if self.module == "parsl_repro":
            return self.store_bytes(run_dir)
        total = 0
        for entry in os.scandir(run_dir):
            checkpoint = os.path.join(entry.path, "checkpoint")
            if entry.is_dir() and os.path.isdir(checkpoint):
                total += sum(f.stat().st_size for f in os.scandir(checkpoint) if f.is_file())
        return total

    def version(self) -> str:
        text = f"{self.module} {getattr(self.lib, '__version__', '?')}"
        if self.module == "parsl":
            try:
                text += f" + sqlalchemy {importlib.import_module('sqlalchemy').__version__}"
            except ImportError:
                text += " (no sqlalchemy)"
        return text


def _cycle(impl: _Impl, config: Any, submit: Callable[[], list[Any]]) -> tuple[dict[str, Any], list[Any]]:
    """load -> submit all -> all results -> cleanup, each phase timed; returns timings and results."""
    gc.collect()
    start = time.perf_counter()
    dfk = impl.lib.load(config)
    loaded = time.perf_counter()
    box: list[list[Any]] = []
    try:
        run_s = _timed(lambda: box.append([f.result() for f in submit()]))
        counts = {state.name: n for state, n in dfk.task_state_counts.items() if n}
    finally:
        before_cleanup = time.perf_counter()
        impl.before_cleanup(dfk)
        dfk.cleanup()
        cleanup_s = time.perf_counter() - before_cleanup
    timing = {"load_s": loaded - start, "run_s": run_s, "cleanup_s": cleanup_s, "counts": counts}
    return timing, box[0]


def _throughput(impl: _Impl, tasks: int, warmup: int, repeats: int) -> dict[str, Any]:
    noop = impl.lib.python_app(_noop)

    def one(on: bool, n: int) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix=f"bench-store-{impl.module}-") as tmp:
            run_dir = os.path.join(tmp, "runinfo")
            timing, _ = _cycle(impl, impl.config(run_dir, **impl.recording(on)), lambda: [noop() for _ in range(n)])
            timing["db_bytes"] = impl.store_bytes(run_dir)
            timing["recorded_tasks"] = impl.recorded_tasks(run_dir)
        return timing

    one(False, warmup)
    one(True, warmup)
    modes: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for r in range(repeats):  # alternate the order so drift does not favour one mode
        for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
            modes[mode].append(one(mode == "on", tasks))
    return {"tasks": tasks, "modes": modes}


def _memo(impl: _Impl, tasks: int, warmup: int, repeats: int, pattern: str = "default") -> dict[str, Any]:
    app = impl.lib.python_app(_cached_double, cache=True)
    shown = ""

    def pair(n: int) -> dict[str, Any]:
        nonlocal shown
        expected = [2 * i for i in range(n)]
        runs: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix=f"bench-memo-{impl.module}-") as tmp:
            run_dir = os.path.join(tmp, "runinfo")
            for name in ("run1", "run2"):
                fields, shown = impl.checkpointing(run_dir, first=name == "run1", pattern=pattern)
                _EXECUTED.clear()
                timing, results = _cycle(impl, impl.config(run_dir, **fields), lambda: [app(i) for i in range(n)])
                timing["executed"] = len(_EXECUTED)
                timing["correct"] = results == expected
                timing["db_bytes"] = impl.memo_bytes(run_dir)
                timing["recorded_tasks"] = impl.recorded_tasks(run_dir)
                runs[name] = timing
        return runs

    pair(warmup)
    return {"tasks": tasks, "memo_config": shown, "repeats": [pair(tasks) for _ in range(repeats)]}


def worker_main(args: argparse.Namespace) -> None:
    impl = _Impl(args.worker)
    if args.part == "throughput":
        result = _throughput(impl, args.tasks, args.warmup, args.repeats)
    else:
        tasks = args.memo_tasks if args.worker == "parsl_repro" else args.parsl_memo_tasks
        result = _memo(impl, tasks, args.warmup, args.repeats,
                       pattern="checkpoint" if args.part == "memo_ckpt" else "default")
    result["version"] = impl.version()
    result["python"] = sys.executable
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# --------------------------------------------------------------------------
# Harness side: stdlib only.
# --------------------------------------------------------------------------


def ensure_parsl_monitoring_venv(venv_dir: Path) -> Path:
    """Create (or reuse) a venv with ``parsl[monitoring]==PARSL_VERSION``; return its python."""
    return ensure_venv(venv_dir, f"parsl[monitoring]=={PARSL_VERSION}",
                       "import sys, parsl, sqlalchemy; from parsl.monitoring import MonitoringHub; "
                       f"import parsl.monitoring.db_manager; sys.exit(parsl.__version__ != {PARSL_VERSION!r})")


def run_worker(python: Path | str, impl: str, part: str, args: argparse.Namespace) -> dict[str, Any] | None:
    """Run one (implementation, part) in a subprocess; return its parsed result or None."""
    cmd = [
        str(python), str(Path(__file__).resolve()), "--worker", impl, "--part", part,
        "--tasks", str(args.tasks), "--memo-tasks", str(args.memo_tasks),
        "--parsl-memo-tasks", str(args.parsl_memo_tasks),
        "--warmup", str(args.warmup), "--repeats", str(args.repeats),
    ]  # fmt: skip
    print(f"running {impl} {part} with {python} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    # Run from a neutral directory so the repo checkout does not shadow installs.
    with tempfile.TemporaryDirectory(prefix="bench-cwd-") as cwd:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"{impl} {part} timed out after {args.timeout:g} s", file=sys.stderr)
            return None
    print(f"  ... {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    tail = "\n".join((proc.stderr or proc.stdout).splitlines()[-15:])
    print(f"{impl} {part} failed (exit {proc.returncode}):\n{tail}", file=sys.stderr)
    return None


def _med(values: list[float]) -> float:
    return statistics.median(values)


def summarize_throughput(raw: dict[str, Any]) -> dict[str, dict[str, float]]:
    n = raw["tasks"]
    out = {}
    for mode, cycles in raw["modes"].items():
        out[mode] = {
            "a_tasks_per_s": n / _med([c["run_s"] for c in cycles]),
            "b_tasks_per_s": n / _med([c["run_s"] + c["cleanup_s"] for c in cycles]),
            "load_s": _med([c["load_s"] for c in cycles]),
            "cleanup_s": _med([c["cleanup_s"] for c in cycles]),
            "bytes_per_task": _med([c["db_bytes"] for c in cycles]) / n,
            "recorded_min": min(c["recorded_tasks"] for c in cycles),
        }
    for key in ("a", "b"):
        on, off = out["on"][f"{key}_tasks_per_s"], out["off"][f"{key}_tasks_per_s"]
        out.setdefault("cost", {})[key] = 1.0 - on / off
    return out


def summarize_memo(raw: dict[str, Any]) -> dict[str, Any]:
    n, reps = raw["tasks"], raw["repeats"]
    out: dict[str, Any] = {"tasks": n}
    for name in ("run1", "run2"):
        runs = [r[name] for r in reps]
        out[name] = {
            "a_tasks_per_s": n / _med([r["run_s"] for r in runs]),
            "b_tasks_per_s": n / _med([r["load_s"] + r["run_s"] + r["cleanup_s"] for r in runs]),
            "load_s": _med([r["load_s"] for r in runs]),
            "cleanup_s": _med([r["cleanup_s"] for r in runs]),
            "recorded_min": min(r["recorded_tasks"] for r in runs),
        }
    out["run1"]["bytes_per_task"] = _med([r["run1"]["db_bytes"] for r in reps]) / n
    out["run2"]["bytes_per_task"] = _med([r["run2"]["db_bytes"] - r["run1"]["db_bytes"] for r in reps]) / n
    problems = []
    for i, r in enumerate(reps):
        one, two = r["run1"], r["run2"]
        if one["executed"] != n or not one["correct"]:
            problems.append(f"repeat {i}: run 1 executed {one['executed']}/{n}, correct={one['correct']}")
        memo_done = two["counts"].get("memo_done", 0)
        if two["executed"] != 0 or memo_done != n or not two["correct"]:
            problems.append(
                f"repeat {i}: run 2 executed {two['executed']} (want 0), memo_done {memo_done} (want {n}), "
                f"correct={two['correct']}"
            )
    out["verified"] = not problems
    out["problems"] = problems
    return out


def _rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def _row(label: str, a: str, b: str, extra: str = "") -> str:
    return f"  {label:<44}{a:>14}{b:>20}  {extra}".rstrip()


def _goal(label: str, value: str, ok: bool | None) -> tuple[str, bool | None]:
    verdict = "n/a" if ok is None else "PASS" if ok else "FAIL"
    print(f"  {label:<52}{value:>12}  {verdict}")
    return label, ok


def print_report(
    results: dict[str, dict[str, dict[str, Any] | None]], args: argparse.Namespace
) -> tuple[dict[str, Any], list[tuple[str, bool | None]]]:
    """Print the table; return the summary figures and the goals with their verdicts."""
    tput = {i: summarize_throughput(r["throughput"]) for i, r in results.items() if r.get("throughput")}
    summaries = {part: {i: summarize_memo(r[part]) for i, r in results.items() if r.get(part)}
                 for part in ("memo", "memo_ckpt")}
    memo = summaries["memo"]
    print()
    print(f"Provenance store benchmark: ThreadPoolExecutor(max_threads=2), fresh run_dir, median of {args.repeats}")
    for impl in IMPLS:
        for part, raw in results.get(impl, {}).items():
            version = raw["version"] if raw else "FAILED"
            print(f"  {impl} {part}: {version}")

    parts = {part for by_part in results.values() for part in by_part}
    if "throughput" in parts:
        print()
        print(f"1. Throughput, {args.tasks:,} no-op apps per load (tasks/s)")
        print(_row("", "(a) submit->all", "(b) incl. cleanup", "cleanup s   load s   tasks in DB (min)"))
    labels = {
        "parsl_repro": {"off": "parsl_repro  store OFF (provenance=False)", "on": "parsl_repro  store ON (default)"},
        "parsl": {"off": "parsl        no monitoring", "on": "parsl        MonitoringHub(resource_mon=False)"},
    }
    cost_label = {"parsl_repro": "  recording cost, 1 - ON/OFF", "parsl": "  monitoring cost, 1 - ON/OFF"}
    for impl in IMPLS:
        if impl not in results or "throughput" not in results[impl]:
            continue
        fig = tput.get(impl)
        if fig is None:
            print(_row(labels[impl]["on"].split()[0], "n/a", "n/a", "(failed)"))
            continue
        for mode in ("off", "on"):
            f = fig[mode]
            extra = f"{f['cleanup_s']:9.3f} {f['load_s']:8.3f}   {f['recorded_min']:,}/{args.tasks:,}"
            print(_row(labels[impl][mode], _rate(f["a_tasks_per_s"]), _rate(f["b_tasks_per_s"]), extra))
        print(_row(cost_label[impl], f"{fig['cost']['a']:.1%}", f"{fig['cost']['b']:.1%}"))
    if "parsl_repro" in tput and "parsl" in tput:
        ours, theirs = tput["parsl_repro"]["on"], tput["parsl"]["on"]
        ratio_a = ours["a_tasks_per_s"] / theirs["a_tasks_per_s"]
        ratio_b = ours["b_tasks_per_s"] / theirs["b_tasks_per_s"]
        print(_row("ours/parsl, store ON / with monitoring", f"{ratio_a:.2f}x", f"{ratio_b:.2f}x"))
        ours, theirs = tput["parsl_repro"]["off"], tput["parsl"]["off"]
        ratio_a = ours["a_tasks_per_s"] / theirs["a_tasks_per_s"]
        ratio_b = ours["b_tasks_per_s"] / theirs["b_tasks_per_s"]
        print(_row("ours/parsl, store OFF / no monitoring", f"{ratio_a:.2f}x", f"{ratio_b:.2f}x"))

    for part, title in (("memo", "2. Memo replay: run 1 executes N cached apps f(i); run 2, same run_dir, "
                                 "replays them (tasks/s)"),
                        ("memo_ckpt", "2b. Memo replay in Parsl's checkpoint pattern, for both (tasks/s)")):
        if part in parts:
            _print_memo(part, title, results, summaries[part])

    print()
    print("3. Database bytes per task (after cleanup; SQLite file + -wal/-shm)")
    rows: list[tuple[str, float]] = []
    if "parsl_repro" in tput:
        rows.append(("parsl_repro no-op run, store ON", tput["parsl_repro"]["on"]["bytes_per_task"]))
        rows.append(("parsl_repro no-op run, store OFF (expect 0)", tput["parsl_repro"]["off"]["bytes_per_task"]))
    if "parsl_repro" in memo:
        rows.append(("parsl_repro cached run 1 (results stored)", memo["parsl_repro"]["run1"]["bytes_per_task"]))
        rows.append(("parsl_repro replay run 2 (added per memo hit)", memo["parsl_repro"]["run2"]["bytes_per_task"]))
    if "parsl" in tput:
        rows.append(("parsl no-op run, monitoring.db", tput["parsl"]["on"]["bytes_per_task"]))
    if "parsl" in memo:
        rows.append(("parsl cached run 1, checkpoint files", memo["parsl"]["run1"]["bytes_per_task"]))
    for label, value in rows:
        print(f"  {label:<52}{value:>12,.0f}")

    print()
    print("Goals")
    goals: list[tuple[str, bool | None]] = []
    cost = tput.get("parsl_repro", {}).get("cost", {})
    for key, what in (("a", "submit->all"), ("b", "incl. cleanup")):
        value = cost.get(key)
        label = f"recording cost ({key}) {what} < {RECORDING_COST_GOAL:.0%}"
        shown = "n/a" if value is None else f"{value:.1%}"
        goals.append(_goal(label, shown, None if value is None else value < RECORDING_COST_GOAL))
    for part, pattern in (("memo", "store"), ("memo_ckpt", "checkpoint pattern")):
        ours_memo = summaries[part].get("parsl_repro")
        for key, what in (("a", "submit->all"), ("b", "+load+cleanup")):
            if part == "memo_ckpt" and key == "b":
                continue  # the issue's goal for the checkpoint pattern is the hits' own rate
            value = None if ours_memo is None else ours_memo["run2"][f"{key}_tasks_per_s"]
            ok = None if value is None else value >= REPLAY_GOAL and ours_memo["verified"]
            goals.append(_goal(f"memo replay, {pattern} ({key}) {what} >= {REPLAY_GOAL:,.0f} tasks/s", _rate(value),
                               ok))
    return {"throughput": tput, **summaries}, goals


def _print_memo(part: str, title: str, results: dict[str, Any], memo: dict[str, Any]) -> None:
    print()
    print(title)
    print(_row("", "(a) submit->all", "(b) +load+cleanup", "cleanup s   load s   tasks in DB (min)"))
    for impl in IMPLS:
        if impl not in results or part not in results[impl]:
            continue
        fig, raw = memo.get(impl), results[impl][part]
        if fig is None or raw is None:
            print(_row(f"{impl:<12} (failed)", "n/a", "n/a"))
            continue
        n = fig["tasks"]
        print(f"  {impl}, N = {n:,}, memo from {raw['memo_config']}")
        for name, label in (("run1", "run 1: execute + record"), ("run2", "run 2: replay")):
            f = fig[name]
            extra = f"{f['cleanup_s']:9.3f} {f['load_s']:8.3f}"
            if impl == "parsl_repro":
                extra += f"   {f['recorded_min']:,}"
            print(_row(f"  {label}", _rate(f["a_tasks_per_s"]), _rate(f["b_tasks_per_s"]), extra))
        state = "verified" if fig["verified"] else "NOT VERIFIED: " + "; ".join(fig["problems"])
        print(f"    run 2: all {n:,} memo hits, 0 bodies executed: {state}")
    if "parsl_repro" in memo and "parsl" in memo:
        ours, theirs = memo["parsl_repro"]["run2"], memo["parsl"]["run2"]
        ratio_a = ours["a_tasks_per_s"] / theirs["a_tasks_per_s"]
        ratio_b = ours["b_tasks_per_s"] / theirs["b_tasks_per_s"]
        note = "" if memo["parsl_repro"]["tasks"] == memo["parsl"]["tasks"] else "(different N)"
        print(_row("ours/parsl replay", f"{ratio_a:.2f}x", f"{ratio_b:.2f}x", note))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--tasks", type=int, default=10_000, help="no-op tasks per throughput cycle")
    p.add_argument("--memo-tasks", type=int, default=100_000, help="cached tasks for parsl_repro's memo replay")
    p.add_argument("--parsl-memo-tasks", type=int, default=10_000, help="cached tasks for Parsl's memo replay")
    p.add_argument("--warmup", type=int, default=200, help="tasks in the untimed warm-up cycle")
    p.add_argument("--repeats", type=int, default=3, help="repetitions; the median is reported")
    p.add_argument(
        "--python",
        default=str(DEFAULT_OURS_PYTHON) if DEFAULT_OURS_PYTHON.exists() else sys.executable,
        help="interpreter that has parsl_repro installed (default: the repo's .venv)",
    )
    p.add_argument("--parsl-venv", type=Path, default=DEFAULT_PARSL_VENV, help="venv for parsl[monitoring]")
    p.add_argument("--impls", default=",".join(IMPLS), help=f"comma-separated subset of {','.join(IMPLS)}")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    p.add_argument("--json", type=Path, help="also write raw results, figures and goals to this JSON file")
    p.add_argument("--timeout", type=float, default=900.0, help="per-worker timeout (s)")
    p.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    p.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _subset(text: str, allowed: tuple[str, ...]) -> list[str]:
    chosen = [x.strip() for x in text.split(",") if x.strip()]
    unknown = set(chosen) - set(allowed)
    if unknown:
        raise SystemExit(f"unknown choice(s): {', '.join(sorted(unknown))}")
    return [x for x in allowed if x in chosen]


def write_json(path: Path, args: argparse.Namespace, results: Any, figures: Any,
               goals: list[tuple[str, bool]]) -> None:
    """The raw results, figures and goal verdicts of a benchmark run, for ``--json``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "results": results,
        "figures": figures,
        "goals": [{"goal": label, "met": ok} for label, ok in goals],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args)
        return 0

    impls, parts = _subset(args.impls, IMPLS), _subset(args.parts, PARTS)
    pythons: dict[str, Path | str] = {"parsl_repro": args.python}
    if "parsl" in impls:
        pythons["parsl"] = ensure_parsl_monitoring_venv(args.parsl_venv.resolve())

    started = time.perf_counter()
    results = {impl: {part: run_worker(pythons[impl], impl, part, args) for part in parts} for impl in impls}
    figures, goals = print_report(results, args)
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    if args.json:
        write_json(args.json, args, results, figures, goals)
    if any(r is None for by_part in results.values() for r in by_part.values()):
        return 2
    return 1 if any(ok is False for _, ok in goals) else 0


if __name__ == "__main__":
    sys.exit(main())
