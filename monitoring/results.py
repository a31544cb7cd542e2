"""What the memoizer reads from the store (``parsl_repro.memo.ResultStore``): stored results by
memo key, and which runs and run directories they belong to. ``ProvenanceStore`` has these reads
from ``ResultReads``."""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, select

from parsl_repro.monitoring import models as m
from parsl_repro.task_states import SUCCEEDED_STATES

if TYPE_CHECKING:
    from parsl_repro.memo import StoredResult

EAGER_LIMIT = 64 * 1024
"""The largest stored value ``load_results`` loads at once; larger ones wait for ``read_result``."""


class ResultReads:
    """Reads of earlier runs' results, over ``engine`` (set when the store is opened)."""

    engine: Engine | None

    def _connect(self) -> Connection:
        assert self.engine is not None, "the store is not open"
        return self.engine.connect()

    def load_results(self, run_ids: list[str] | None, *, eager_limit: int = EAGER_LIMIT) -> dict[str, StoredResult]:
        """The memo table: memo key -> stored result, for results produced or reused by ``run_ids``
        (every run when None). Where several runs stored a key, a run in ``run_ids`` wins over
        others, then the newest. Values up to ``eager_limit`` bytes are loaded now; larger ones later."""
        # here, not at the top: parsl_repro.memo loads the memo-key machinery, which the writer
        # process (a ProvenanceStore that never reads results) would otherwise load at its start
        from parsl_repro.memo import StoredResult

        r, t = m.Result, m.Task
        query = select(r.memo_key, r.run_id, r.task_id, r.result_digest, r.serializer, r.size, r.outputs, r.value)
        if run_ids is not None:
            if not run_ids:
                return {}
            succeeded = t.task_status_name.in_(SUCCEEDED_STATES)
            used = select(t.task_hashsum).where(t.run_id.in_(run_ids), succeeded)
            query = query.where(r.memo_key.in_(used)).order_by(r.run_id.in_(run_ids), r.created)
        else:
            query = query.order_by(r.created)
        table: dict[str, StoredResult] = {}
        with self._connect() as conn:
            for row in conn.execute(query):
                outputs = tuple(tuple(pair) for pair in json.loads(row.outputs)) if row.outputs else ()
                value = bytes(row.value) if row.size <= eager_limit else None
                table[row.memo_key] = StoredResult(row.memo_key, row.run_id, row.task_id, row.result_digest,
                                                   row.serializer, value, outputs)  # type: ignore[arg-type]
        return table

    def read_result(self, memo_key: str, run_id: str) -> bytes:
        """The value of a result ``load_results`` left out (``value is None``)."""
        with self._connect() as conn:
            value = conn.execute(select(m.Result.value).where(m.Result.memo_key == memo_key,
                                                              m.Result.run_id == run_id)).scalar_one()
        return bytes(value)

    def run_ids_for_rundirs(self, rundirs: Iterable[str]) -> list[str]:
        """The runs whose per-run directory is one of ``rundirs`` (a checkpoint path's parent)."""
        wanted = [os.path.abspath(d) for d in rundirs]
        if not wanted:
            return []
        with self._connect() as conn:
            return list(conn.execute(select(m.Workflow.run_id).where(m.Workflow.rundir.in_(wanted))).scalars())

    def rundirs_of(self, run_ids: list[str]) -> list[str]:
        """The per-run directories of ``run_ids``."""
        with self._connect() as conn:
            return list(conn.execute(select(m.Workflow.rundir).where(m.Workflow.run_id.in_(run_ids))).scalars())

    def newest_run(self, run_ids: Iterable[str]) -> str | None:
        """The most recently begun of ``run_ids`` that the store knows, or None."""
        wanted = list(run_ids)
        if not wanted:
            return None
        w = m.Workflow
        with self._connect() as conn:
            return conn.execute(select(w.run_id).where(w.run_id.in_(wanted)).order_by(w.time_began.desc())
                                .limit(1)).scalar()
