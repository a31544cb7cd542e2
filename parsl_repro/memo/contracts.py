"""What the kernel asks of a memoizer (``Memoizer``), and what a memoizer asks of a result store
(``ResultStore``): the two seams around memoization, so either side can be replaced or tested alone."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from parsl_repro.dataflow.taskrecord import TaskRecord


@dataclass(frozen=True)
class StoredResult:
    """Where a memo key's result is: the run and task that produced it, and its outputs."""
    memo_key: str
    run_id: str
    task_id: int
    result_digest: str
    serializer: str
    value: bytes | None  # None when too large to load eagerly: read with ResultStore.read_result
    outputs: tuple[tuple[str, str], ...]  # (absolute path, sha256) of each output file when it was stored


class ResultStore(Protocol):
    """The memoizer's view of the provenance store: earlier runs' results and where they came from.
    ``parsl_repro.monitoring.store.ProvenanceStore`` is one; a dict-backed fake is another."""

    def load_results(self, run_ids: list[str] | None) -> dict[str, StoredResult]:
        """memo key -> stored result, for results produced or reused by ``run_ids`` (every run when
        None); a run in ``run_ids`` wins over others, then the newest."""

    def read_result(self, memo_key: str, run_id: str) -> bytes:
        """The value of a result ``load_results`` left out (``value is None``)."""

    def run_ids_for_rundirs(self, rundirs: Iterable[str]) -> list[str]:
        """The runs whose run directory is one of ``rundirs``."""

    def rundirs_of(self, run_ids: list[str]) -> list[str]:
        """The run directories of ``run_ids``."""

    def newest_run(self, run_ids: Iterable[str]) -> str | None:
        """The most recently begun of ``run_ids`` that the store knows, or None."""


class Memoizer(metaclass=ABCMeta):
    """What the kernel asks of a memoization/checkpoint system.

    Who calls what, and when (always the kernel, never user code):
      * ``start`` once, when the kernel starts, with the run directory;
      * ``check_memo`` when a task's dependencies are done, just before launch: return a completed
        Future to use instead of running the task, or None to run it; set ``task['hashsum']``;
      * exactly one of ``update_memo_result`` / ``update_memo_exception`` when a task ends;
      * ``close`` once, at cleanup.
    """

    @abstractmethod
    def start(self, *, run_dir: str, config_run_dir: str) -> None: ...

    @abstractmethod
    def check_memo(self, task: TaskRecord) -> Future[Any] | None: ...

    @abstractmethod
    def update_memo_result(self, task: TaskRecord, r: Any) -> None: ...

    @abstractmethod
    def update_memo_exception(self, task: TaskRecord, e: BaseException) -> None: ...

    @abstractmethod
    def close(self) -> None: ...
