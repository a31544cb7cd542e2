"""The queue consumers that feed the store stop only once everything put before the stop is taken.

The race these tests pin down: the consumer's timed wait on an empty queue ends with ``Empty``; before
it looks at its stop flag, the producer puts its last events and sets the flag. A consumer that
then stops abandons those events, and a whole run's record goes missing. The queues below make that
interleaving happen every time: their timed ``get`` runs the producer's last steps just before it
raises ``Empty``."""
from __future__ import annotations

import queue
import threading

from parsl_repro.events import RecordingSink
from parsl_repro.monitoring.batching import batches
from parsl_repro.monitoring.message_type import MessageType
from parsl_repro.monitoring.radios.bridge import RadioBridge


class _ProducerFinishesDuringTheWait(queue.SimpleQueue):
    """A queue whose first timed-out ``get`` lets the producer put ``last`` and set ``stop``."""

    def __init__(self, last: list, stop: threading.Event) -> None:
        self.last, self.stop, self.fired = last, stop, False

    def get(self, block: bool = True, timeout: float | None = None):
        if timeout is not None and not self.fired and super().empty():
            self.fired = True
            for item in self.last:
                self.put(item)
            self.stop.set()
            raise queue.Empty
        return super().get(block, timeout)


def test_batches_takes_events_put_while_its_wait_was_ending():
    stop = threading.Event()
    events = _ProducerFinishesDuringTheWait(list(range(34)), stop)
    taken = [event for batch in batches(events, stop, limit=1000, pace=0) for event in batch]
    assert events.fired
    assert taken == list(range(34))


def test_batches_still_ends_when_stopped_and_empty():
    stop = threading.Event()
    events: queue.SimpleQueue = queue.SimpleQueue()
    events.put("a")
    stop.set()
    assert list(batches(events, stop, limit=10, pace=0)) == [["a"]]


class _BlockMessages(queue.Queue):
    """A queue whose first timed-out ``get`` lets the receiver put its last messages and the owner
    close the bridge (which sets its stop flag) before ``Empty`` is raised."""

    def __init__(self, last: list) -> None:
        super().__init__()
        self.last, self.bridge, self.fired = last, None, False

    def get(self, block: bool = True, timeout: float | None = None):
        if timeout is not None and not self.fired and self.empty():
            self.fired = True
            for item in self.last:
                self.put(item)
            self.bridge._stop.set()
            raise queue.Empty
        return super().get(block, timeout)


def test_the_radio_bridge_handles_messages_put_while_its_wait_was_ending():
    block = {"executor_label": "htex", "block_id": 0, "job_id": 7, "status": "RUNNING", "timestamp": 1.0}
    messages = _BlockMessages([(MessageType.BLOCK_INFO, dict(block, block_id=i)) for i in range(5)])
    sink = RecordingSink()
    bridge = RadioBridge(messages, sink, "run-1")
    messages.bridge = bridge
    bridge.start()
    bridge.close()
    assert messages.fired
    assert [event.block_id for event in sink.events] == ["0", "1", "2", "3", "4"]
