"""The DataFlowKernel: turns app calls into tasks, runs them when their inputs are ready, and
keeps the record of every task. It wires small collaborators together:

* ``DependencyTracker`` (graph.py): finds futures in arguments, releases a task when they are done;
* ``TaskRunner`` (launcher.py): memo lookup, executor submit, retries, join apps, completion;
* ``TaskStateMachine`` (transitions.py): the allowed state moves, counts, one event per move;
* ``RetryPolicy`` (retries.py) and the ``Memoizer`` (memoization.py);
* an ``EventSink`` (events.py) that receives every event of the run.
"""
from __future__ import annotations

import atexit
import functools
import inspect
import logging
import os
import pathlib
import random
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import parsl_repro
from parsl_repro.channels.base import remote_channel
from parsl_repro.channels.errors import ChannelError
from parsl_repro.config import Config
from parsl_repro.data_provider.data_future import DataFuture
from parsl_repro.data_provider.data_manager import DataManager, names_files
from parsl_repro.dataflow import gc_tuning
from parsl_repro.dataflow.futures import AppFuture
from parsl_repro.dataflow.graph import DependencyTracker
from parsl_repro.dataflow.interrupts import InterruptHandlers
from parsl_repro.dataflow.launcher import JOIN_TASK, TaskRunner
from parsl_repro.dataflow.memoization import BasicMemoizer, Memoizer
from parsl_repro.dataflow.recording import open_store
from parsl_repro.dataflow.retries import RetryPolicy
from parsl_repro.dataflow.rundirs import make_rundir
from parsl_repro.dataflow.states import FINAL_STATES
from parsl_repro.dataflow.taskrecord import TaskRecord
from parsl_repro.dataflow.transitions import TaskStateMachine
from parsl_repro.errors import ConfigurationError, NoDataFlowKernelError
from parsl_repro.events import AppSeen, EventSink, FanOutSink, NullSink, RunEnded, RunStarted, TaskCreated
from parsl_repro.executors.base import ParslExecutor
from parsl_repro.executors.threads import ThreadPoolExecutor
from parsl_repro.log_utils import set_background_file_logger
from parsl_repro.logconfigs.base import LogConfig, oneshot_initialize_logging, oneshot_uninitialize_logging
from parsl_repro.memo.canonical import Uncacheable
from parsl_repro.memo.key import identity_of
from parsl_repro.memo.recipe import describe
from parsl_repro.task_states import CANCELLED, FAILED_STATES
from parsl_repro.utils import get_version, redact_secrets

logger = logging.getLogger(__name__)

INTERNAL_EXECUTOR = "_parsl_internal"
"""Environment variable naming the store for runs whose Config leaves ``provenance`` at True."""


class DataFlowKernel:
    """Runs the tasks of one run on the executors of one ``Config``.

    Build it with a ``Config``; Parsl's first tutorial form also works:
    ``DataFlowKernel(ThreadPoolExecutor(max_workers=4))`` or ``DataFlowKernel(executors=[...])``.
    """

    def __init__(self, config: Config | ParslExecutor | Sequence[ParslExecutor] | None = None, *,
                 executors: Sequence[ParslExecutor] | None = None, event_sink: EventSink | None = None,
                 replay_of: tuple[str, str] | None = None, **config_fields: Any) -> None:
        config = _as_config(config, executors, config_fields)
        self.cleanup_called = False
        self._cleanup_lock = threading.Lock()
        self._config = config
        self.run_id = str(uuid.uuid4())
        self.run_dir = make_rundir(config.run_dir)
        self._logging_unregister: Callable[[], None] | None = None
        self.log_config: LogConfig | None = None
        """The run's ``LogConfig`` (handed to executors and the provenance writer), or None when
        ``initialize_logging`` is a bool: each component then keeps its own default log."""
        if isinstance(config.initialize_logging, LogConfig):
            log_config = self.log_config = config.initialize_logging
            oneshot_initialize_logging(log_config=log_config, log_dir=pathlib.Path(self.run_dir), log_name="parsl")
            self._logging_unregister = functools.partial(oneshot_uninitialize_logging, log_config=log_config)
        elif config.initialize_logging:  # the default: a background thread writes parsl.log
            self._logging_unregister = set_background_file_logger(os.path.join(self.run_dir, "parsl.log"),
                                                                  level=logging.INFO)
        logger.info("Starting DataFlowKernel %s (parsl_repro %s) in %s", self.run_id, get_version(), self.run_dir)
        logger.info("Config: %s", redact_secrets(repr(config)))

        # replay_of: (run id, name) of the run this one replays (parsl-repro replay), its parent run
        self.workflow_name = getattr(config.monitoring, "workflow_name", None) or (
            f"replay of {replay_of[1]}" if replay_of else _guess_workflow_name())
        self.time_began = time.time()
        started = RunStarted(self.run_id, self.run_dir, self.time_began, self.workflow_name,
                             redact_secrets(repr(config)), os.path.abspath(config.run_dir),
                             getattr(config.monitoring, "workflow_version", None), os.getpid(),
                             replay_of=replay_of[0] if replay_of else None)
        try:
            self.store, store_sink, started = open_store(config, self.run_dir, started)
        except BaseException:
            if self._logging_unregister is not None:
                self._logging_unregister()
            raise
        sinks = [s for s in (store_sink, event_sink) if s is not None]
        self.event_sink: EventSink = sinks[0] if len(sinks) == 1 else FanOutSink(sinks) if sinks else NullSink()
        self._emit = self.event_sink.emit
        self._apps_seen: set[str] = set()
        if event_sink is not None:
            event_sink.emit(started)  # the store's sink handed it to the writer process as it started

        self.executors: dict[str, ParslExecutor] = {}
        self.data_manager = DataManager(self)
        try:
            self._start_components(config)
        except BaseException as e:
            self._abandon_start(e)
            raise
        gc_tuning.acquire()
        _at_interpreter_exit(self)
        self.interrupted: str | None = None
        """The signal that interrupted the run (``'SIGINT'``, ``'SIGTERM'``), or None."""
        self._interrupt_handlers = InterruptHandlers(self._note_interrupt, lambda: self.cleanup_called)
        self._interrupt_handlers.install()

    def _start_components(self, config: Config) -> None:
        self.monitoring = config.monitoring
        if hasattr(self.monitoring, "attach"):  # a MonitoringHub: give it the database writer's handle
            self.monitoring.attach(self.event_sink)
        self.memoizer: Memoizer = config.memoizer or BasicMemoizer(
            checkpoint_files=config.checkpoint_files, checkpoint_period=config.checkpoint_period,
            checkpoint_mode=config.checkpoint_mode, memoize=config.app_cache, reuse_from_store=config.reuse_from_store)
        if isinstance(self.memoizer, BasicMemoizer):
            self.memoizer.attach(store=self.store, sink=self.event_sink, run_id=self.run_id, apps_seen=self._apps_seen)
        elif hasattr(self.memoizer, "attach"):
            self.memoizer.attach(store=self.store, sink=self.event_sink, run_id=self.run_id)
        self.memoizer.start(run_dir=self.run_dir, config_run_dir=config.run_dir)

        self._states = TaskStateMachine(self.run_id, self.event_sink)
        self.task_state_counts = self._states.counts
        self.tasks: dict[int, TaskRecord] = {}
        self.task_count = 0
        self._task_id_lock = threading.Lock()
        self._tracker = DependencyTracker(config.dependency_resolver, self, on_ready=self._ready)
        self._runner = TaskRunner(run_id=self.run_id, executors=self.executors, memoizer=self.memoizer,
                                  states=self._states, retries=RetryPolicy(config.retries, config.retry_handler),
                                  tracker=self._tracker, sink=self.event_sink, forget=self._forget,
                                  fail_fast=not config.lazy_errors, argument_limit=None if isinstance(
                                      self.event_sink, NullSink) else config.provenance_argument_limit)
        self._user_labels: list[str] = []
        self.job_status_poller: Any = None
        """The ``JobStatusPoller`` that scales block executors, made when the first executor with a
        provider is added: a run on threads alone never loads the providers and launchers."""
        self.add_executors(config.executors)
        self.add_executors([ThreadPoolExecutor(max_threads=config.internal_tasks_max_threads, label=INTERNAL_EXECUTOR)])

    def _abandon_start(self, error: BaseException) -> None:
        """Undo a start that failed part-way, so nothing is left running or open."""
        logger.error("DataFlowKernel failed to start: %s: %s", type(error).__name__, error)
        self.cleanup_called = True
        poller = getattr(self, "job_status_poller", None)
        if poller is not None:
            poller.close()
        for executor in self.executors.values():
            try:
                executor.shutdown()
            except Exception:
                logger.exception("Executor %s failed to shut down", executor.label)
        memoizer = getattr(self, "memoizer", None)
        timer = getattr(memoizer, "_timer", None)
        if timer is not None:
            timer.close()
        self._emit(RunEnded(self.run_id, time.time(), "failed to start", {}))
        self.event_sink.close()
        if self.store is not None:
            self.store.close()
        if self._logging_unregister is not None:
            self._logging_unregister()
            self._logging_unregister = None

    @property
    def config(self) -> Config:
        """The configuration this kernel runs with."""
        return self._config

    # --- context manager -----------------------------------------------------------------------
    def __enter__(self) -> DataFlowKernel:
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            self._note_interrupt("SIGINT")  # a ctrl-C whose handler was not ours (not the main thread)
        mode = self._config.exit_mode
        if mode == "skip":
            return
        if mode == "wait" and exc_type is None:
            self.wait_for_current_tasks()
        self.cleanup()

    # --- executors ------------------------------------------------------------------------------
    def add_executors(self, executors: Sequence[ParslExecutor]) -> None:
        """Start ``executors`` and make them available to apps by label."""
        for executor in executors:
            if executor.label in self.executors:
                raise ConfigurationError(f"An executor labelled {executor.label!r} is already loaded")
            executor.run_id = self.run_id
            executor.run_dir = self.run_dir
            executor.log_config = self.log_config
            executor.event_sink = self.event_sink
            executor.resource_monitoring = self._resource_monitoring()
            provider = getattr(executor, "provider", None)
            if provider is not None and hasattr(provider, "script_dir"):
                provider.script_dir = os.path.join(self.run_dir, "submit_scripts")
                os.makedirs(provider.script_dir, exist_ok=True)
                self._open_channel(executor.label, getattr(provider, "channel", None), provider.script_dir)
            try:
                executor.start()
            except Exception as e:
                self._close_channel_of(executor)
                if not self._site_may_fail_alone(executor, executors):
                    raise
                # a remote site that cannot start leaves the others running: its tasks fail with why
                logger.error("Site %s did not start, and its tasks will fail: %s", executor.label, e)
                executor.set_bad_state_and_fail_all(e)
                self.executors[executor.label] = executor
                self._user_labels.append(executor.label)
                continue
            self.executors[executor.label] = executor
            if provider is not None:
                self._block_poller().add_executors([executor])  # submits its init_blocks now
            if executor.label != INTERNAL_EXECUTOR:
                self._user_labels.append(executor.label)
            kind = type(executor)
            logger.info("Started executor %s (%s)", executor.label, kind.__name__,
                        extra={"parsl.executor.label": executor.label,
                               "parsl.executor.type": f"{kind.__module__}.{kind.__name__}"})

    def _close_channels(self) -> None:
        """Close the providers' remote channels (their SSH connections and threads) once every
        executor has stopped using them."""
        for executor in self.executors.values():
            self._close_channel_of(executor)

    @staticmethod
    def _close_channel_of(executor: ParslExecutor) -> None:
        channel = remote_channel(getattr(executor, "provider", None))
        if channel is not None:
            try:
                channel.close()
            except Exception:
                logger.exception("Could not close the channel of %s", executor.label)

    @staticmethod
    def _site_may_fail_alone(executor: ParslExecutor, executors: Sequence[ParslExecutor]) -> bool:
        """Whether ``executor`` failing to start may leave the run going: it reaches its site
        through a remote channel, and the run has other executors."""
        return remote_channel(getattr(executor, "provider", None)) is not None \
            and hasattr(executor, "set_bad_state_and_fail_all") and any(
            other is not executor and other.label != INTERNAL_EXECUTOR for other in executors)

    @staticmethod
    def _open_channel(label: str, channel: Any, script_dir: str) -> None:
        """Ready a provider's channel: a local one writes scripts where the provider does; a
        remote one connects now, so that its prompts (a password, a one-time code) come at
        ``load()``, site by site, and only for the sites this run uses. A site that cannot be
        reached is logged with its cause and left to fail its own blocks (and its executor's
        start, if its interchange runs there): the other sites go on."""
        if channel is None:
            return
        if getattr(channel, "is_local", False):
            if not channel.script_dir:
                channel.script_dir = script_dir
            return
        try:
            channel.connect()
        except ChannelError as e:
            logger.error("Site %s: cannot reach %s: %s", label, getattr(channel, "hostname", "?"), e)

    def _block_poller(self) -> Any:
        """The job status poller, made now if this is the first executor with a provider."""
        if self.job_status_poller is None:
            from parsl_repro.jobs.job_status_poller import JobStatusPoller
            config = self._config
            self.job_status_poller = JobStatusPoller(strategy=config.strategy, max_idletime=config.max_idletime,
                                                     strategy_period=config.strategy_period)
        return self.job_status_poller

    def _resource_monitoring(self) -> tuple[bool, float]:
        """(enabled, interval in s) of per-task resource sampling for executors with worker
        processes: on at Parsl's 30 s unless ``MonitoringHub`` says otherwise; off when nothing is
        recorded."""
        if self.store is None and self._config.monitoring is None:
            return False, 0.0
        hub = self._config.monitoring
        if hub is None:
            return True, 30.0
        return bool(hub.resource_monitoring_enabled), float(hub.resource_monitoring_interval)

    # --- submitting -------------------------------------------------------------------------------
    def submit(self, func: Callable, app_args: Sequence[Any], executors: str | Sequence[str] = "all",
               cache: bool = False, ignore_for_cache: Sequence[str] | None = None,
               app_kwargs: dict[str, Any] | None = None, join: bool = False, app_kind: str = "python",
               func_name: str | None = None, deterministic: bool = True) -> AppFuture:
        """Add a task that calls ``func(*app_args, **app_kwargs)`` once the futures in its arguments
        are done; return its AppFuture."""
        if self.cleanup_called:
            raise NoDataFlowKernelError("Cannot submit to a DataFlowKernel that has been cleaned up")
        if self._runner.halted is not None:
            raise self._runner.halted
        app_kwargs = {} if app_kwargs is None else app_kwargs
        with self._task_id_lock:
            task_id = self.task_count
            self.task_count += 1
        label = self._choose_executor(task_id, executors)
        ignore = list(ignore_for_cache) if ignore_for_cache else []
        task = TaskRecord(dfk=self, task_id=task_id, func=func, func_name=func_name or func.__name__,
                          args=tuple(app_args), kwargs=app_kwargs, executor=label, memoize=cache,
                          ignore_for_cache=ignore, join=join, app_kind=app_kind,
                          resource_specification=app_kwargs.get("parsl_resource_specification") or {},
                          time_invoked=time.time())
        app_fu = AppFuture(task)
        task.app_fu = app_fu
        if "stdout" in app_kwargs or "stderr" in app_kwargs:
            self._resolve_auto_lognames(task)
        if (app_args or app_kwargs) and names_files(task.args, app_kwargs):
            self.data_manager.stage_task(task)  # raises on a file that cannot be staged
        task.depends = self._tracker.gather(task.args, app_kwargs)
        self._log_submission(task)
        self._emit(TaskCreated(self.run_id, task_id, task.time_invoked, task.func_name, app_kind, label,
                               tuple(d.tid for d in task.depends if isinstance(d, (AppFuture, DataFuture))), cache,
                               task.args, dict(app_kwargs) if app_kwargs else app_kwargs,  # as submitted
                               self._app_digest(func, app_kind, task, executors, deterministic),
                               JOIN_TASK.get()))
        self._states.enter(task)
        self.tasks[task_id] = task
        self._tracker.watch(task)
        task.identity = None  # launched later: keyed with its code's identity as it is then
        return app_fu

    def _app_digest(self, func: Callable, app_kind: str, task: TaskRecord, executors: str | Sequence[str],
                    deterministic: bool) -> str | None:
        """The identity of the app's code (re-checked on every call, cached per function), for the
        record of every task, cached or not; its first sight in this run is recorded as ``AppSeen``."""
        if isinstance(self.event_sink, NullSink):
            return None
        try:
            identity = identity_of(func)
        except Uncacheable as e:  # a partial whose bound arguments cannot be hashed
            logger.debug("Task of %s is recorded without its code's identity: %s", func, e)
            return None
        task.identity = identity
        if identity.digest not in self._apps_seen:
            self._apps_seen.add(identity.digest)
            options = {"kind": app_kind, "name": task.func_name, "cache": task.memoize,
                       "executors": executors if isinstance(executors, str) else list(executors),
                       "ignore_for_cache": list(task.ignore_for_cache), "deterministic": deterministic}
            # the recipe is written now, beside the identity it must match (not later, off this thread,
            # when a global the function reads may have been rebound): once per app and code
            self._emit(AppSeen(identity.digest, identity.qualname, identity.module, app_kind, identity.source,
                               dict(identity.components), options, describe(func, options)))
        return identity.digest

    def _log_submission(self, task: TaskRecord) -> None:
        # Parsl's structured per-task records ("parsl.*" extras), at DEBUG: building a log record
        # costs as much as running a no-op task, and the provenance events carry the same facts
        if not logger.isEnabledFor(logging.DEBUG):
            return
        for dep in task.depends:
            if isinstance(dep, AppFuture) and dep.task_record.dfk is self:
                logger.debug("Task %s has dependency task %s", task.id, dep.tid,
                            extra={"parsl.task": task.id, "parsl.dependency_task": dep.tid})
            else:
                logger.debug("Task %s has dependency future %r", task.id, dep,
                            extra={"parsl.task": task.id, "parsl.dependency_object": repr(dep)})
        logger.debug("Task %s submitted for App %s, %s", task.id, task.func_name,
                    "waiting on " + ", ".join(self._tracker.describe(d) for d in task.depends)
                    if task.depends else "not waiting on any dependency",
                    extra={"parsl.task": task.id, "parsl.app_name": task.func_name})

    def _choose_executor(self, task_id: int, executors: str | Sequence[str]) -> str:
        if isinstance(executors, str):
            if executors.lower() != "all":
                raise ValueError(f"Task {task_id}: executors must be 'all' or a list of labels, not {executors!r}")
            choices = self._user_labels
        else:
            choices = list(executors)
            if not choices:
                raise ValueError(f"Task {task_id}: executors list is empty")
        return choices[0] if len(choices) == 1 else random.choice(choices)

    def _resolve_auto_lognames(self, task: TaskRecord) -> None:
        for stream in ("stdout", "stderr"):
            if task.kwargs.get(stream) == parsl_repro.AUTO_LOGNAME:
                if stream not in task.ignore_for_cache:
                    task.ignore_for_cache.append(stream)
                autopath = self._config.std_autopath or self.default_std_autopath
                task.kwargs[stream] = autopath(task, stream)

    def default_std_autopath(self, task: TaskRecord, stream: str) -> str:
        """``<run_dir>/task_logs/NNNN/task_<id>_<app>[_<label>].<stdout|stderr>``."""
        label = task.kwargs.get("label")
        return os.path.join(self.run_dir, "task_logs", str(task.id // 10000).zfill(4),
                            f"task_{task.id:04d}_{task.func_name}{'' if label is None else '_' + str(label)}.{stream}")

    def _ready(self, task: TaskRecord) -> None:
        self._runner.ready(task)

    def _forget(self, task: TaskRecord) -> None:
        """A task is final: with ``garbage_collect`` (the default), drop the kernel's references
        to it, to its last executor future, and the record's link back to its AppFuture (which
        holds the outcome). The future still reaches the record; without the link back the two
        are no reference cycle, so a future the user drops is freed at once, not by the collector."""
        if self._config.garbage_collect:
            self.tasks.pop(task.id, None)
            task.exec_fu = None
            task.app_fu = None

    def _note_interrupt(self, signal_name: str) -> None:
        if self.interrupted is None:
            self.interrupted = signal_name

    def render_future_description(self, dep: Any) -> str:
        return self._tracker.describe(dep)

    def checkpoint(self) -> None:
        """Write a checkpoint now (``checkpoint_mode='manual'``; any mode accepts it)."""
        checkpoint = getattr(self.memoizer, "checkpoint", None)
        if checkpoint is None:
            raise ConfigurationError(f"the memoizer {type(self.memoizer).__name__} cannot checkpoint")
        checkpoint()

    # --- waiting and shutting down ------------------------------------------------------------------
    def wait_for_current_tasks(self) -> None:
        """Block until every task submitted so far has reached a final state."""
        logger.info("Waiting for all remaining tasks to complete")
        for task in list(self.tasks.values()):
            app_fu = task.app_fu  # None once the task is final and forgotten
            if app_fu is not None:
                app_fu.exception()
            while task.status not in FINAL_STATES:
                time.sleep(0.01)
        logger.info("All remaining tasks completed")

    def log_task_states(self) -> None:
        logger.info("Summary of tasks in DFK:")
        for state, count in self._states.counts.items():
            logger.info("Tasks in state %s: %s", state, count)
        logger.info("End of summary")

    def cleanup(self) -> None:
        """Shut down the executors and the memoizer, close the event sink and unload this kernel.

        Running tasks on thread executors are waited for. Safe to call more than once.
        """
        with self._cleanup_lock:
            if self.cleanup_called:
                logger.debug("cleanup called again on DataFlowKernel %s; nothing to do", self.run_id)
                return
            self.cleanup_called = True
        logger.info("DataFlowKernel cleanup initiated")
        self.log_task_states()
        # From here on, no task launches or retries: what has not finished when the executors
        # have stopped is cancelled (not failed), with the reason
        self._runner.cancelling = (f"the run was interrupted ({self.interrupted})" if self.interrupted else
                                   "the run was cleaned up before the task finished")
        try:
            if self.job_status_poller is not None:
                self.job_status_poller.close()  # scales every block in
        except Exception:
            logger.exception("Stopping the job status poller failed")
        try:
            self.memoizer.close()
        finally:
            for executor in self.executors.values():
                try:
                    if self.interrupted:
                        executor.cancel_queued()
                    executor.shutdown()
                except Exception:
                    logger.exception("Executor %s failed to shut down cleanly", executor.label)
            self._close_channels()
            for task in list(self.tasks.values()):
                if task.status not in FINAL_STATES:
                    self._runner.cancel(task)
            counts = self._states.summary()
            self._emit(RunEnded(self.run_id, time.time(), _outcome(counts, self.interrupted), counts))
            self.event_sink.close()
            if self.store is not None:
                self.store.close()
            if DataFlowKernelLoader._dfk is self:
                DataFlowKernelLoader.clear()
            gc_tuning.release()
            self._interrupt_handlers.restore()
            logger.info("DataFlowKernel cleanup complete")
            if self._logging_unregister is not None:
                self._logging_unregister()
                self._logging_unregister = None

    def atexit_cleanup(self) -> None:
        """At interpreter exit, an uncleaned kernel is treated as its ``exit_mode`` says."""
        if self.cleanup_called:
            return
        mode = self._config.exit_mode
        logger.warning("Python is exiting with DataFlowKernel %s still loaded (exit_mode=%s); "
                       "call parsl_repro.dfk().cleanup() to release resources explicitly", self.run_id, mode)
        if mode == "skip":
            return
        if mode == "wait" and self.interrupted is None:
            self.wait_for_current_tasks()
        self.cleanup()


def _outcome(counts: dict[str, int], interrupted: str | None) -> str:
    """How a run ended: ``interrupted`` by a signal; ``failed`` if a task failed; ``incomplete``
    if it was cleaned up before every task finished; else ``completed``."""
    if interrupted:
        return "interrupted"
    if any(counts.get(state) for state in FAILED_STATES):
        return "failed"
    return "incomplete" if counts.get(CANCELLED) else "completed"


def _at_interpreter_exit(kernel: DataFlowKernel) -> None:
    """Run ``kernel.atexit_cleanup`` when the main thread ends, before thread pools are torn down.

    ``concurrent.futures`` stops accepting work from its own threading-exit hook, which runs before
    ``atexit`` handlers; tasks still waiting on dependencies could then never launch. Hooks
    registered later run earlier, so ours (registered per kernel) runs first. Only a weak
    reference is held: a kernel that was cleaned up and dropped is not kept alive.
    """
    ref = weakref.ref(kernel)

    def hook() -> None:
        alive = ref()
        if alive is not None:
            alive.atexit_cleanup()

    register = getattr(threading, "_register_atexit", None)
    try:
        if register is None:
            raise RuntimeError("no threading exit hook in this Python")
        register(hook)
    except RuntimeError:
        atexit.register(hook)


def _as_config(config: Any, executors: Sequence[ParslExecutor] | None, fields: dict[str, Any]) -> Config:
    if isinstance(config, Config):
        if executors is not None or fields:
            raise ConfigurationError("DataFlowKernel: give either a Config or executors/fields, not both")
        return config
    if isinstance(config, ParslExecutor):
        executors = [config]
    elif isinstance(config, (list, tuple)):
        executors = list(config)
    elif config is not None:
        raise ConfigurationError(f"DataFlowKernel: expected a Config, an executor or a list of executors, "
                                 f"got {type(config).__name__}")
    return Config(executors=executors, **fields)


def _guess_workflow_name() -> str:
    own = os.path.dirname(os.path.abspath(parsl_repro.__file__))
    for frame in inspect.stack(context=0):
        path = os.path.abspath(frame.filename)
        if not path.startswith(own) and "typeguard" not in path:
            return os.path.basename(path)
    return "unnamed"


class DataFlowKernelLoader:
    """Holds the one kernel that ``parsl_repro.load()`` made, for apps declared without a kernel."""

    _dfk: DataFlowKernel | None = None

    @classmethod
    def clear(cls) -> None:
        """Forget the loaded kernel (without cleaning it up), so another can be loaded."""
        cls._dfk = None

    @classmethod
    def load(cls, config: Config | None = None) -> DataFlowKernel:
        """Start a kernel for ``config`` (default ``Config()``) and make it the current one."""
        if cls._dfk is not None:
            raise ConfigurationError("Config has already been loaded: call parsl_repro.dfk().cleanup() "
                                     "(or parsl_repro.clear()) before loading another")
        if config is not None and not isinstance(config, Config):
            raise ConfigurationError(f"parsl_repro.load() takes a Config, not {type(config).__name__}")
        cls._dfk = DataFlowKernel(config or Config())
        return cls._dfk

    @classmethod
    def wait_for_current_tasks(cls) -> None:
        cls.dfk().wait_for_current_tasks()

    @classmethod
    def dfk(cls) -> DataFlowKernel:
        """The current kernel; raises ``NoDataFlowKernelError`` when none is loaded."""
        if cls._dfk is None:
            raise NoDataFlowKernelError("Must first load config")
        return cls._dfk
