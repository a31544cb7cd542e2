"""The provenance store: one database of runs, opened, written through a run's sink, and closed.

``ProvenanceStore.open()`` connects and makes the schema current; ``sink(run_id)`` is what the
kernel emits the run's events into (its first, ``RunStarted``, writes the run's row); ``close()``
writes what is queued and lets the database go. The memoizer reads earlier results through the
methods the store has from ``ResultReads`` (``parsl_repro.memo.ResultStore``).

The parts, each in its own module::

    store       this facade: ProvenanceStore, StoreUnavailable, replay_spool
    writer      StoreSink: the queue, the writer thread, batches, write or spool
    handlers    events -> rows, one handler per event type
    rows        the rows of a batch and how one transaction writes them (columns from models)
    rendering   a TaskCreated's call as text (RenderedTask), on either side of the pipe
    spool       batches kept on disk while the database is unreachable
    results     the memoizer's reads: stored results, runs and their directories
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from parsl_repro.errors import ParslError
from parsl_repro.events import EventSink
from parsl_repro.monitoring.engine import StoreDirectoryMissing, make_engine
from parsl_repro.monitoring.results import ResultReads
from parsl_repro.monitoring.schema import SchemaTooNew, ensure_schema
from parsl_repro.monitoring.spool import Spool
from parsl_repro.monitoring.writer import StoreSink
from parsl_repro.utils import redact_secrets

__all__ = ["ProvenanceStore", "StoreSink", "StoreUnavailable", "redact", "replay_spool"]

redact = redact_secrets
"""``parsl_repro.utils.redact_secrets``, under the name the API reference gives it here."""


class StoreUnavailable(ParslError):
    """The provenance database cannot be reached or opened."""

    def __init__(self, url: str, cause: BaseException) -> None:
        super().__init__(url, cause)
        self.url = url
        self.cause = cause

    def __str__(self) -> str:
        advice = ("Create that directory, or choose another store with Config(provenance=URL)"
                  if isinstance(self.cause, StoreDirectoryMissing) else
                  "Check that the database is running and reachable, or choose another store with "
                  "Config(provenance=URL)")
        return (f"Cannot open the provenance store at {redact_secrets(self.url)}: {type(self.cause).__name__}: "
                f"{self.cause}. {advice}, or switch recording off with Config(provenance=False).")


class ProvenanceStore(ResultReads):
    """One database of runs. ``open()`` it, hand ``sink()`` to the kernel (whose first event, ``RunStarted``,
    writes the run's row), ``close()``."""

    def __init__(self, url: str, *, spool_dir: str | None = None, initialize_logging: bool | Any = True) -> None:
        self.url = url
        self.spool_dir = spool_dir
        self.initialize_logging = initialize_logging  # the writer process's log, as Config's field
        self.engine: Engine | None = None
        self._sink: EventSink | None = None

    def open(self) -> ProvenanceStore:
        """Connect and make sure the schema is current; raise ``StoreUnavailable`` or ``SchemaTooNew``."""
        try:
            engine = make_engine(self.url, writer=True)
        except ModuleNotFoundError as e:
            missing = RuntimeError(f"the database driver {e.name!r} is not installed "
                                   f"(for PostgreSQL: pip install -e '.[monitoring]')")
            raise StoreUnavailable(self.url, missing) from e
        except Exception as e:
            raise StoreUnavailable(self.url, e) from e
        try:
            ensure_schema(engine, redact_secrets(self.url))
        except SchemaTooNew:
            engine.dispose()
            raise
        except Exception as e:
            engine.dispose()
            raise StoreUnavailable(self.url, e) from e
        self.engine = engine
        return self

    def sink(self, run_id: str) -> EventSink:
        """The event sink for this run: a writer thread in this process. (A run's kernel writes
        through a writer process instead: ``parsl_repro.monitoring.shipping.RunStore``.)"""
        assert self.engine is not None
        self._sink = StoreSink(self, run_id)
        return self._sink

    def close(self) -> None:
        """Write everything queued, stop the writer and release the database. Safe to call twice."""
        if self._sink is not None:
            self._sink.close()
        if self.engine is not None:
            self.engine.dispose()


def replay_spool(url: str, path: str) -> int:
    """Write a spool file left behind by a run whose database was unreachable to the end, then
    delete it. Returns the number of events written. The file is this project's own (made
    owner-only by the run that wrote it)."""
    store = ProvenanceStore(url).open()
    try:
        engine = store.engine
        assert engine is not None
        return Spool(path).replay(lambda rows: rows.commit(engine))
    finally:
        store.close()
