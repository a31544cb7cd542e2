"""MPI tasks' resource specifications, and the launcher prefixes a task runs its ranks with.

In MPI mode a task says what it needs in ``parsl_resource_specification``::

    {"num_nodes": 2, "ranks_per_node": 4}          # or "num_ranks": 8 instead of ranks_per_node
    {"num_nodes": 2, "num_ranks": 8, "launcher_options": "--cpu-bind depth"}

``validate_resource_spec`` checks that on submit (the executor calls it for every task);
``complete_resource_spec`` fills in what follows from the rest (``num_ranks`` from
``num_nodes * ranks_per_node``, ``ranks_per_node`` as ``num_ranks / num_nodes`` rounded up, one
node and one rank per node when nothing is said). Once the worker pool has given the task its
nodes, ``compose_all`` renders one prefix per launcher, for example::

    PARSL_MPIEXEC_PREFIX  mpiexec -n 8 -ppn 4 -hosts node1,node2
    PARSL_SRUN_PREFIX     srun --nodes 2 --ntasks 8 --ntasks-per-node 4 --nodelist node1,node2
    PARSL_APRUN_PREFIX    aprun -n 8 -N 4 -node-list node1,node2
    PARSL_MPI_PREFIX      the one of these that the executor's ``mpi_launcher`` names

and a bash app runs ``$PARSL_MPI_PREFIX ./my_mpi_program``.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from parsl_repro.executors.errors import InvalidResourceSpecification, MissingResourceSpecification

logger = logging.getLogger(__name__)

__all__ = ["VALID_LAUNCHERS", "MPI_RESOURCE_KEYS", "InvalidResourceSpecification", "MissingResourceSpecification",
           "validate_resource_spec", "complete_resource_spec", "compose_mpiexec_launch_cmd",
           "compose_srun_launch_cmd", "compose_aprun_launch_cmd", "compose_all"]

VALID_LAUNCHERS = ("srun", "aprun", "mpiexec")
"""The values ``mpi_launcher`` accepts, as in Parsl."""

MPI_RESOURCE_KEYS = frozenset({"num_nodes", "ranks_per_node", "num_ranks", "launcher_options"})
"""The keys an MPI task's resource specification may hold."""

_COUNTS = ("num_nodes", "ranks_per_node", "num_ranks")


def validate_resource_spec(resource_spec: Mapping[str, Any]) -> None:
    """Raise ``MissingResourceSpecification`` for an empty specification (MPI mode needs one) and
    ``InvalidResourceSpecification`` for keys other than ``MPI_RESOURCE_KEYS``, counts that are
    not positive integers, or ``launcher_options`` that is not a string. Never changes
    ``resource_spec``."""
    if not resource_spec:
        raise MissingResourceSpecification(
            "MPI mode needs each task's parsl_resource_specification, e.g. {'num_nodes': 2, 'ranks_per_node': 4}")
    unknown = set(resource_spec) - MPI_RESOURCE_KEYS
    if unknown:
        raise InvalidResourceSpecification(
            unknown, f"an MPI task's resource specification accepts only {', '.join(sorted(MPI_RESOURCE_KEYS))}")
    for key in _COUNTS:
        if key in resource_spec:
            _positive_int(key, resource_spec[key])
    options = resource_spec.get("launcher_options")
    if options is not None and not isinstance(options, str):
        raise InvalidResourceSpecification({"launcher_options"},
                                           f"launcher_options must be a string, not {type(options).__name__}")


def complete_resource_spec(resource_spec: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a valid ``resource_spec`` with ``num_nodes``, ``ranks_per_node`` and
    ``num_ranks`` all set, as integers: one node unless said; ``num_ranks = num_nodes *
    ranks_per_node``; ``ranks_per_node = ceil(num_ranks / num_nodes)``; one rank per node when
    neither is given."""
    completed = dict(resource_spec)
    nodes = _positive_int("num_nodes", completed.get("num_nodes", 1))
    ranks_per_node, ranks = _ranks(completed, nodes)
    completed.update(num_nodes=nodes, ranks_per_node=ranks_per_node, num_ranks=ranks)
    return completed


def compose_mpiexec_launch_cmd(resource_spec: Mapping[str, Any], node_hostnames: Sequence[str]) -> tuple[str, str]:
    """``("PARSL_MPIEXEC_PREFIX", "mpiexec -n RANKS -ppn PER_NODE -hosts h1,h2 [options]")``:
    the Hydra/PALS spelling (MPICH, Intel MPI, Cray PALS)."""
    ranks_per_node, ranks = _ranks(resource_spec, len(node_hostnames))
    return "PARSL_MPIEXEC_PREFIX", _join("mpiexec", "-n", ranks, "-ppn", ranks_per_node,
                                         "-hosts", ",".join(node_hostnames), resource_spec.get("launcher_options"))


def compose_srun_launch_cmd(resource_spec: Mapping[str, Any], node_hostnames: Sequence[str]) -> tuple[str, str]:
    """``("PARSL_SRUN_PREFIX", "srun --nodes N --ntasks RANKS --ntasks-per-node PER_NODE
    --nodelist h1,h2 [options]")``."""
    ranks_per_node, ranks = _ranks(resource_spec, len(node_hostnames))
    return "PARSL_SRUN_PREFIX", _join("srun", "--nodes", len(node_hostnames), "--ntasks", ranks,
                                      "--ntasks-per-node", ranks_per_node, "--nodelist", ",".join(node_hostnames),
                                      resource_spec.get("launcher_options"))


def compose_aprun_launch_cmd(resource_spec: Mapping[str, Any], node_hostnames: Sequence[str]) -> tuple[str, str]:
    """``("PARSL_APRUN_PREFIX", "aprun -n RANKS -N PER_NODE -node-list h1,h2 [options]")``."""
    ranks_per_node, ranks = _ranks(resource_spec, len(node_hostnames))
    return "PARSL_APRUN_PREFIX", _join("aprun", "-n", ranks, "-N", ranks_per_node,
                                       "-node-list", ",".join(node_hostnames), resource_spec.get("launcher_options"))


_COMPOSERS: dict[str, Callable[[Mapping[str, Any], Sequence[str]], tuple[str, str]]] = {
    "aprun": compose_aprun_launch_cmd, "srun": compose_srun_launch_cmd, "mpiexec": compose_mpiexec_launch_cmd}


def compose_all(mpi_launcher: str, resource_spec: Mapping[str, Any], node_hostnames: Sequence[str]) -> dict[str, str]:
    """Every launcher's prefix for a task given ``node_hostnames``, by environment variable name,
    plus ``PARSL_MPI_PREFIX``: the prefix of ``mpi_launcher`` (one of ``VALID_LAUNCHERS``, else
    ``ValueError``)."""
    if mpi_launcher not in _COMPOSERS:
        raise ValueError(f"unknown mpi_launcher {mpi_launcher!r}: use one of {', '.join(VALID_LAUNCHERS)}")
    prefixes = dict(composer(resource_spec, node_hostnames) for composer in _COMPOSERS.values())
    prefixes["PARSL_MPI_PREFIX"] = prefixes[f"PARSL_{mpi_launcher.upper()}_PREFIX"]
    return prefixes


def _ranks(resource_spec: Mapping[str, Any], nodes: int) -> tuple[int, int]:
    """``(ranks_per_node, num_ranks)`` on ``nodes`` nodes, from what the specification says."""
    nodes = max(1, nodes)
    per_node = resource_spec.get("ranks_per_node")
    ranks = resource_spec.get("num_ranks")
    if per_node is not None:
        per_node = _positive_int("ranks_per_node", per_node)
    if ranks is not None:
        ranks = _positive_int("num_ranks", ranks)
    if per_node is None:
        per_node = math.ceil(ranks / nodes) if ranks is not None else 1
    if ranks is None:
        ranks = per_node * nodes
    return per_node, ranks


def _positive_int(key: str, value: Any) -> int:
    """``value`` as an int if it is a positive integer (or a string of one), else
    ``InvalidResourceSpecification`` naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidResourceSpecification({key}, f"{key} must be a positive integer, not {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise InvalidResourceSpecification({key}, f"{key} must be a positive integer, not {value!r}") from None
    if number < 1:
        raise InvalidResourceSpecification({key}, f"{key} must be a positive integer, not {value!r}")
    return number


def _join(*words: Any) -> str:
    return " ".join(str(word) for word in words if word not in (None, ""))
