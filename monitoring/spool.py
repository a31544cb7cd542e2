"""Batches kept on disk while the database is unreachable: ``<run dir>/provenance-spool-<run id>.pickle``.

The writer appends each batch it cannot write, in order, to an owner-only file of its own, up
to ``SPOOL_LIMIT_BYTES`` (beyond it, the writer counts the batch as lost and says so), and
replays the file once the database answers again. A file left behind when a run ends is written
by ``parsl-repro spool PATH`` (``parsl_repro.monitoring.store.replay_spool``).
"""
from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable, Iterator

from parsl_repro.monitoring.rows import BatchRows

SPOOL_LIMIT_BYTES = 512 * 1024 * 1024


class Spool:
    """One run's spool file: batches in the order they were kept, each a length and a pickle."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.count = 0  # events kept
        self.size = 0  # bytes kept
        self.replayed = 0  # batches already written back, so a replay interrupted midway is not repeated
        self._next_try = 0.0
        self._delay = 0.5

    @classmethod
    def of_run(cls, directory: str, run_id: str) -> Spool:
        """The spool file of run ``run_id`` in ``directory`` (its run directory)."""
        return cls(os.path.join(directory, f"provenance-spool-{run_id}.pickle"))

    @property
    def pending(self) -> bool:
        return self.count > 0

    def append(self, rows: BatchRows) -> bool:
        """Keep ``rows`` at the end of the file; False (and nothing written) when the file is full."""
        data = pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)  # plain values only: strings, numbers, times
        if self.size + len(data) > SPOOL_LIMIT_BYTES:
            return False
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as f:
            f.write(len(data).to_bytes(8, "big"))
            f.write(data)
        self.count += rows.size
        self.size += len(data)
        return True

    def batches(self) -> Iterator[BatchRows]:
        """The kept batches, in order."""
        # our own file, written by this process or by a run of this user: not data from a peer
        with open(self.path, "rb") as f:
            while header := f.read(8):
                yield pickle.loads(f.read(int.from_bytes(header, "big")))

    def replay(self, write: Callable[[BatchRows], None]) -> int:
        """Write the batches not yet written back with ``write`` (one transaction each), in order,
        then delete the file; return how many events they held. When ``write`` raises, the file
        stays and the next replay goes on from the batch that failed."""
        written = 0
        for index, rows in enumerate(self.batches()):
            if index < self.replayed:
                continue
            write(rows)
            self.replayed += 1
            written += rows.size
        self.clear()
        return written

    def clear(self) -> None:
        """Delete the file: everything in it is written."""
        os.unlink(self.path)
        self.count = self.size = self.replayed = 0
        self._delay = 0.5

    def due(self) -> bool:
        """Whether the backoff since the last failed replay has passed."""
        return time.monotonic() >= self._next_try

    def backoff(self) -> None:
        """A replay failed: wait twice as long before the next (at most 10 s)."""
        self._next_try = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, 10.0)
