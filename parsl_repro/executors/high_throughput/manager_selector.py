"""Which worker pools get tasks first: the interchange asks its ``ManagerSelector`` to order
the pools that have room, every time it hands out tasks, and fills them from the end of that
order (as Parsl's interchange does).

Pass one as ``HighThroughputExecutor(manager_selector=...)``. It is serialized into the
interchange's settings, so it must be picklable (a class importable where the interchange
runs, or one ``parsl_repro.serialize`` can carry by value).
"""
from __future__ import annotations

import random
from abc import ABCMeta, abstractmethod
from collections.abc import Mapping, Set
from typing import Any


class ManagerSelector(metaclass=ABCMeta):
    """Orders the pools that can take tasks now."""

    @abstractmethod
    def sort_managers(self, ready_managers: Mapping[bytes, Any], manager_list: Set[bytes]) -> list[bytes]:
        """Return ``manager_list`` (ids of pools with free capacity) ordered so that the pool to
        fill first comes LAST (Parsl's convention, which selectors written for Parsl rely on).
        ``ready_managers[id]`` is the pool's record: ``record["block_id"]``,
        ``record["tasks"]``, ``record["worker_count"]``, ... (see ``ManagerRecord``)."""


class RandomManagerSelector(ManagerSelector):
    """A random order on every pass (the default): spreads tasks evenly over all pools, which
    also keeps every block busy, so idle blocks rarely appear for scale-in."""

    def sort_managers(self, ready_managers: Mapping[bytes, Any], manager_list: Set[bytes]) -> list[bytes]:
        shuffled = list(manager_list)
        random.shuffle(shuffled)
        return shuffled


class BlockIdManagerSelector(ManagerSelector):
    """Pools ordered by block id (as strings, as Parsl sorts them), so the highest block is filled
    first: concentrates work on the newest blocks, so that with ``htex_auto_scale`` the others go idle
    and are scaled in."""

    def sort_managers(self, ready_managers: Mapping[bytes, Any], manager_list: Set[bytes]) -> list[bytes]:
        return sorted(manager_list, key=lambda m: (ready_managers[m]["block_id"] is not None,
                                                   ready_managers[m]["block_id"]))
