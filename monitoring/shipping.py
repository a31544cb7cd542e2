"""Recording in a separate process, so that writing the database never competes with the run's
own threads for the interpreter lock.

Data flow::

    kernel threads --emit()--> queue --shipper thread--> pipe --> writer process
                                      (events as tuples,          (StoreSink: batches,
                                       pickled in batches)         transactions, spool)

``emit`` only appends to a queue. The shipper thread turns each event into a plain tuple (a
``TaskCreated`` call is rendered to text first: it may hold live objects) and sends batches down
the writer process's standard input. The writer process rebuilds the events and hands them to a
``StoreSink``, which writes them as the in-process writer would. If the submitting script is
killed, the writer still writes everything it received, then exits at the end of its input.

The database URL travels in the first message on the pipe, never on the command line (where
other users could read it). The pipe connects a parent to the child it started, so what arrives
on it is trusted to unpickle.
"""
from __future__ import annotations

import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from typing import IO, Any

from parsl_repro import events as ev
from parsl_repro.events import EventSink
from parsl_repro.monitoring.store import RenderedTask, batches, render

logger = logging.getLogger(__name__)

MAX_BATCH = 5000
WRITER_NICENESS = 10
"""How much lower the writer process's CPU priority is than the run's (os.nice): on a busy
machine it yields to the workflow and catches up when CPUs free, at the latest at cleanup."""
_EVENT_TYPES: tuple[type, ...] = (
    RenderedTask, ev.TaskState, ev.TaskKeyed, ev.AppSeen, ev.TaskResult, ev.FileObserved, ev.RunEnded,
    ev.TryPlaced, ev.BlockState, ev.NodeSeen, ev.ResourceSample)
"""What crosses the pipe, each as (its index here, its fields as a plain tuple)."""
_CODES = {cls: code for code, cls in enumerate(_EVENT_TYPES)}
_HEADER = struct.Struct(">Q")


def _encode(events: list) -> bytes:
    encoded = []
    codes = _CODES
    for event in events:
        if type(event) is ev.TaskCreated:
            event = render(event)
        code = codes.get(type(event))
        if code is not None:
            encoded.append((code, tuple(event)))
    return pickle.dumps(encoded, protocol=pickle.HIGHEST_PROTOCOL)


def _send(pipe: IO[bytes], payload: bytes) -> None:
    pipe.write(_HEADER.pack(len(payload)))
    pipe.write(payload)
    pipe.flush()


def _receive(pipe: IO[bytes]) -> bytes | None:
    header = pipe.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    return pipe.read(_HEADER.unpack(header)[0])


class ProcessSink(EventSink):
    """The kernel's sink for one run, writing through a writer process."""

    def __init__(self, url: str, run_id: str, spool_dir: str | None) -> None:
        self.run_id = run_id
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.emit = self._queue.put  # type: ignore[method-assign]  # the whole hot-path cost
        self._stop = threading.Event()
        self._closed = False
        self.error: BaseException | None = None
        self._process = subprocess.Popen([sys.executable, "-m", "parsl_repro.monitoring.shipping"],
                                         stdin=subprocess.PIPE, close_fds=True)
        assert self._process.stdin is not None
        self._pipe = self._process.stdin
        _send(self._pipe, pickle.dumps({"url": url, "run_id": run_id, "spool_dir": spool_dir}))
        self._thread = threading.Thread(target=self._ship, name=f"provenance-shipper-{run_id[:8]}", daemon=True)
        self._thread.start()

    def emit(self, event: Any) -> None:  # replaced per instance by queue.put in __init__
        self._queue.put(event)

    def _ship(self) -> None:
        for batch in batches(self._queue, self._stop, MAX_BATCH):
            try:
                _send(self._pipe, _encode(batch))
            except Exception as e:  # the writer process died: say so once, keep draining
                if self.error is None:
                    self.error = e
                    logger.error("The provenance writer process is gone (%s); %d events of run %s not recorded",
                                 e, len(batch), self.run_id)

    def close(self) -> None:
        """Send what is queued, let the writer finish, and wait for it. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join()
        try:
            self._pipe.close()
        except OSError:
            pass
        code = self._process.wait()
        if code != 0:
            logger.error("The provenance writer process of run %s exited with status %s", self.run_id, code)


def writer_main(stream: IO[bytes]) -> int:
    """The writer process: read the header, then batches, until the end of the input."""
    from parsl_repro.monitoring.store import ProvenanceStore, StoreSink

    header = _receive(stream)
    if header is None:
        return 2
    try:  # recording is background work: when CPUs are scarce, the workflow goes first
        os.nice(WRITER_NICENESS)
    except OSError:
        pass
    settings = pickle.loads(header)
    store = ProvenanceStore(settings["url"], spool_dir=settings["spool_dir"])
    store.open()
    sink = StoreSink(store, settings["run_id"])
    try:
        while (payload := _receive(stream)) is not None:
            for code, fields in pickle.loads(payload):
                sink.emit(_EVENT_TYPES[code]._make(fields))
    finally:
        sink.close()
        store.close()
    return 1 if sink.dropped or sink.error else 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="parsl_repro provenance writer: %(message)s")
    sys.exit(writer_main(sys.stdin.buffer))
