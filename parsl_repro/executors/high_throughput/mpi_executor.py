"""``MPIExecutor``: the HighThroughputExecutor in MPI mode, with Parsl's constructor."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from parsl_repro.executors.high_throughput.executor import HighThroughputExecutor
from parsl_repro.executors.high_throughput.mpi_prefix_composer import VALID_LAUNCHERS, validate_resource_spec
from parsl_repro.executors.status_handling import BlockProviderExecutor
from parsl_repro.jobs.states import JobStatus
from parsl_repro.providers.base import ExecutionProvider
from parsl_repro.typecheck import typechecked_config

logger = logging.getLogger(__name__)


class MPIExecutor(HighThroughputExecutor):
    """A HighThroughputExecutor for tasks that span several nodes (MPI applications).

    Each block runs one worker pool, on its first node: the provider must use the
    ``SimpleLauncher`` (else ``TypeError``). The pool finds the block's nodes from the batch
    scheduler (``SLURM_NODELIST``, ``PBS_NODEFILE``, else only its own host) and gives each task
    the nodes its ``parsl_resource_specification`` asks for, holding tasks until enough nodes
    are free. A task runs its ranks with a launcher, typically from a bash app::

        @bash_app
        def hello(parsl_resource_specification={"num_nodes": 2, "ranks_per_node": 4}):
            return "$PARSL_MPI_PREFIX ./hello_mpi"

    Every task must give a resource specification, with keys among ``num_nodes``,
    ``ranks_per_node``, ``num_ranks`` and ``launcher_options`` (else
    ``InvalidResourceSpecification``; ``MissingResourceSpecification`` when it is empty). The
    task sees ``PARSL_NUM_NODES``, ``PARSL_RANKS_PER_NODE``, ``PARSL_NUM_RANKS``,
    ``PARSL_MPI_NODELIST`` (its nodes, comma-separated), ``PARSL_MPI_PREFIX`` and each
    launcher's own prefix (``PARSL_MPIEXEC_PREFIX``, ``PARSL_SRUN_PREFIX``,
    ``PARSL_APRUN_PREFIX``). A task asking for more nodes than a block has fails with
    ``MPINodesUnavailable``. Resource sampling is off: a task's processes are on other nodes.

    Parameters
    ----------
    label : str
        The executor's name (default ``"MPIExecutor"``).
    provider : ExecutionProvider
        Where blocks come from; it must use ``SimpleLauncher``. Default: a ``LocalProvider``
        with a ``SimpleLauncher``.
    max_workers_per_block : int
        How many MPI tasks one block runs at once (default 1); at most the provider's
        ``nodes_per_block`` makes sense. ``max_workers`` is accepted as an older spelling.
    mpi_launcher : str
        Which of ``"mpiexec"`` (default), ``"srun"`` and ``"aprun"`` gives ``PARSL_MPI_PREFIX``
        (else ``ValueError``).
    encrypted : bool
        CurveZMQ on every connection (default True, as our HighThroughputExecutor; Parsl's
        MPIExecutor defaults to False).

    The rest (``launch_cmd``, ``interchange_launch_cmd``, ``address``, ``loopback_address``,
    ``worker_port``, ``worker_ports``, ``worker_port_range``, ``interchange_port_range``,
    ``storage_access``, ``working_dir``, ``worker_debug``, ``prefetch_capacity``,
    ``heartbeat_threshold``, ``heartbeat_period``, ``drain_period``, ``poll_period``,
    ``address_probe_timeout``, ``worker_logdir_root``, ``block_error_handler``,
    ``remote_monitoring_radio``) mean what they mean for the HighThroughputExecutor. Settings
    about workers per core, memory, accelerators, CPU affinity and pool selection do not
    apply and are not accepted.
    """

    @typechecked_config
    def __init__(self, label: str = "MPIExecutor", provider: ExecutionProvider | None = None,
                 launch_cmd: str | None = None, interchange_launch_cmd: Sequence[str] | None = None,
                 address: str | None = None, loopback_address: str = "127.0.0.1",
                 worker_port: int | None = None, worker_ports: tuple[int, int] | None = None,
                 worker_port_range: tuple[int, int] | None = (54000, 55000),
                 interchange_port_range: tuple[int, int] | None = (55000, 56000),
                 storage_access: list | None = None, working_dir: str | None = None, worker_debug: bool = False,
                 max_workers_per_block: int = 1, max_workers: int | None = None, prefetch_capacity: int = 0,
                 heartbeat_threshold: int | float = 120, heartbeat_period: int | float = 30,
                 drain_period: int | None = None, poll_period: int = 10, address_probe_timeout: int | None = None,
                 worker_logdir_root: str | None = None, mpi_launcher: str = "mpiexec",
                 block_error_handler: bool | Callable[[BlockProviderExecutor, dict[str, JobStatus]], None] = True,
                 encrypted: bool = True, remote_monitoring_radio: Any = None,
                 short_task_prefetch: bool = True, interchange_address: str | None = None) -> None:
        from parsl_repro.launchers import SimpleLauncher

        if max_workers is not None:
            max_workers_per_block = max_workers
        if provider is None:
            from parsl_repro.providers import LocalProvider
            provider = LocalProvider(launcher=SimpleLauncher())
        if not isinstance(getattr(provider, "launcher", None), SimpleLauncher):
            raise TypeError(f"MPIExecutor {label} needs a provider that uses SimpleLauncher (one worker pool per "
                            f"block, which hands out the block's nodes), not "
                            f"{type(getattr(provider, 'launcher', None)).__name__}")
        if mpi_launcher not in VALID_LAUNCHERS:
            raise ValueError(f"mpi_launcher is {mpi_launcher!r}; it must be one of {', '.join(VALID_LAUNCHERS)}")
        super().__init__(
            label=label, provider=provider, launch_cmd=launch_cmd, interchange_launch_cmd=interchange_launch_cmd,
            address=address, loopback_address=loopback_address, worker_port=worker_port, worker_ports=worker_ports,
            worker_port_range=worker_port_range, interchange_port_range=interchange_port_range,
            storage_access=storage_access, working_dir=working_dir, worker_debug=worker_debug,
            cores_per_worker=1e-9,  # workers are not bound by cores: max_workers_per_block decides
            max_workers_per_node=max_workers_per_block, prefetch_capacity=prefetch_capacity,
            heartbeat_threshold=heartbeat_threshold, heartbeat_period=heartbeat_period, drain_period=drain_period,
            poll_period=poll_period, address_probe_timeout=address_probe_timeout,
            worker_logdir_root=worker_logdir_root, block_error_handler=block_error_handler, encrypted=encrypted,
            remote_monitoring_radio=remote_monitoring_radio,
            short_task_prefetch=short_task_prefetch,  # accepted as HTEX's; MPI mode never prefetches
            interchange_address=interchange_address)
        self.enable_mpi_mode = True
        self.mpi_launcher = mpi_launcher
        self.max_workers_per_block = max_workers_per_block

    def validate_resource_spec(self, resource_specification: dict) -> None:
        """Raise ``InvalidResourceSpecification`` (``MissingResourceSpecification`` when empty)
        unless the specification is a valid MPI one; see ``mpi_prefix_composer``."""
        validate_resource_spec(resource_specification)

    def monitor_resources(self) -> bool:
        """False: a task's processes run on several nodes, out of the pool's sight."""
        return False
