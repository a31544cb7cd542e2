"""Nodes for MPI tasks: which nodes a batch job has, and which task holds which of them.

In MPI mode one worker pool runs on the first node of each block (``SimpleLauncher``) and hands
out the block's nodes to its tasks. The node list comes from the batch scheduler: Slurm
(``SLURM_NODELIST``, expanded by ``scontrol show hostnames``), PBS (``PBS_NODEFILE``, one line
per host or per rank; each host counted once), or else this host alone.

``MPITaskScheduler`` (Parsl's name and interface) holds tasks until enough nodes are free:
``put_task`` gives a task its ``num_nodes`` nodes at once, writing them to the task's resource
specification as ``MPI_NODELIST``, or puts it in a backlog (fewest nodes first, then in arrival
order); the result of a task returns its nodes and starts whatever in the backlog now fits. A
task asking for more nodes than the whole block has raises ``MPINodesUnavailable`` at once rather
than waiting forever. ``PoolMPIScheduler`` is the worker pool's use of it on raw task frames.
"""
from __future__ import annotations

import enum
import itertools
import logging
import os
import pickle
import queue
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from parsl_repro.executors.errors import RemoteExceptionWrapper

logger = logging.getLogger(__name__)


class Scheduler(enum.Enum):
    """The batch scheduler a pool runs under, as its environment shows."""
    Unknown = 0
    Slurm = 1
    PBS = 2


def identify_scheduler() -> Scheduler:
    """Slurm if ``SLURM_NODELIST`` is set, else PBS if ``PBS_NODEFILE`` is, else Unknown."""
    if os.environ.get("SLURM_NODELIST"):
        return Scheduler.Slurm
    if os.environ.get("PBS_NODEFILE"):
        return Scheduler.PBS
    return Scheduler.Unknown


def get_slurm_hosts_list() -> list[str]:
    """The hosts of this Slurm job: ``SLURM_NODELIST`` expanded by ``scontrol show hostnames``."""
    command = ["scontrol", "show", "hostnames"]
    nodelist = os.environ.get("SLURM_NODELIST")
    if nodelist:
        command.append(nodelist)
    return subprocess.check_output(command, stderr=subprocess.STDOUT).decode().split()


def get_pbs_hosts_list() -> list[str]:
    """The hosts named in ``PBS_NODEFILE``, each once, in file order."""
    with open(os.environ["PBS_NODEFILE"]) as nodefile:
        return list(dict.fromkeys(line.strip() for line in nodefile if line.strip()))


def get_nodes_in_batchjob(scheduler: Scheduler) -> list[str]:
    """The nodes of the batch job ``scheduler`` runs; this host alone when it is Unknown."""
    if scheduler == Scheduler.Slurm:
        return get_slurm_hosts_list()
    if scheduler == Scheduler.PBS:
        return get_pbs_hosts_list()
    return [socket.gethostname()]


class MPINodesUnavailable(Exception):
    """A task asks for more nodes than are free (``put_task`` backlogs it), or than the block has
    at all (the task fails with this error)."""

    def __init__(self, requested: int, available: int) -> None:
        super().__init__(requested, available)
        self.requested = requested
        self.available = available

    def __str__(self) -> str:
        return f"MPINodesUnavailable(requested={self.requested} available={self.available})"


@dataclass(order=True)
class PrioritizedTask:
    """A backlogged task, ordered by ``priority`` (nodes wanted), then arrival; the task itself
    (a dict) is never compared."""
    priority: int
    arrival: int = 0
    task: dict = field(default_factory=dict, compare=False)


class _FreeNodes:
    """How many nodes are free: ``value`` and ``get_lock()``, as the ``multiprocessing.Value``
    Parsl uses, without a process-shared semaphore (the counter never leaves its process)."""

    def __init__(self, value: int) -> None:
        self.value = value
        self._lock = threading.Lock()

    def get_lock(self) -> threading.Lock:
        return self._lock

    def __repr__(self) -> str:
        return f"<free nodes {self.value}>"


class TaskScheduler:
    """Passes tasks and results straight through: what a pool does when MPI mode is off."""

    def __init__(self, pending_task_q: Any, pending_result_q: Any) -> None:
        self.pending_task_q = pending_task_q
        self.pending_result_q = pending_result_q

    def put_task(self, task: Any) -> None:
        self.pending_task_q.put(task)

    def get_result(self, block: bool = True, timeout: float | None = None) -> Any:
        return self.pending_result_q.get(block, timeout)


class MPITaskScheduler(TaskScheduler):
    """Places MPI tasks on the nodes of one batch job; see the module docstring.

    Tasks are dicts ``{"task_id": ..., "buffer": ..., "context": {"resource_spec": {...}}}``;
    results are pickled dicts ``{"task_id": ..., "type": "result", ...}``. ``nodes`` defaults
    to the nodes of the batch job this process runs in.
    """

    def __init__(self, pending_task_q: Any, pending_result_q: Any, nodes: Sequence[str] | None = None) -> None:
        super().__init__(pending_task_q, pending_result_q)
        self.scheduler = identify_scheduler()
        self.available_nodes = list(nodes) if nodes is not None else get_nodes_in_batchjob(self.scheduler)
        self._free_node_counter = _FreeNodes(len(self.available_nodes))
        self.nodes_q: queue.Queue[str] = queue.Queue()
        for node in self.available_nodes:
            self.nodes_q.put(node)
        self._map_tasks_to_nodes: dict[Any, list[str]] = {}
        self._backlog_queue: queue.PriorityQueue[PrioritizedTask] = queue.PriorityQueue()
        self._arrivals = itertools.count()
        logger.info("MPI task scheduler (%s) has %d nodes: %s", self.scheduler.name, len(self.available_nodes),
                    ",".join(self.available_nodes))

    def _get_nodes(self, num_nodes: int) -> list[str]:
        """Take ``num_nodes`` free nodes, or raise ``MPINodesUnavailable`` taking none."""
        with self._free_node_counter.get_lock():
            if num_nodes > self._free_node_counter.value:
                raise MPINodesUnavailable(num_nodes, self._free_node_counter.value)
            self._free_node_counter.value -= num_nodes
            return [self.nodes_q.get() for _ in range(num_nodes)]

    def _return_nodes(self, nodes: list[str]) -> None:
        with self._free_node_counter.get_lock():
            for node in nodes:
                self.nodes_q.put(node)
            self._free_node_counter.value += len(nodes)

    def put_task(self, task_package: dict) -> None:
        """Pass the task on with its nodes (``MPI_NODELIST`` in its resource specification), or
        backlog it until they are free. A task without ``num_nodes`` passes on with none; one
        wanting more nodes than exist raises ``MPINodesUnavailable``."""
        resource_spec = task_package.get("context", {}).get("resource_spec", {})
        wanted = resource_spec.get("num_nodes")
        if wanted:
            wanted = int(wanted)
            if wanted > len(self.available_nodes):
                raise MPINodesUnavailable(wanted, len(self.available_nodes))
            task_id = task_package["task_id"]
            try:
                nodes = self._get_nodes(wanted)
            except MPINodesUnavailable as e:
                logger.debug("Task %r waits for nodes: %s", task_id, e)
                self._backlog_queue.put(PrioritizedTask(wanted, next(self._arrivals), task_package))
                return
            resource_spec["MPI_NODELIST"] = ",".join(nodes)
            self._map_tasks_to_nodes[task_id] = nodes
        self._pass_on(task_package)

    def _pass_on(self, task_package: dict) -> None:
        """Hand a task that has its nodes on to the workers."""
        self.pending_task_q.put(task_package)

    def release(self, task_id: Any) -> None:
        """The task ended: free its nodes (if it had any) and start what now fits."""
        nodes = self._map_tasks_to_nodes.pop(task_id, None)
        if nodes:
            self._return_nodes(nodes)
            self._schedule_backlog_tasks()

    def _schedule_backlog_tasks(self) -> None:
        """Start backlogged tasks, fewest nodes first, while the next one fits."""
        backlog = self._backlog_queue
        while True:
            with backlog.mutex:
                if not backlog.queue or backlog.queue[0].priority > self._free_node_counter.value:
                    return
            self.put_task(backlog.get_nowait().task)

    def get_result(self, block: bool = True, timeout: float | None = None) -> Any:
        """The next result (as it came, pickled), after freeing its task's nodes."""
        result = self.pending_result_q.get(block, timeout)
        if result is None:
            return None
        message = pickle.loads(result)
        if message.get("type") == "result":
            self.release(message["task_id"])
        return result


class PoolMPIScheduler(MPITaskScheduler):
    """A worker pool's MPI mode, on the frames a pool handles.

    ``put(task_id, payload)`` takes a task as it came from the interchange: a context payload
    (``protocol.pack_context_payload``) whose context's ``resource_spec`` says ``num_nodes``.
    Once its nodes are free the task goes to ``ready`` (the pool's queue for idle workers) with
    ``MPI_NODELIST`` and every launcher prefix (``MPI_PREFIX``, ``MPIEXEC_PREFIX``, ...) added
    to its resource specification, which the worker exports as ``PARSL_<KEY>``. A task that
    cannot run here (more nodes than the block has, a context that does not unpack) fails at
    once: ``put`` returns its result frames. ``release(task_id)``, when its result is in or its
    worker died, frees its nodes and starts what now fits.
    """

    def __init__(self, mpi_launcher: str, ready: deque[tuple[bytes, bytes]],
                 nodes: Sequence[str] | None = None) -> None:
        super().__init__(None, None, nodes)
        self.mpi_launcher = mpi_launcher
        self.ready = ready

    def put(self, task_id: bytes, payload: bytes) -> list[bytes]:
        """Schedule one task; returns ``[]``, or the four result frames of a task failed at once."""
        from parsl_repro.executors.high_throughput import protocol as p
        from parsl_repro.serialize import deserialize

        if not payload.startswith(p.CONTEXT_PAYLOAD):  # a bare task (submit_payload without a context)
            self.ready.append((task_id, payload))
            return []
        try:
            packed_context, buffer = p.unpack_context_payload(payload)
            self.put_task({"task_id": task_id, "buffer": buffer, "context": deserialize(packed_context)})
        except Exception as e:
            logger.error("Task %d cannot run on this pool (nodes %s): %s", p.unpack_id(task_id),
                         ",".join(self.available_nodes), e)
            return self._failure(task_id, e)
        return []

    def held(self) -> int:
        """Tasks waiting for nodes."""
        return self._backlog_queue.qsize()

    def _pass_on(self, task_package: dict) -> None:
        from parsl_repro.executors.high_throughput import protocol as p
        from parsl_repro.executors.high_throughput.mpi_prefix_composer import compose_all
        from parsl_repro.serialize import serialize

        context = task_package["context"]
        resource_spec = context.get("resource_spec")
        nodelist = resource_spec.get("MPI_NODELIST") if resource_spec else None
        if nodelist:
            prefixes = compose_all(self.mpi_launcher, resource_spec, nodelist.split(","))
            resource_spec.update((name[len("PARSL_"):], prefix) for name, prefix in prefixes.items())
            logger.debug("Task %d gets %s: %s", p.unpack_id(task_package["task_id"]), nodelist,
                         prefixes["PARSL_MPI_PREFIX"])
        self.ready.append((task_package["task_id"], p.pack_context_payload(serialize(context),
                                                                             task_package["buffer"])))

    @staticmethod
    def _failure(task_id: bytes, error: Exception) -> list[bytes]:
        from parsl_repro.executors.high_throughput import protocol as p
        from parsl_repro.serialize import serialize

        return [task_id, p.OK, p.META.pack(time.time(), os.getpid()),
                serialize(RemoteExceptionWrapper(type(error), error, error.__traceback__))]
