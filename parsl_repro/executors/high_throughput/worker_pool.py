"""The worker pool: what a provider's launcher starts on each node of a block.

One manager process connects to the interchange, registers (host, block, number of workers),
then takes batches of tasks and hands them to its worker processes, one task at a time each,
over a pipe per worker. Results go back in batches. Every ``heartbeat_period`` the manager tells
the interchange it is alive, and it exits when the interchange has been silent for
``heartbeat_threshold``. A worker that dies mid-task (killed, out of memory) is reported as
``WorkerLost`` for that task and replaced; so is one whose task raises ``SystemExit`` or
another ``BaseException`` that is not an ``Exception`` (as in Parsl: such a task ends its
worker). Busy workers are sampled with psutil every ``resource_monitoring_interval`` seconds;
the samples travel back with the task's result. With ``--drain-period``, the pool asks the
interchange to drain that many seconds after it starts: it takes no new tasks, finishes those
it holds, and exits when the interchange tells it to stop. With ``--enable-mpi-mode`` (one pool
per block, ``MPIExecutor``) each task first waits for the nodes its resource specification asks
for (``mpi_resource_management.PoolMPIScheduler``), then runs with them and its launcher prefix
in its environment.

This module is the entry point: the command line, logging, then ``manager.Manager``; the
workers are ``worker``, the samples ``sampling``. Installed as the ``parsl-repro-worker-pool``
console script (named so that it never shadows Parsl's own ``process_worker_pool.py`` when both
are installed), also run as ``python -m parsl_repro.executors.high_throughput.worker_pool``.
"""
from __future__ import annotations

import argparse
import logging
import os
import pickle
import signal
import sys
import uuid

from parsl_repro.executors.high_throughput.manager import Manager, pool_log_dir
from parsl_repro.logconfigs.base import LogConfig, oneshot_initialize_logging

logger = logging.getLogger("parsl_repro.executors.high_throughput.worker_pool")  # not "__main__" under -m


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The pool's command line. Parsl's spellings of the options (``--cert_dir``, ``--block_id``,
    ``--hb_period``, ...) are accepted too, and ``None`` for a path means none, so a
    ``launch_cmd`` written for Parsl's ``process_worker_pool.py`` starts this pool unchanged."""
    parser = argparse.ArgumentParser(prog="parsl-repro-worker-pool", description=__doc__.split("\n\n")[0])
    parser.add_argument("-a", "--addresses", required=True, help="comma-separated interchange addresses")
    parser.add_argument("--port", type=int, required=True, help="the interchange's worker port")
    parser.add_argument("--ipc", default=None, help="the interchange's Unix socket, used instead of TCP on its host")
    parser.add_argument("--ipc-host", default=None, help="the host name where --ipc is")
    parser.add_argument("--cert-dir", "--cert_dir", dest="cert_dir", default=None,
                        help="CurveZMQ certificate directory (None: unencrypted)")
    parser.add_argument("-b", "--block-id", "--block_id", dest="block_id", default="0")
    parser.add_argument("-u", "--uid", default=None, help="this pool's id (default: random)")
    parser.add_argument("--max-workers-per-node", "--max_workers_per_node", dest="max_workers_per_node",
                        default="inf")
    parser.add_argument("-c", "--cores-per-worker", type=float, default=1.0)
    parser.add_argument("-m", "--mem-per-worker", type=float, default=0.0, help="GB per worker (0: no limit)")
    parser.add_argument("-p", "--prefetch-capacity", type=int, default=0)
    parser.add_argument("--hb-period", "--hb_period", dest="heartbeat_period", type=float, default=30)
    parser.add_argument("--hb-threshold", "--hb_threshold", dest="heartbeat_threshold", type=float, default=120)
    parser.add_argument("--poll", type=float, default=10, help="poll period in ms (accepted for Parsl parity)")
    parser.add_argument("--address-probe-timeout", "--address_probe_timeout", dest="address_probe_timeout",
                        type=float, default=30)
    parser.add_argument("--drain-period", "--drain_period", dest="drain_period", type=_optional_float, default=0,
                        help="ask to drain this many seconds after starting (0: never)")
    parser.add_argument("--cpu-affinity", default="none")
    parser.add_argument("--available-accelerators", nargs="*", default=[],
                        help="accelerator ids, comma- or space-separated")
    parser.add_argument("--resource-monitoring-interval", type=float, default=0.0)
    parser.add_argument("--enable-mpi-mode", "--enable_mpi_mode", dest="enable_mpi_mode", action="store_true",
                        help="give each task the nodes its resource specification asks for (MPI mode)")
    parser.add_argument("--mpi-launcher", default="mpiexec", choices=("srun", "aprun", "mpiexec"),
                        help="the launcher whose prefix is PARSL_MPI_PREFIX in MPI mode")
    parser.add_argument("--logdir", default=None)
    parser.add_argument("--logconf", default=None,
                        help="a pickled LogConfig to log through, written by the executor (None: the default log)")
    parser.add_argument("-d", "--debug", action="store_true")
    args = parser.parse_args(argv)
    for name in ("cert_dir", "logconf", "logdir", "uid"):
        if getattr(args, name) == "None":
            setattr(args, name, None)
    args.available_accelerators = ",".join(a for item in args.available_accelerators for a in item.split(",") if a)
    return args


def _optional_float(text: str) -> float:
    return 0.0 if text == "None" else float(text)


def main(argv: list[str] | None = None) -> int:
    """Run one worker pool with the command line ``argv``; returns its exit status."""
    args = parse_args(argv)
    args.uid = args.uid or uuid.uuid4().hex[:12]
    log_config = _start_logging(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return Manager(args, log_config).run()


def _start_logging(args: argparse.Namespace) -> LogConfig | None:
    """Start the manager's log and return the ``LogConfig`` its workers should use, if any.

    By default one file, ``<logdir>/block-<id>/manager-<pid>.log`` (DEBUG with ``--debug``, else
    INFO), that the forked workers share. With ``--logconf``, the run's ``LogConfig`` logs in
    ``<logdir>/block-<id>/<pool id>/`` as ``manager`` and, in each worker, ``worker_<rank>``.
    The file was written by the executor for this pool, so it is trusted to unpickle.
    """
    if args.logconf and args.logconf != "None":
        try:
            with open(args.logconf, "rb") as f:
                log_config = pickle.load(f)
        except Exception:  # unreadable, or a LogConfig class this node cannot import
            _default_logging(args)
            logger.exception("Cannot load the log configuration %s; logging here instead", args.logconf)
            return None
        oneshot_initialize_logging(log_config=log_config, log_dir=pool_log_dir(args, args.uid), log_name="manager")
        return log_config
    _default_logging(args)
    return None


def _default_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.debug else logging.INFO
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if args.logdir:
        directory = os.path.join(args.logdir, f"block-{args.block_id}")
        os.makedirs(directory, exist_ok=True)
        handlers = [logging.FileHandler(os.path.join(directory, f"manager-{os.getpid()}.log"))]
    logging.basicConfig(level=level, handlers=handlers,
                        format="%(asctime)s %(name)s:%(lineno)d %(processName)s [%(levelname)s] %(message)s")


if __name__ == "__main__":
    sys.exit(main())
