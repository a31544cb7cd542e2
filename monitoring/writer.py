"""The writer of one run's events: ``StoreSink`` queues them and a writer thread writes them in
batches, one transaction each, or spools them while the database is unreachable.

Data flow::

    kernel threads --emit()--> queue --writer thread--> one transaction per batch --> database
                                                   \\--(database unreachable)--> spool file
                                                                                    (replayed on return)

``emit`` only appends to a queue. The writer thread takes everything queued (up to
``MAX_BATCH`` events, paced by ``batches``), turns it into rows (``handlers``, ``rows``) and
commits them together, so a run killed with SIGKILL loses at most the last fraction of a second.
If the database stops answering (a PostgreSQL restart), batches go to the run's spool file
(``spool``) and are written, in order, once it answers again; the user is warned, and anything
that cannot be kept is counted and reported, never dropped silently.
"""
from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError, OperationalError

from parsl_repro.events import EventSink
from parsl_repro.monitoring.batching import batches
from parsl_repro.monitoring.handlers import apply
from parsl_repro.monitoring.recorded_values import ValueRenderer
from parsl_repro.monitoring.rows import BatchRows, HeldRows
from parsl_repro.monitoring.spool import SPOOL_LIMIT_BYTES, Spool

if TYPE_CHECKING:
    from parsl_repro.memo import FileDigestCache
    from parsl_repro.monitoring.store import ProvenanceStore

logger = logging.getLogger(__name__)

MAX_BATCH = 20_000


def _unreachable(error: DBAPIError) -> bool:
    """Whether a database error means "cannot reach the database" (worth spooling and retrying)."""
    return bool(error.connection_invalidated) or isinstance(error, OperationalError)


class StoreSink(EventSink):
    """The kernel's sink for one run: ``emit`` queues, a writer thread writes batches."""

    def __init__(self, store: ProvenanceStore, run_id: str, kernel_pid: int | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self.host = socket.gethostname()  # the kernel's host: this sink runs beside it
        self.kernel_pid = kernel_pid or os.getpid()
        self.values = ValueRenderer()  # arguments and results that reach this writer unrendered
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.emit = self._queue.put  # type: ignore[method-assign]  # the whole hot-path cost
        self._stop = threading.Event()
        self._closed = False
        self.error: BaseException | None = None
        self.written = 0
        self.dropped = 0
        self._spool = Spool.of_run(store.spool_dir, run_id) if store.spool_dir else None
        self._file_digests: FileDigestCache | None = None
        self._held = HeldRows()
        self._thread = threading.Thread(target=self._run, name=f"provenance-writer-{run_id[:8]}", daemon=True)
        self._thread.start()

    def emit(self, event: Any) -> None:  # replaced per instance by queue.put in __init__
        self._queue.put(event)

    # --- writer thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        for batch in batches(self._queue, self._stop, MAX_BATCH, idle=self._idle):
            self._write_or_spool(batch)
        self._write_or_spool([], hold=False)
        self._retry_spool(final=True)

    def _idle(self) -> None:
        if self._held.due():
            self._write_or_spool([])
        self._retry_spool()

    def _write_or_spool(self, batch: list, hold: bool = True) -> None:
        try:
            rows = self._rows(batch)
            self._held.take_unfinished(rows, hold)
        except Exception as e:  # a bug: keep going, but surface it to the owner at close
            logger.exception("Provenance writer could not read a batch of %d events", len(batch))
            self.error = self.error or e
            self._lost(len(batch), e)
            return
        if rows.empty():
            return
        if self._spool is not None and self._spool.pending:
            self._keep(rows)
            self._retry_spool()
            return
        try:
            self._write(rows)
        except DBAPIError as e:
            if not _unreachable(e) or self._spool is None:
                logger.exception("Provenance writer failed on a batch of %d events", len(batch))
                self.error = self.error or e
                self._lost(rows.size, e)
                return
            self._tell_user(f"the provenance database stopped answering ({type(e).__name__}); events are kept in "
                            f"{self._spool.path} and will be written when it returns")
            self._keep(rows)
        except Exception as e:  # a bug: the thread must not die silently and take the rest of the run with it
            logger.exception("Provenance writer failed on a batch of %d events", len(batch))
            self.error = self.error or e
            self._lost(rows.size, e)

    def _keep(self, rows: BatchRows) -> None:
        """Spool ``rows``, or count them as lost when the spool is full."""
        assert self._spool is not None
        if not self._spool.append(rows):
            self._lost(rows.size, RuntimeError(f"spool {self._spool.path} is full ({SPOOL_LIMIT_BYTES} bytes)"))

    def _retry_spool(self, final: bool = False) -> None:
        spool = self._spool
        if spool is None or not spool.pending:
            return
        deadline = time.monotonic() + (10.0 if final else 0.0)
        while True:
            if spool.due() or final:
                try:
                    spool.replay(self._write)
                    self._tell_user(f"the provenance database is back; spooled events written from {spool.path}")
                    return
                except (OperationalError, DBAPIError):
                    spool.backoff()
            if time.monotonic() >= deadline:
                if final:
                    self._tell_user(f"the provenance database is still unreachable; {spool.count} events remain in "
                                    f"{spool.path}")
                return
            time.sleep(0.5)

    def _lost(self, count: int, error: BaseException) -> None:
        self.dropped += count
        self._tell_user(f"{count} provenance records could not be written: {type(error).__name__}: {error}")

    def _tell_user(self, message: str) -> None:
        logger.warning("%s", message)
        warnings.warn(f"parsl_repro: {message}", RuntimeWarning, stacklevel=1)

    def _rows(self, batch: list) -> BatchRows:
        rows = BatchRows()
        self._held.give_back(rows)
        apply(self, rows, batch)
        rows.size = len(batch)
        return rows

    def _write(self, rows: BatchRows) -> None:
        engine = self.store.engine
        assert engine is not None
        rows.commit(engine)
        self.written += rows.size

    def file_digest(self, path: str) -> tuple[str | None, int | None, float | None]:
        """(sha256, size, mtime) of a local file, or Nones when it cannot be read."""
        try:
            st = os.stat(path)
        except OSError:
            return None, None, None
        if self._file_digests is None:
            # here, not at the top: parsl_repro.memo would add to every writer's start what only
            # runs that record files need
            from parsl_repro.memo import FileDigestCache
            self._file_digests = FileDigestCache()
        try:
            sha = self._file_digests.sha256(path)
        except OSError:
            return None, None, None
        return sha, st.st_size, st.st_mtime

    def close(self) -> None:
        """Write everything queued and stop the writer thread. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join()
        if self.dropped:
            logger.error("%d provenance events of run %s were not recorded", self.dropped, self.run_id)
