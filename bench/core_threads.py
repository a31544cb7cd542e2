"""Core overhead benchmark on a ThreadPoolExecutor: parsl_repro vs real Parsl.

What it measures, for each implementation, with the same configuration
``Config(executors=[ThreadPoolExecutor(max_threads=2)], run_dir=<tmp>)``:

1. throughput: submit N no-op python apps (default 10,000), then wait for all
   of them; reported in tasks/s;
2. latency: a dependent chain of M apps (default 500), each app taking the
   previous app's future as its argument; total time / M, reported in ms/task.

A bare ``concurrent.futures.ThreadPoolExecutor(max_workers=2)`` is measured as
the floor (throughput: submit + wait; chain: submit, ``.result()``, repeat).

3. start-up: ``load(Config(run_dir=...))`` (the default ThreadPoolExecutor) up
   to the first app's result, and ``load()`` alone, each run in a fresh process
   (``--startup-worker`` mode); the median of ``--startup-runs`` processes, after
   one untimed process that writes the bytecode caches (the processes import with
   ``PYTHONPYCACHEPREFIX`` under ``bench/.venvs``, as a user's second run would,
   whatever ``PYTHONDONTWRITEBYTECODE`` says). Real Parsl (no monitoring) beside
   ``parsl_repro`` with its store on (the default SQLite store under runinfo/,
   which the untimed process created; and a fresh one per process) and off
   (``provenance=False``). ``--only startup`` runs just this part.

Each implementation runs in its own subprocess (``--worker`` mode of this same
file) after a warm-up of ~200 tasks; every figure is the median of
``--repeats`` repetitions. Real Parsl is installed, pinned, into its own
virtual environment (``bench/.venvs/parsl``), created on first use and reused.

The harness itself uses only the standard library. Goals: ours/parsl
throughput >= 4x, ours/parsl latency <= 0.25, and load() to the first result
with the store on <= 0.1 s.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gc
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PARSL_VERSION = "2026.10.26"
BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_PARSL_VENV = BENCH_DIR / ".venvs" / "parsl"
DEFAULT_OURS_PYTHON = BENCH_DIR.parent / ".venv" / "bin" / "python"
RESULT_PREFIX = "CORE_THREADS_RESULT "
IMPLS = ("cf", "parsl", "parsl_repro")
THROUGHPUT_GOAL = 4.0
LATENCY_GOAL = 0.25
STARTUP_GOAL_S = 0.1
STARTUP_PYCACHE = BENCH_DIR / ".venvs" / "pycache"
STARTUP_VARIANTS = {
    # label: (implementation, store on, a fresh run directory (and store) per process)
    "parsl": ("parsl", False, False),
    "parsl_repro": ("parsl_repro", True, False),
    "parsl_repro fresh store": ("parsl_repro", True, True),
    "parsl_repro store off": ("parsl_repro", False, False),
}


# --------------------------------------------------------------------------
# Worker side: runs inside the implementation's interpreter.
# --------------------------------------------------------------------------


def _noop() -> None:
    return None


def _add_one(x: int) -> int:
    return x + 1


def _timed(fn: Callable[[], None]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _run_cf(tasks: int, chain: int, warmup: int, repeats: int) -> dict[str, Any]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:

        def throughput(n: int) -> None:
            futures = [pool.submit(_noop) for _ in range(n)]
            for f in futures:
                f.result()

        def dependent_chain(n: int) -> None:
            x = 0
            for _ in range(n):
                x = pool.submit(_add_one, x).result()
            assert x == n, x

        throughput(warmup)
        dependent_chain(warmup // 10)
        tput = [_timed(lambda: throughput(tasks)) for _ in range(repeats)]
        lat = [_timed(lambda: dependent_chain(chain)) for _ in range(repeats)]
    return {
        "version": f"python {sys.version.split()[0]}",
        "throughput_s": tput,
        "chain_s": lat,
    }


def _run_dfk(
    module: str, tasks: int, chain: int, warmup: int, repeats: int
) -> dict[str, Any]:
    lib = importlib.import_module(module)
    config_mod = importlib.import_module(f"{module}.config")
    executors_mod = importlib.import_module(f"{module}.executors")

    noop = lib.python_app(_noop)
    add_one = lib.python_app(_add_one)

    def throughput(n: int) -> None:
        futures = [noop() for _ in range(n)]
        for f in futures:
            f.result()

    def dependent_chain(n: int) -> None:
        f = add_one(0)
        for _ in range(n - 1):
            f = add_one(f)
        result = f.result()
        assert result == n, result

    with tempfile.TemporaryDirectory(prefix=f"bench-{module}-") as tmp:
        config = config_mod.Config(
            executors=[executors_mod.ThreadPoolExecutor(max_threads=2)],
            run_dir=os.path.join(tmp, "runinfo"),
        )
        dfk = lib.load(config)
        try:
            throughput(warmup)
            dependent_chain(warmup // 10)
            tput = [_timed(lambda: throughput(tasks)) for _ in range(repeats)]
            lat = [_timed(lambda: dependent_chain(chain)) for _ in range(repeats)]
        finally:
            dfk.cleanup()
    version = getattr(lib, "__version__", "?")
    return {"version": f"{module} {version}", "throughput_s": tput, "chain_s": lat}


def startup_worker_main(impl: str, store: bool, run_dir: str) -> None:
    """One start-up, timed from this process's first import of the implementation."""
    started = time.perf_counter()
    lib = importlib.import_module(impl)
    config_mod = importlib.import_module(f"{impl}.config")
    add_one = lib.python_app(_add_one)
    config = config_mod.Config(run_dir=run_dir, **({} if store or impl == "parsl" else {"provenance": False}))
    imported = time.perf_counter()
    dfk = lib.load(config)
    loaded = time.perf_counter()
    result = add_one(1).result()
    first = time.perf_counter()
    dfk.cleanup()
    cleaned = time.perf_counter()
    assert result == 2, result
    print(RESULT_PREFIX + json.dumps({
        "version": f"{impl} {getattr(lib, '__version__', '?')}", "import_s": imported - started,
        "load_s": loaded - imported, "first_result_s": first - imported, "cleanup_s": cleaned - first,
    }), flush=True)


def worker_main(impl: str, tasks: int, chain: int, warmup: int, repeats: int) -> None:
    if impl == "cf":
        result = _run_cf(tasks, chain, warmup, repeats)
    else:
        result = _run_dfk(impl, tasks, chain, warmup, repeats)
    result["python"] = sys.executable
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# --------------------------------------------------------------------------
# Harness side: stdlib only.
# --------------------------------------------------------------------------


def _venv_python(venv_dir: Path) -> Path:
    return venv_dir / "bin" / "python"


def ensure_venv(venv_dir: Path, requirement: str, check: str) -> Path:
    """Create (or reuse) a venv in which ``check`` (Python code) exits 0, installing
    ``requirement`` with pip when it does not; return its python. Every benchmark's competitor
    (Parsl, its monitoring and visualization, Dask) lives in one of these."""
    python = _venv_python(venv_dir)

    def ok() -> bool:
        return python.exists() and subprocess.run(
            [str(python), "-c", check], check=False, capture_output=True
        ).returncode == 0

    if ok():
        return python
    if not python.exists():
        print(f"creating a venv in {venv_dir}", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(venv_dir)], check=True
        )
    print(f"installing {requirement} into {venv_dir}", file=sys.stderr)
    cmd = [str(python), "-m", "pip", "install", "-q", requirement]
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    if not ok():
        raise SystemExit(f"{requirement} does not import from {python}")
    return python


def ensure_parsl_venv(venv_dir: Path) -> Path:
    """Create (or reuse) a venv holding parsl==PARSL_VERSION; return its python."""
    return ensure_venv(
        venv_dir,
        f"parsl=={PARSL_VERSION}",
        f"import parsl, sys; sys.exit(parsl.__version__ != {PARSL_VERSION!r})",
    )


def run_worker(
    python: Path | str, impl: str, args: argparse.Namespace
) -> dict[str, Any] | None:
    """Run one implementation in a subprocess; return its parsed result or None."""
    cmd = [
        str(python), str(Path(__file__).resolve()), "--worker", impl,
        "--tasks", str(args.tasks), "--chain", str(args.chain),
        "--warmup", str(args.warmup), "--repeats", str(args.repeats),
    ]  # fmt: skip
    print(f"running {impl} with {python} ...", file=sys.stderr, flush=True)
    # Run from a neutral directory so the repo checkout does not shadow installs.
    with tempfile.TemporaryDirectory(prefix="bench-cwd-") as cwd:
        proc = subprocess.run(
            cmd,
            check=False,
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=args.timeout,
        )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    tail = "\n".join((proc.stderr or proc.stdout).splitlines()[-15:])
    print(f"{impl} failed (exit {proc.returncode}):\n{tail}", file=sys.stderr)
    return None


def _startup_env() -> dict[str, str]:
    """The environment of start-up processes: bytecode cached (in a bench-owned directory)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(STARTUP_PYCACHE)
    return env


def _startup_once(python: Path | str, impl: str, store: bool, run_dir: str, timeout: float) -> dict[str, Any] | None:
    cmd = [
        str(python), str(Path(__file__).resolve()), "--startup-worker", impl,
        "--store", "on" if store else "off", "--run-dir", run_dir,
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-cwd-") as cwd:
        proc = subprocess.run(
            cmd, check=False, capture_output=True, text=True, cwd=cwd,
            timeout=timeout, env=_startup_env(),
        )  # fmt: skip
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    tail = "\n".join((proc.stderr or proc.stdout).splitlines()[-15:])
    print(f"start-up of {impl} failed (exit {proc.returncode}):\n{tail}", file=sys.stderr)
    return None


def run_startup(
    python: Path | str, label: str, args: argparse.Namespace
) -> dict[str, Any] | None:
    """Time ``args.startup_runs`` start-ups of one variant, each in a fresh process, after an
    untimed one (bytecode caches; the store for the variants that reuse one)."""
    impl, store, fresh = STARTUP_VARIANTS[label]
    print(f"start-up of {label} with {python} ...", file=sys.stderr, flush=True)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        for n in range(args.startup_runs + 1):
            run_dir = os.path.join(tmp, f"{n}" if fresh else "shared", "runinfo")
            result = _startup_once(python, impl, store, run_dir, args.timeout)
            if result is None:
                return None
            if n:
                runs.append(result)
    merged: dict[str, Any] = {"version": runs[0]["version"]}
    for key in ("import_s", "load_s", "first_result_s", "cleanup_s"):
        merged[key] = [r[key] for r in runs]
    return merged


def print_startup_table(results: dict[str, dict[str, Any] | None], runs: int) -> bool | None:
    """Print the start-up figures; return whether ours (store on) meets the goal (None: n/a)."""
    print()
    print(f"start-up: load(Config(run_dir=...)) to the first result on threads, median of {runs} processes")
    print(
        f"{'implementation':<26}{'load() s':>10}{'to 1st result s':>17}{'ratio':>8}"
        f"{'import s':>10}{'cleanup s':>11}"
    )
    parsl = results.get("parsl")
    parsl_first = statistics.median(parsl["first_result_s"]) if parsl else None
    for label, raw in results.items():
        if raw is None:
            print(f"{label:<26}{'n/a':>10}{'n/a':>17}  (failed)")
            continue
        load, first = statistics.median(raw["load_s"]), statistics.median(raw["first_result_s"])
        ratio = f"{first / parsl_first:7.1f}x" if parsl_first else f"{'n/a':>8}"
        print(
            f"{label:<26}{load:>10.3f}{first:>17.3f}{ratio:>8}"
            f"{statistics.median(raw['import_s']):>10.3f}{statistics.median(raw['cleanup_s']):>11.3f}"
        )
    print("(ratio: to the first result, over Parsl's; import: the implementation, its Config and python_app)")
    ours = results.get("parsl_repro")
    if ours is None:
        return None
    first = statistics.median(ours["first_result_s"])
    ok = first <= STARTUP_GOAL_S
    print(
        f"start-up, store on: {first:.3f} s  (goal <= {STARTUP_GOAL_S:g} s)  {'PASS' if ok else 'FAIL'}"
    )
    return ok


def summarize(raw: dict[str, Any], tasks: int, chain: int) -> dict[str, float]:
    return {
        "throughput": tasks / statistics.median(raw["throughput_s"]),
        "latency_ms": statistics.median(raw["chain_s"]) / chain * 1000.0,
    }


def print_table(
    results: dict[str, dict[str, Any] | None], args: argparse.Namespace
) -> bool | None:
    """Print the results table; return whether both goals are met (None: n/a)."""
    figures = {k: summarize(v, args.tasks, args.chain) for k, v in results.items() if v}
    print()
    print(
        f"ThreadPoolExecutor(max_threads=2): {args.tasks} no-op tasks, "
        f"{args.chain}-task chain, median of {args.repeats}"
    )
    print(f"{'implementation':<16}{'tasks/s':>12}{'ms/task (chain)':>18}  version")
    for impl in IMPLS:
        if impl not in results:
            continue
        fig, raw = figures.get(impl), results[impl]
        if fig is None or raw is None:
            print(f"{impl:<16}{'n/a':>12}{'n/a':>18}  (failed)")
            continue
        tput, lat = fig["throughput"], fig["latency_ms"]
        print(f"{impl:<16}{tput:>12.0f}{lat:>18.3f}  {raw['version']}")
    print()
    ours, parsl = figures.get("parsl_repro"), figures.get("parsl")
    if ours is None or parsl is None:
        print("ratios: n/a (need both parsl_repro and parsl)")
        return None
    tput_ratio = ours["throughput"] / parsl["throughput"]
    lat_ratio = ours["latency_ms"] / parsl["latency_ms"]
    tput_ok, lat_ok = tput_ratio >= THROUGHPUT_GOAL, lat_ratio <= LATENCY_GOAL
    print(
        f"throughput ratio ours/parsl: {tput_ratio:6.2f}x  "
        f"(goal >= {THROUGHPUT_GOAL:g}x)  {'PASS' if tput_ok else 'FAIL'}"
    )
    print(
        f"latency ratio    ours/parsl: {lat_ratio:6.3f}   "
        f"(goal <= {LATENCY_GOAL:g})   {'PASS' if lat_ok else 'FAIL'}"
    )
    return tput_ok and lat_ok


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None
    )
    p.add_argument(
        "--tasks", type=int, default=10_000, help="no-op tasks for throughput"
    )
    p.add_argument(
        "--chain", type=int, default=500, help="length of the dependent chain"
    )
    p.add_argument(
        "--warmup", type=int, default=200, help="warm-up tasks before timing"
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="repetitions; the median is reported"
    )
    p.add_argument(
        "--python",
        default=str(DEFAULT_OURS_PYTHON)
        if DEFAULT_OURS_PYTHON.exists()
        else sys.executable,
        help="interpreter that has parsl_repro installed (default: the repo's .venv)",
    )
    p.add_argument("--parsl-venv", type=Path, default=DEFAULT_PARSL_VENV)
    p.add_argument(
        "--impls",
        default=",".join(IMPLS),
        help=f"comma-separated subset of {','.join(IMPLS)}",
    )
    p.add_argument("--json", type=Path, help="also write raw results to this JSON file")
    p.add_argument(
        "--timeout", type=float, default=1800.0, help="per-worker timeout (s)"
    )
    p.add_argument(
        "--only",
        choices=("core", "startup"),
        help="run only the core figures (throughput, latency) or only start-up",
    )
    p.add_argument(
        "--startup-runs",
        type=int,
        default=7,
        help="fresh processes per start-up figure; the median is reported",
    )
    p.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    p.add_argument(
        "--startup-worker", choices=("parsl", "parsl_repro"), help=argparse.SUPPRESS
    )
    p.add_argument("--store", choices=("on", "off"), default="on", help=argparse.SUPPRESS)
    p.add_argument("--run-dir", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.tasks, args.chain, args.warmup, args.repeats)
        return 0
    if args.startup_worker:
        startup_worker_main(args.startup_worker, args.store == "on", args.run_dir)
        return 0

    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    unknown = set(impls) - set(IMPLS)
    if unknown:
        raise SystemExit(f"unknown implementation(s): {', '.join(sorted(unknown))}")
    pythons: dict[str, Path | str] = {"cf": args.python, "parsl_repro": args.python}
    if "parsl" in impls:
        pythons["parsl"] = ensure_parsl_venv(args.parsl_venv.resolve())

    results: dict[str, dict[str, Any] | None] = {}
    if args.only != "startup":
        results = {
            impl: run_worker(pythons[impl], impl, args) for impl in IMPLS if impl in impls
        }
    startup: dict[str, dict[str, Any] | None] = {}
    if args.only != "core":
        startup = {
            label: run_startup(pythons[impl], label, args)
            for label, (impl, _, _) in STARTUP_VARIANTS.items()
            if impl in impls
        }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "results": results,
            "startup": startup,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    goals = []
    if results:
        goals.append(print_table(results, args))
    if startup:
        goals.append(print_startup_table(startup, args.startup_runs))
    if any(r is None for r in (*results.values(), *startup.values())):
        return 2
    return 1 if False in goals else 0


if __name__ == "__main__":
    sys.exit(main())
