"""Export benchmark: ``parsl-repro export`` time, output size and peak memory, per format and run size.

The store is the dashboard benchmark's (``bench/viz.py``): a made-up workflow of 10,000 and of 100,000
tasks with retries, failures, memo hits, files, resource samples, blocks and nodes, written as our writer
writes a real one (cached under ``bench/.venvs/viz-stores``; filled on first use, which takes a few
minutes). For each size and each format, one export of the size's run runs in a fresh process (the
``--worker`` mode of this file), which reports its wall time, the bytes it wrote, what it wrote (triples,
records or entities) and its peak resident memory (``ru_maxrss``). Printed: seconds, microseconds per
task, MiB written and peak RSS, and how peak RSS grew from the small run to the large one: a writer that
streams stays flat, one that holds the document grows with it.

There is no competitor to run beside it: Parsl records no provenance it could export (its monitoring
database has no export), and Dask none at all. Results go to ``bench/results/export.json``.

    .venv/bin/python bench/export.py                      # both sizes, every format
    .venv/bin/python bench/export.py --sizes 10000 --formats prov-o,ro-crate
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "export.json"
FORMATS = ("prov-o", "prov-trig", "prov-jsonld", "prov-json", "prov-n", "prov-xml", "ro-crate")


def worker(url: str, run_id: str, fmt: str, out: str) -> None:
    """One export in this process; prints what it measured as JSON."""
    from parsl_repro.monitoring.engine import open_for_reading
    from parsl_repro.monitoring.export import export

    engine = open_for_reading(url)
    started = time.perf_counter()
    summary = export(engine, [run_id], fmt, out, force=True)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "bytes": summary.bytes, "records": summary.records,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def measure(python: str, url: str, run_id: str, fmt: str, workdir: str) -> dict[str, Any]:
    out = os.path.join(workdir, f"export-{fmt}")
    done = subprocess.run([python, __file__, "--worker", url, run_id, fmt, out], capture_output=True, text=True,
                          timeout=3600)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="run sizes (tasks) of the store to export")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--python", default=str(BENCH_DIR.parent / ".venv" / "bin" / "python"))
    parser.add_argument("--db", help="a store filled by bench/viz.py for the same sizes (default: its cache)")
    parser.add_argument("--refill", action="store_true", help="fill the store again")
    parser.add_argument("--worker", nargs=4, metavar=("URL", "RUN", "FORMAT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    sys.path.insert(0, str(BENCH_DIR))
    import viz  # the dashboard benchmark's store: same rows, same cache

    sizes = [int(s) for s in args.sizes.split(",")]
    formats = args.formats.split(",")
    url, info = viz.prepare_store(argparse.Namespace(db=args.db, refill=args.refill), sorted(set(sizes) | {10_000,
                                                                                                      100_000}))
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as workdir:
        for size in sizes:
            run_id = info["runs"][str(size)]["run"]
            for fmt in formats:
                found = measure(args.python, url, run_id, fmt, workdir)
                results.setdefault(fmt, {})[str(size)] = found
                print(f"  {fmt:12} {size:>7,} tasks: " + (found.get("error") or
                      f"{found['seconds']:.1f} s, {found['bytes'] / 2**20:.0f} MiB, "
                      f"peak RSS {found['peak_rss_mib']:.0f} MiB"), file=sys.stderr, flush=True)
    print(f"\nexport of one run, per format (store: {url.rsplit('/', 1)[-1]}; a fresh process per export)")
    header = f"{'format':12} {'tasks':>8} {'seconds':>8} {'us/task':>8} {'MiB out':>8} {'written':>12} {'peak RSS':>9}"
    print(header)
    for fmt in formats:
        for size in sizes:
            r = results[fmt][str(size)]
            if "error" in r:
                print(f"{fmt:12} {size:>8,} failed: {r['error']}")
                continue
            print(f"{fmt:12} {size:>8,} {r['seconds']:>8.1f} {r['seconds'] / size * 1e6:>8.0f} "
                  f"{r['bytes'] / 2**20:>8.0f} {r['records']:>12,} {r['peak_rss_mib']:>7.0f} MiB")
    if len(sizes) > 1:
        small, large = str(min(sizes)), str(max(sizes))
        print(f"\npeak RSS from {int(small):,} to {int(large):,} tasks "
              f"({int(large) // int(small)}x the tasks): a streaming writer stays flat")
        for fmt in formats:
            a, b = results[fmt][small], results[fmt][large]
            if "error" not in a and "error" not in b:
                print(f"  {fmt:12} {a['peak_rss_mib']:>5.0f} -> {b['peak_rss_mib']:>5.0f} MiB "
                      f"({b['peak_rss_mib'] / a['peak_rss_mib']:.1f}x)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"store": url, "sizes": sizes, "results": results}, indent=2))
    print(f"\nwrote {RESULTS.relative_to(BENCH_DIR.parent)}")


if __name__ == "__main__":
    main()
