"""``Config``: what a run uses (executors, retries, memoization, run directory, ...), checked on construction."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from parsl_repro.dependencies import DependencyResolver
from parsl_repro.errors import ConfigurationError
from parsl_repro.executors.base import ParslExecutor
from parsl_repro.executors.threads import ThreadPoolExecutor
from parsl_repro.logconfigs.base import LogConfig
from parsl_repro.memo.contracts import Memoizer
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin, parse_period

logger = logging.getLogger(__name__)

DEFAULT_ARGUMENT_LIMIT = 10 * 2**20
"""``Config.provenance_argument_limit``'s default: 10 MiB of serialized arguments per task."""


class Config(RepresentationMixin):
    """The configuration of a run, with Parsl's fields and defaults.

    Parameters
    ----------
    executors : executors to run tasks on; default one ``ThreadPoolExecutor()``. Labels must be unique.
    app_cache : allow apps declared with ``cache=True`` to reuse results (default True).
    checkpoint_files, checkpoint_mode, checkpoint_period : where earlier results are loaded from
        and when this run's results are checkpointed (``'task_exit'``, ``'periodic'`` with a
        ``'HH:MM:SS'`` period, ``'dfk_exit'``, ``'manual'``, or None). With neither files nor a
        mode, the memo table starts empty, as in Parsl.
    reuse_from_store : also reuse the results of every earlier run recorded in the provenance
        store (default False): caching across runs without naming checkpoints.
    memoizer : a ``Memoizer`` object; the newer way to give the settings above (not both).
    dependency_resolver : how futures are found in arguments; default only top-level futures.
    exit_mode : what leaving ``with parsl_repro.load(config):`` does: ``'cleanup'`` (default),
        ``'skip'`` or ``'wait'`` (wait for tasks unless the block raised).
    garbage_collect : forget finished tasks' records (default True).
    initialize_logging : True (default): write ``parsl.log`` in the run directory; False: no log;
        a ``LogConfig`` (``parsl_repro.logconfigs``): log as it says, in the kernel and in the
        processes it starts (provenance writer, HTEX interchange, managers and workers).
    internal_tasks_max_threads : threads for join apps and other internal tasks (default 10).
    lazy_errors : True (default): a failed task fails only itself and its dependents, and the
        run goes on. False: the first failure halts the run (``WorkflowHalted``).
    max_idletime : seconds an executor's blocks may idle before scaling in (default 120).
    monitoring : a ``MonitoringHub``; accepted for Parsl compatibility. Its ``logging_endpoint``,
        when it is a database URL, says where the provenance store is.
    provenance : where every run is recorded: True (default) for ``<run_dir>/provenance.db``
        (SQLite), a SQLAlchemy database URL (``postgresql+psycopg://...``), or False for no record.
    provenance_argument_limit : the most bytes of one task's serialized arguments the record keeps
        (default 10 MiB), so the task can be replayed; arguments over it are recorded by digest
        only and the task is marked "not replayable". Equal arguments are stored once however many
        tasks use them. 0 keeps none (digests only).
    retries : how many times a failed task is retried (default 0); with ``retry_handler``, the
        budget that the handler's costs are drawn from.
    retry_handler : ``handler(exception, task_record) -> cost`` per failed try.
    run_dir : where numbered run directories (logs, task logs) are made (default ``'runinfo'``).
    std_autopath : ``f(task_record, 'stdout'|'stderr') -> path`` for ``AUTO_LOGNAME`` streams.
    strategy, strategy_period : block scaling strategy (``'simple'``, ``'htex_auto_scale'``,
        ``'none'``) and how often it runs, in seconds.
    usage_tracking, project_name : accepted for compatibility; parsl_repro never sends usage data.
    """

    @typechecked_config
    def __init__(self,
                 executors: Iterable[ParslExecutor] | None = None,
                 app_cache: bool = True,
                 checkpoint_files: Sequence[str] | None = None,
                 checkpoint_mode: Literal["task_exit", "periodic", "dfk_exit", "manual"] | None = None,
                 checkpoint_period: str | None = None,
                 memoizer: Memoizer | None = None,
                 reuse_from_store: bool = False,
                 dependency_resolver: DependencyResolver | None = None,
                 exit_mode: Literal["cleanup", "skip", "wait"] = "cleanup",
                 garbage_collect: bool = True,
                 initialize_logging: bool | LogConfig = True,
                 internal_tasks_max_threads: int = 10,
                 lazy_errors: bool = True,
                 max_idletime: float = 120.0,
                 monitoring: Any | None = None,
                 provenance: bool | str = True,
                 provenance_argument_limit: int = DEFAULT_ARGUMENT_LIMIT,
                 retries: int = 0,
                 retry_handler: Callable[[Exception, Any], float] | None = None,
                 run_dir: str = "runinfo",
                 std_autopath: Callable | None = None,
                 strategy: str | None = "simple",
                 strategy_period: float | int = 5,
                 usage_tracking: int = 0,
                 project_name: str | None = None) -> None:
        executors = tuple(executors or ())
        for position, executor in enumerate(executors):
            if not isinstance(executor, ParslExecutor):
                from parsl_repro.typecheck import ConfigurationTypeError
                raise ConfigurationTypeError(f"Config: field executors[{position}] is a {type(executor).__name__}, "
                                             f"not an executor (ParslExecutor)")
        self._executors: Sequence[ParslExecutor] = executors or (ThreadPoolExecutor(),)
        self._validate_executors()
        if memoizer is not None and (checkpoint_files is not None or checkpoint_mode is not None
                                     or checkpoint_period is not None or reuse_from_store):
            raise ConfigurationError("Config: give checkpoint_files/checkpoint_mode/checkpoint_period/"
                                     "reuse_from_store either to Config or to its memoizer, not both")
        if checkpoint_mode == "periodic" and checkpoint_period is None:
            raise ConfigurationError("Config: checkpoint_mode='periodic' needs checkpoint_period='HH:MM:SS'")
        if checkpoint_period is not None:
            parse_period(checkpoint_period)
        if retries < 0:
            raise ConfigurationError(f"Config: field retries must be 0 or more, not {retries}")
        if provenance_argument_limit < 0:
            raise ConfigurationError(f"Config: field provenance_argument_limit must be 0 or more bytes, "
                                     f"not {provenance_argument_limit}")
        if internal_tasks_max_threads < 1:
            raise ConfigurationError("Config: field internal_tasks_max_threads must be at least 1")
        if strategy not in (None, "none", "simple", "htex_auto_scale"):
            raise ConfigurationError(f"Config: field strategy must be 'simple', 'htex_auto_scale' or 'none', "
                                     f"not {strategy!r}")
        if not 0 <= usage_tracking <= 3:
            raise ConfigurationError(f"Config: field usage_tracking must be 0, 1, 2 or 3, not {usage_tracking}")
        self.app_cache = app_cache
        self.checkpoint_files = checkpoint_files
        self.checkpoint_mode = checkpoint_mode
        self.checkpoint_period = checkpoint_period
        self.memoizer = memoizer
        self.reuse_from_store = reuse_from_store
        self.provenance_argument_limit = provenance_argument_limit
        self.dependency_resolver = dependency_resolver
        self.exit_mode = exit_mode
        self.garbage_collect = garbage_collect
        self.initialize_logging = initialize_logging
        self.internal_tasks_max_threads = internal_tasks_max_threads
        self.lazy_errors = lazy_errors
        self.max_idletime = max_idletime
        self.monitoring = monitoring
        self.provenance = provenance
        self.retries = retries
        self.retry_handler = retry_handler
        self.run_dir = run_dir
        self.std_autopath = std_autopath
        self.strategy = strategy
        self.strategy_period = strategy_period
        self.usage_tracking = usage_tracking
        self.project_name = project_name

    @property
    def executors(self) -> Sequence[ParslExecutor]:
        return self._executors

    def _validate_executors(self) -> None:
        labels = [e.label for e in self._executors]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ConfigurationError("Executors must have unique labels ({})".format(
                ", ".join(f"label={d!r}" for d in duplicates)))
        if "_parsl_internal" in labels:
            raise ConfigurationError("Executor label '_parsl_internal' is reserved for parsl_repro's own tasks")
