"""Time from ``load()`` to the first result on each kind of site, ours beside real Parsl.

A site is a HighThroughputExecutor whose block comes from a provider: this machine
(``LocalProvider``), the real single-node Slurm cluster of ``scripts/slurm.sh``, the real Grid
Engine cell of ``scripts/gridengine.sh``, and, for parsl_repro only (Parsl removed its channels),
the same ``LocalProvider`` and Slurm reached through ``SSHChannel`` to the loopback sshd of
``scripts/sshd.sh``, with the interchange started on the "login node" over SSH. Each figure is
the median of ``--repeats`` fresh processes: ``load()`` called, one no-op app submitted, its
result back (the block is submitted, its job starts, the worker pool connects, the task runs);
``cleanup()`` is timed after it.

    .venv/bin/python bench/sites.py [--repeats 3] [--only local,slurm,...]

Real Parsl (``parsl==2026.10.26``) runs from ``bench/.venvs/parsl``, made on first use. The
servers are started and stopped by this script, as the tests do.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from core_threads import DEFAULT_PARSL_VENV, ensure_parsl_venv

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
RESULT_PREFIX = "RESULT "
SITES = ("local", "slurm", "gridengine", "ssh-local", "ssh-slurm")
OURS_ONLY = {"ssh-local", "ssh-slurm"}


def _noop() -> int:
    return 1


def worker_main(module: str, site: str, servers: dict[str, Any], run_dir: str) -> None:
    """In a fresh process: build the site's config with ``module`` (parsl or parsl_repro), time
    load() to the first result and cleanup(), print them as one JSON line."""
    pkg = importlib.import_module(module)
    config_mod = importlib.import_module(f"{module}.config")
    executors = importlib.import_module(f"{module}.executors")
    providers = importlib.import_module(f"{module}.providers")
    launchers = importlib.import_module(f"{module}.launchers")
    venv_bin = os.path.dirname(sys.executable)
    worker_init = f"export PATH={venv_bin}:$PATH"
    channel = None
    if site.startswith("ssh-"):
        from parsl_repro.channels import SSHChannel
        sshd = servers["sshd"]
        channel = SSHChannel(sshd["host"], port=sshd["port"], username="root", key_filename=sshd["root_key"],
                             host_keys_filename=sshd["known_hosts"], script_dir=os.path.join(run_dir, "remote"),
                             envs={"SLURM_CONF": servers["slurm"]} if site == "ssh-slurm" else None)
    extra = {"channel": channel} if channel is not None else {}
    if site in ("local", "ssh-local"):
        provider = providers.LocalProvider(worker_init=worker_init, **extra)
    elif site in ("slurm", "ssh-slurm"):
        os.environ["SLURM_CONF"] = servers["slurm"]
        provider = providers.SlurmProvider(partition="debug", exclusive=False, walltime="00:10:00",
                                           launcher=launchers.SimpleLauncher(), worker_init=worker_init, **extra)
    else:
        os.environ.update(servers["gridengine"])
        provider = providers.GridEngineProvider(walltime="00:10:00", worker_init=worker_init)
    htex = executors.HighThroughputExecutor(label=site.replace("-", "_"), address="127.0.0.1", provider=provider,
                                            max_workers_per_node=1, heartbeat_period=2, heartbeat_threshold=10)
    config = config_mod.Config(executors=[htex], run_dir=os.path.join(run_dir, "runinfo"))
    app = pkg.python_app(_noop)
    started = time.perf_counter()
    dfk = pkg.load(config)
    assert app().result(timeout=300) == 1
    first = time.perf_counter() - started
    started = time.perf_counter()
    dfk.cleanup()
    cleanup = time.perf_counter() - started
    print(RESULT_PREFIX + json.dumps({"first_result": first, "cleanup": cleanup}), flush=True)


def _run(python: str, module: str, site: str, servers: dict[str, Any], timeout: float) -> dict[str, float] | None:
    with tempfile.TemporaryDirectory(prefix="bench-sites-") as run_dir:
        env = dict(os.environ)
        env["PATH"] = f"{os.path.dirname(python)}:{env.get('PATH', '')}"  # Parsl runs interchange.py from PATH
        if site == "gridengine":
            env.update(servers["gridengine"])
        proc = subprocess.run([python, str(Path(__file__).resolve()), "--worker", module, "--site", site,
                               "--servers", json.dumps(servers), "--run-dir", run_dir],
                              capture_output=True, text=True, timeout=timeout, cwd=run_dir, env=env)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    tail = "\n".join((proc.stderr or proc.stdout).splitlines()[-12:])
    print(f"{module} on {site} failed (exit {proc.returncode}):\n{tail}", file=sys.stderr)
    return None


def _server(script: str, directory: Path, command: str = "start") -> str:
    proc = subprocess.run(["bash", str(SCRIPTS / script), command, str(directory)], capture_output=True, text=True,
                          timeout=900, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(f"scripts/{script} {command} failed:\n{proc.stderr}")
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def _grid_engine_env(env_file: str) -> dict[str, str]:
    env = {}
    with open(env_file) as f:
        for line in f:
            line = line.strip().removeprefix("export ")
            if "=" in line and not line.startswith("#"):
                name, value = line.split("=", 1)
                env[name] = value.strip("'\"")
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default=",".join(SITES), help="comma-separated sites: " + ", ".join(SITES))
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--site", help=argparse.SUPPRESS)
    parser.add_argument("--servers", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.site, json.loads(args.servers), args.run_dir)
        return 0
    sites = [s for s in args.only.split(",") if s]
    unknown = set(sites) - set(SITES)
    if unknown:
        parser.error(f"unknown sites {sorted(unknown)}")
    parsl_python = str(ensure_parsl_venv(DEFAULT_PARSL_VENV))
    ours_python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-servers-") as base:
        servers: dict[str, Any] = {}
        started = []
        try:
            if {"slurm", "ssh-slurm"} & set(sites):
                servers["slurm"] = _server("slurm.sh", Path(base) / "slurm")
                started.append(("slurm.sh", Path(base) / "slurm"))
            if {"ssh-local", "ssh-slurm"} & set(sites):
                with open(_server("sshd.sh", Path(base) / "sshd")) as f:
                    servers["sshd"] = json.load(f)
                started.append(("sshd.sh", Path(base) / "sshd"))
            if "gridengine" in sites:
                servers["gridengine"] = _grid_engine_env(_server("gridengine.sh", Path(base) / "sge"))
                started.append(("gridengine.sh", Path(base) / "sge"))
            rows = []
            for site in sites:
                figures: dict[str, list[dict[str, float]]] = {"parsl_repro": [], "parsl": []}
                for _ in range(args.repeats):
                    for module, python in (("parsl_repro", ours_python), ("parsl", parsl_python)):
                        if module == "parsl" and site in OURS_ONLY:
                            continue
                        result = _run(python, module, site, servers, args.timeout)
                        if result is not None:
                            figures[module].append(result)
                rows.append((site, figures))
        finally:
            for script, directory in reversed(started):
                _server(script, directory, "stop")
    print(f"\nload() to first result, median of {args.repeats} fresh processes (cleanup in brackets)")
    print(f"{'site':<12} {'parsl_repro':>20} {'parsl':>20} {'ratio':>7}")
    for site, figures in rows:
        cells = []
        medians = {}
        for module in ("parsl_repro", "parsl"):
            runs = figures[module]
            if not runs:
                cells.append("n/a" if module == "parsl" and site in OURS_ONLY else "failed")
                continue
            medians[module] = statistics.median(r["first_result"] for r in runs)
            cleanup = statistics.median(r["cleanup"] for r in runs)
            cells.append(f"{medians[module]:.2f} s ({cleanup:.2f} s)")
        ratio = f"{medians['parsl_repro'] / medians['parsl']:.2f}" if len(medians) == 2 else ""
        print(f"{site:<12} {cells[0]:>20} {cells[1]:>20} {ratio:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
