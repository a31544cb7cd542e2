"""HighThroughputExecutor benchmark: parsl_repro's HTEX vs real Parsl's, Dask distributed and a process pool.

Every implementation runs 2 workers on this 2-core machine, each in its own subprocess (``--worker`` mode of
this file), with a fresh temporary ``run_dir``:

- ``parsl_repro``: ``HighThroughputExecutor(max_workers_per_node=2, provider=LocalProvider(init_blocks=1,
  max_blocks=1))`` in a default ``Config`` (store ON, resource sampling at its default interval);
- ``parsl_repro_off``: the same with ``Config(provenance=False)``;
- ``parsl``: real Parsl's HTEX with the same arguments (Parsl's defaults otherwise, so ``encrypted=True``),
  no monitoring;
- ``parsl_monitoring``: the same with ``MonitoringHub(hub_address='127.0.0.1', resource_monitoring_enabled=False)``;
- ``dask``: ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` + ``Client``;
- ``process_pool``: ``concurrent.futures.ProcessPoolExecutor(max_workers=2)``, the floor.

Figures, each the median of ``--repeats`` repetitions, every repetition a fresh process and load, with the
implementations taking turns: no-op tasks/s for each of ``--sizes`` (submit all, wait for all) after an untimed
warm-up of ``--warmup`` tasks; ms per task of a ``--chain`` dependent chain (each task takes the previous future
as its argument; the process pool waits for each result before the next submit), after a short warm-up chain;
seconds from the start of config/cluster creation to the first result of one no-op task (no warm-up); and the
peak RSS (``ru_maxrss``, the largest over repetitions) of the submitting process in the throughput runs.

Goals: ours (store ON) no-op throughput >= 3x Parsl HTEX (no monitoring) and >= 30% of the process pool's;
our chain latency <= 1/3 of Parsl's; our load-to-first-result < 1 s; recording cost (1 - ON/OFF
throughput) < 10%.

Real Parsl runs from ``bench/.venvs/parsl-monitoring`` (shared with ``store.py``), Dask from
``bench/.venvs/dask``; both are created on first use and reused. The Parsl pin, venv helpers and timer come
from ``core_threads.py`` and ``store.py``. The harness itself uses only the standard library.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from core_threads import BENCH_DIR, DEFAULT_OURS_PYTHON, _timed, ensure_venv
from store import DEFAULT_PARSL_VENV, _Impl, ensure_parsl_monitoring_venv, write_json

DASK_VERSION = "2026.8.0"
DEFAULT_DASK_VENV = BENCH_DIR / ".venvs" / "dask"
RESULT_PREFIX = "HTEX_RESULT "
MARKER_VAR = "PARSL_REPRO_HTEX_BENCH"
"""Set in each worker subprocess's environment, so every process it starts (interchanges, worker pools,
blocks that detach into their own sessions) can be found, and killed, after it exits."""
IMPLS = ("parsl_repro", "parsl_repro_off", "parsl", "parsl_monitoring", "dask", "process_pool")
PARSL_IMPLS = ("parsl", "parsl_monitoring")
PARTS = ("throughput", "chain", "first")
LABELS = {
    "parsl_repro": "parsl_repro HTEX, store ON",
    "parsl_repro_off": "parsl_repro HTEX, store OFF",
    "parsl": "Parsl HTEX",
    "parsl_monitoring": "Parsl HTEX + MonitoringHub",
    "dask": "Dask LocalCluster",
    "process_pool": "ProcessPoolExecutor",
}
VS_PARSL_GOAL = 3.0
VS_POOL_GOAL = 0.30
CHAIN_GOAL = 1 / 3
FIRST_RESULT_GOAL_S = 1.0
RECORDING_COST_GOAL = 0.10
LEFTOVER_GRACE_S = 10.0


# --------------------------------------------------------------------------
# Worker side: runs inside the implementation's interpreter.
# --------------------------------------------------------------------------

# The tasks are defined here rather than imported from core_threads: functions of ``__main__`` are
# serialized by value, so the worker processes need not import this directory's modules.


def _noop() -> None:
    return None


def _add_one(x: int) -> int:
    return x + 1


class _Kernel:
    """A parsl_repro or Parsl DataFlowKernel on an HTEX with one local block of 2 workers."""

    def __init__(self, impl: str) -> None:
        self.impl = impl
        self.frame = _Impl("parsl" if impl in PARSL_IMPLS else "parsl_repro")
        self.providers = importlib.import_module(f"{self.frame.module}.providers")
        self.noop = self.frame.lib.python_app(_noop)
        self.add_one = self.frame.lib.python_app(_add_one)
        self.tmp = tempfile.mkdtemp(prefix=f"{impl}-")
        self.run_dir = os.path.join(self.tmp, "runinfo")
        self.dfk: Any = None
        self.submitted = 0

    def start(self) -> None:
        executor = self.frame.executors.HighThroughputExecutor(
            max_workers_per_node=2, provider=self.providers.LocalProvider(init_blocks=1, max_blocks=1)
        )
        fields: dict[str, Any] = {}
        if self.impl == "parsl_repro_off":
            fields["provenance"] = False
        elif self.impl == "parsl_monitoring":
            hub = importlib.import_module("parsl.monitoring").MonitoringHub
            fields["monitoring"] = hub(hub_address="127.0.0.1", resource_monitoring_enabled=False)
        self.dfk = self.frame.lib.load(self.frame.config_cls(executors=[executor], run_dir=self.run_dir, **fields))

    def throughput(self, n: int) -> None:
        futures = [self.noop() for _ in range(n)]
        for f in futures:
            f.result()
        self.submitted += n

    def chain(self, n: int) -> None:
        f = self.add_one(0)
        for _ in range(n - 1):
            f = self.add_one(f)
        assert f.result() == n
        self.submitted += n

    def close(self) -> dict[str, Any]:
        """Clean up the kernel (if it was loaded) and remove the run directory; return what was seen."""
        info: dict[str, Any] = {}
        try:
            if self.dfk is not None:
                executor = self.dfk.executors["HighThroughputExecutor"]
                info["encrypted"] = executor.encrypted
                if self.frame.module == "parsl_repro":
                    info["resource_interval_s"] = executor.resource_monitoring_interval
                self.frame.before_cleanup(self.dfk)
                info["cleanup_s"] = _timed(self.dfk.cleanup)
                if self.impl in ("parsl_repro", "parsl_monitoring"):
                    info["recorded_tasks"] = self.frame.recorded_tasks(self.run_dir)
                    info["submitted_tasks"] = self.submitted
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return info

    def version(self) -> str:
        return self.frame.version()


class _Dask:
    """A Dask distributed LocalCluster of 2 single-threaded worker processes, and its Client."""

    def __init__(self) -> None:
        self.distributed = importlib.import_module("distributed")
        self.cluster: Any = None
        self.client: Any = None

    def start(self) -> None:
        self.cluster = self.distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True)
        self.client = self.distributed.Client(self.cluster)

    def throughput(self, n: int) -> None:
        # pure=False: identical no-op calls would otherwise share one key and run once
        futures = [self.client.submit(_noop, pure=False) for _ in range(n)]
        self.client.gather(futures)

    def chain(self, n: int) -> None:
        f = self.client.submit(_add_one, 0, pure=False)
        for _ in range(n - 1):
            f = self.client.submit(_add_one, f, pure=False)
        assert f.result() == n

    def close(self) -> dict[str, Any]:
        def close_both() -> None:
            if self.client is not None:
                self.client.close()
            if self.cluster is not None:
                self.cluster.close()

        return {"cleanup_s": _timed(close_both)}

    def version(self) -> str:
        dask = importlib.import_module("dask")
        return f"dask {dask.__version__} + distributed {self.distributed.__version__}"


class _Pool:
    """``concurrent.futures.ProcessPoolExecutor(max_workers=2)``: no dependencies, no record."""

    def __init__(self) -> None:
        self.futures = importlib.import_module("concurrent.futures")
        self.pool: Any = None

    def start(self) -> None:
        self.pool = self.futures.ProcessPoolExecutor(max_workers=2)

    def throughput(self, n: int) -> None:
        futures = [self.pool.submit(_noop) for _ in range(n)]
        for f in futures:
            f.result()

    def chain(self, n: int) -> None:
        x = 0
        for _ in range(n):
            x = self.pool.submit(_add_one, x).result()
        assert x == n

    def close(self) -> dict[str, Any]:
        return {"cleanup_s": _timed(lambda: self.pool and self.pool.shutdown(wait=True))}

    def version(self) -> str:
        return f"python {sys.version.split()[0]}"


def _runner(impl: str) -> _Kernel | _Dask | _Pool:
    if impl == "dask":
        return _Dask()
    if impl == "process_pool":
        return _Pool()
    return _Kernel(impl)


def worker_main(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    runner = _runner(args.worker)  # imports the framework: not part of any figure
    result: dict[str, Any] = {"import_s": time.perf_counter() - started}
    result.update(version=runner.version(), python=sys.executable)
    try:
        if args.part == "first":
            started = time.perf_counter()
            runner.start()
            loaded = time.perf_counter()
            runner.throughput(1)
            result["first_result_s"] = time.perf_counter() - started
            result["load_s"] = loaded - started
        else:
            result["load_s"] = _timed(runner.start)
            if args.part == "throughput":
                runner.throughput(args.warmup)
                result["run_s"] = _timed(lambda: runner.throughput(args.n))
            else:
                runner.chain(max(2, args.warmup // 10))
                result["run_s"] = _timed(lambda: runner.chain(args.n))
    finally:
        result.update(runner.close())
    result["rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# --------------------------------------------------------------------------
# Harness side: stdlib only.
# --------------------------------------------------------------------------


def ensure_dask_venv(venv_dir: Path) -> Path:
    """Create (or reuse) a venv with ``dask[distributed]==DASK_VERSION``; return its python."""
    return ensure_venv(venv_dir, f"dask[distributed]=={DASK_VERSION}",
                       f"import sys, dask, distributed; sys.exit(dask.__version__ != {DASK_VERSION!r})")


def _marked_processes(tag: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries ``MARKER_VAR=tag``."""
    needle = f"{MARKER_VAR}={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if needle not in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                continue
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rfind(")") + 2 :].split()[0] != "Z":
            found.append(int(entry))
    return found


def _describe(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmdline = "?"
    return f"{pid} {cmdline.strip()[:160]}"


def _kill_leftovers(tag: str, grace: float) -> list[str]:
    """Wait up to ``grace`` s for the worker's processes to exit, then kill the rest; return what was killed."""
    deadline = time.monotonic() + grace
    alive = _marked_processes(tag)
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = _marked_processes(tag)
    killed = [_describe(pid) for pid in alive]
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return killed


def run_worker(python: Path | str, impl: str, part: str, n: int, args: argparse.Namespace) -> dict[str, Any] | None:
    """Run one repetition of (implementation, part, size) in a subprocess; return its parsed result or None."""
    cmd = [
        str(python), str(Path(__file__).resolve()), "--worker", impl, "--part", part,
        "--n", str(n), "--warmup", str(args.warmup),
    ]  # fmt: skip
    tag = uuid.uuid4().hex
    # The venv's bin first on PATH: Parsl starts interchange.py and process_worker_pool.py by name.
    env = dict(os.environ, PATH=f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env[MARKER_VAR] = tag
    print(f"running {impl} {part} n={n:,} ...", file=sys.stderr, end="", flush=True)
    started = time.perf_counter()
    # Output to files, not pipes: a process left behind holding a pipe would block reading it.
    # Run from a neutral directory so the repo checkout does not shadow installs; it is also the worker's
    # TMPDIR, so its run_dir goes when it does, even after a timeout.
    with tempfile.TemporaryDirectory(prefix="bench-htex-", ignore_cleanup_errors=True) as cwd, \
            tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:  # fmt: skip
        env["TMPDIR"] = cwd
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd, env=env, start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        except BaseException:  # e.g. Ctrl-C: take the worker and all it started down too
            os.killpg(proc.pid, signal.SIGKILL)
            _kill_leftovers(tag, 0.0)
            raise
        if timed_out:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        leftovers = _kill_leftovers(tag, 1.0 if timed_out else LEFTOVER_GRACE_S)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    print(f" {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    if leftovers and not timed_out:
        print(f"  {impl} {part} left {len(leftovers)} process(es) running, killed:", file=sys.stderr)
        for line in leftovers:
            print(f"    {line}", file=sys.stderr)
    if timed_out:
        print(f"  {impl} {part} n={n:,} timed out after {args.timeout:g} s", file=sys.stderr)
        return None
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
            result["n"] = n
            result["leftovers"] = leftovers
            return result
    tail = "\n".join((stderr or stdout).splitlines()[-15:])
    print(f"  {impl} {part} failed (exit {proc.returncode}):\n{tail}", file=sys.stderr)
    return None


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _runs(parts: dict[str, dict[int, list[Any]]]) -> list[dict[str, Any] | None]:
    """Every worker result of one implementation (``parts[part][n]`` lists one per repetition; None: failed)."""
    return [r for by_size in parts.values() for runs in by_size.values() for r in runs]


def summarize(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per implementation: tasks/s and peak RSS by size, chain ms/task, load-to-first-result s (medians over
    the repetitions that completed; RSS the largest)."""
    figures: dict[str, dict[str, Any]] = {}
    for impl, parts in results.items():
        fig: dict[str, Any] = {"tasks_per_s": {}, "rss_mib": {}}
        for n, runs in parts.get("throughput", {}).items():
            done = [r for r in runs if r is not None]
            if done:
                fig["tasks_per_s"][n] = n / _median([r["run_s"] for r in done])
                fig["rss_mib"][n] = max(r["rss_bytes"] for r in done) / 2**20
        for n, runs in parts.get("chain", {}).items():
            done = [r for r in runs if r is not None]
            if done:
                fig["chain_ms"] = _median([r["run_s"] for r in done]) / n * 1000
        done = [r for runs in parts.get("first", {}).values() for r in runs if r is not None]
        if done:
            fig["first_s"] = _median([r["first_result_s"] for r in done])
            fig["import_s"] = _median([r["import_s"] for r in done])
        figures[impl] = fig
    return figures


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _ratio(value: float | None, ours: float | None) -> str:
    return "-" if value is None or not ours else f"{value / ours:.2f}x"


def print_report(
    results: dict[str, Any], figures: dict[str, dict[str, Any]], sizes: list[int], args: argparse.Namespace
) -> list[tuple[str, bool | None]]:
    """Print the tables and the goals; return the goals with their verdicts."""
    print()
    print(f"HTEX benchmark: 2 workers on {os.cpu_count()} cores, no-op tasks, median of {args.repeats}")
    before, after = args.load_average, os.getloadavg()[0]
    print(f"  (1-minute load average {before:.2f} before the run, {after:.2f} after; other work skews the figures)")
    for impl, parts in results.items():
        raws = [r for r in _runs(parts) if r]
        if not raws:
            print(f"  {impl:<18}FAILED")
            continue
        extra = ""
        if "encrypted" in raws[0]:
            extra = f", encrypted={raws[0]['encrypted']}"
        if "resource_interval_s" in raws[0]:
            interval = raws[0]["resource_interval_s"]
            extra += f", resource sampling every {interval:g} s" if interval else ", resource sampling off"
        print(f"  {impl:<18}{raws[0]['version']}{extra}")

    size_heads = "".join(f"{n:>11,}" for n in sizes)
    print()
    print(
        f"{'':<30}{'tasks/s':^{11 * len(sizes)}}{'chain':>10}{'load->1st':>11}{'import':>8}"
        f"{'peak RSS MiB':>{13 * len(sizes)}}"
    )
    rss_heads = "".join(f"{n:>13,}" for n in sizes)
    print(f"{'implementation':<30}{size_heads}{'ms/task':>10}{'s':>11}{'s':>8}{rss_heads}")
    for impl in results:
        fig = figures[impl]
        row = f"{LABELS[impl]:<30}"
        row += "".join(f"{_cell(fig['tasks_per_s'].get(n), ',.0f'):>11}" for n in sizes)
        row += f"{_cell(fig.get('chain_ms'), '.3f'):>10}{_cell(fig.get('first_s'), '.3f'):>11}"
        row += f"{_cell(fig.get('import_s'), '.2f'):>8}"
        row += "".join(f"{_cell(fig['rss_mib'].get(n), ',.0f'):>13}" for n in sizes)
        print(row)
    ours = figures.get("parsl_repro")
    if ours is not None:
        print()
        print("relative to parsl_repro store ON (value / ours)")
        for impl in results:
            fig = figures[impl]
            row = f"{LABELS[impl]:<30}"
            row += "".join(f"{_ratio(fig['tasks_per_s'].get(n), ours['tasks_per_s'].get(n)):>11}" for n in sizes)
            row += f"{_ratio(fig.get('chain_ms'), ours.get('chain_ms')):>10}"
            row += f"{_ratio(fig.get('first_s'), ours.get('first_s')):>11}{'':>8}"
            row += "".join(f"{_ratio(fig['rss_mib'].get(n), ours['rss_mib'].get(n)):>13}" for n in sizes)
            print(row)

    recorded = [
        (impl, n, [r for r in runs if r]) for impl in ("parsl_repro", "parsl_monitoring")
        for n, runs in results.get(impl, {}).get("throughput", {}).items() if any(runs)
    ]  # fmt: skip
    if recorded:
        print()
        print("tasks in the database after cleanup / tasks submitted (warm-up included), each repetition")
        for impl, n, runs in recorded:
            counts = ", ".join(f"{r['recorded_tasks']:,}/{r['submitted_tasks']:,}" for r in runs)
            print(f"  {LABELS[impl]:<30}n={n:>9,}: {counts}")
    leftovers = [(impl, r) for impl, parts in results.items() for r in _runs(parts) if r and r["leftovers"]]
    for impl, r in leftovers:
        print(
            f"  WARNING {impl}: {len(r['leftovers'])} process(es) still running {LEFTOVER_GRACE_S:g} s after the "
            f"worker exited (killed): {'; '.join(r['leftovers'])}"
        )

    print()
    print("Goals")
    goals: list[tuple[str, bool | None]] = []

    def goal(label: str, value: float | None, shown: str, ok: bool | None) -> None:
        verdict = "n/a" if ok is None else "PASS" if ok else "FAIL"
        print(f"  {label:<60}{shown if value is not None else 'n/a':>10}  {verdict}")
        goals.append((label, ok))

    ours = ours or {"tasks_per_s": {}}
    others = {impl: figures.get(impl, {"tasks_per_s": {}}) for impl in ("parsl", "process_pool", "parsl_repro_off")}
    for n in sizes:
        mine = ours["tasks_per_s"].get(n)
        theirs = others["parsl"]["tasks_per_s"].get(n)
        value = mine / theirs if mine and theirs else None
        goal(
            f"throughput ours/Parsl HTEX, n={n:,}, >= {VS_PARSL_GOAL:g}x",
            value,
            f"{value or 0:.2f}x",
            None if value is None else value >= VS_PARSL_GOAL,
        )
        floor = others["process_pool"]["tasks_per_s"].get(n)
        value = mine / floor if mine and floor else None
        goal(
            f"throughput ours/ProcessPoolExecutor, n={n:,}, >= {VS_POOL_GOAL:.0%}",
            value,
            f"{value or 0:.1%}",
            None if value is None else value >= VS_POOL_GOAL,
        )
        off = others["parsl_repro_off"]["tasks_per_s"].get(n)
        value = 1 - mine / off if mine and off else None
        goal(
            f"recording cost 1 - ON/OFF, n={n:,}, < {RECORDING_COST_GOAL:.0%}",
            value,
            f"{value or 0:.1%}",
            None if value is None else value < RECORDING_COST_GOAL,
        )
    mine, theirs = ours.get("chain_ms"), figures.get("parsl", {}).get("chain_ms")
    value = mine / theirs if mine and theirs else None
    goal(
        f"chain latency ours/Parsl HTEX, {args.chain} tasks, <= 1/3",
        value,
        f"{value or 0:.3f}",
        None if value is None else value <= CHAIN_GOAL,
    )
    value = ours.get("first_s")
    goal(
        f"load to first result, ours, < {FIRST_RESULT_GOAL_S:g} s",
        value,
        f"{value or 0:.3f} s",
        None if value is None else value < FIRST_RESULT_GOAL_S,
    )
    return goals


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--sizes", default="10000,100000", help="comma-separated no-op task counts for throughput")
    p.add_argument("--parsl-sizes", help="task counts for the two real Parsl variants (default: --sizes)")
    p.add_argument("--chain", type=int, default=500, help="length of the dependent chain")
    p.add_argument("--warmup", type=int, default=100, help="untimed warm-up tasks after each load")
    p.add_argument("--repeats", type=int, default=3, help="repetitions; the median is reported")
    p.add_argument("--quick", action="store_true", help="a fast look: --sizes 10000 --repeats 1")
    p.add_argument(
        "--python",
        default=str(DEFAULT_OURS_PYTHON) if DEFAULT_OURS_PYTHON.exists() else sys.executable,
        help="interpreter that has parsl_repro installed (default: the repo's .venv); also runs process_pool",
    )
    p.add_argument("--parsl-venv", type=Path, default=DEFAULT_PARSL_VENV, help="venv for parsl[monitoring]")
    p.add_argument("--dask-venv", type=Path, default=DEFAULT_DASK_VENV, help="venv for dask[distributed]")
    p.add_argument("--impls", default=",".join(IMPLS), help=f"comma-separated subset of {','.join(IMPLS)}")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    p.add_argument("--json", type=Path, help="also write raw results, figures and goal verdicts to this JSON file")
    p.add_argument("--timeout", type=float, default=1800.0, help="per-worker timeout (s)")
    p.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    p.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats = "10000", 1
    return args


def _subset(text: str, allowed: tuple[str, ...]) -> list[str]:
    chosen = [x.strip() for x in text.split(",") if x.strip()]
    unknown = set(chosen) - set(allowed)
    if unknown:
        raise SystemExit(f"unknown choice(s): {', '.join(sorted(unknown))}")
    return [x for x in allowed if x in chosen]


def _sizes(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args)
        return 0

    impls, parts = _subset(args.impls, IMPLS), _subset(args.parts, PARTS)
    sizes = _sizes(args.sizes)
    parsl_sizes = _sizes(args.parsl_sizes) if args.parsl_sizes else sizes
    pythons: dict[str, Path | str] = {
        "parsl_repro": args.python,
        "parsl_repro_off": args.python,
        "process_pool": args.python,
    }
    if set(impls) & set(PARSL_IMPLS):
        pythons["parsl"] = pythons["parsl_monitoring"] = ensure_parsl_monitoring_venv(args.parsl_venv.resolve())
    if "dask" in impls:
        pythons["dask"] = ensure_dask_venv(args.dask_venv.resolve())

    started = time.perf_counter()
    args.load_average = os.getloadavg()[0]
    # results[impl][part][n]: one worker result per repetition, None where it failed or timed out
    results: dict[str, dict[str, dict[int, list[Any]]]] = {impl: {} for impl in impls}
    plan = []
    if "throughput" in parts:
        plan += [("throughput", n) for n in sorted(set(sizes) | set(parsl_sizes))]
    plan += [(part, n) for part, n in (("chain", args.chain), ("first", 1)) if part in parts]
    # Each repetition is its own process, and the implementations take turns (in alternating order), so a
    # burst of other work on the machine lands on one repetition of several, not on all of one.
    for part, n in plan:
        takers = [i for i in impls if part != "throughput" or n in (parsl_sizes if i in PARSL_IMPLS else sizes)]
        for repeat in range(args.repeats):
            for impl in takers if repeat % 2 == 0 else takers[::-1]:
                runs = results[impl].setdefault(part, {}).setdefault(n, [])
                if None in runs:
                    continue  # it failed or timed out once: do not spend more timeouts on it
                print(f"[{repeat + 1}/{args.repeats}] ", file=sys.stderr, end="")
                runs.append(run_worker(pythons[impl], impl, part, n, args))

    figures = summarize(results)
    goals = print_report(results, figures, sorted(set(sizes) | set(parsl_sizes)), args)
    if parsl_sizes != sizes and set(impls) & set(PARSL_IMPLS):
        print(
            f"  (Parsl ran with n = {', '.join(f'{n:,}' for n in parsl_sizes)}; the others with "
            f"{', '.join(f'{n:,}' for n in sizes)})"
        )
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    if args.json:
        write_json(args.json, args, results, figures, goals)
    if any(r is None for parts_ in results.values() for r in _runs(parts_)):
        return 2
    return 1 if any(ok is False for _, ok in goals) else 0


if __name__ == "__main__":
    sys.exit(main())
