"""protocol.FrameStream: the executor's link to its interchange (a socket pair), by itself."""
from __future__ import annotations

import random
import select
import socket
import threading

import pytest

from parsl_repro.executors.high_throughput.protocol import FrameStream


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield FrameStream(a), FrameStream(b), a, b
    a.close()
    b.close()


def test_messages_arrive_whole_and_in_order_while_both_sides_write(pair):
    """Thousands of messages of random shapes, and one batch of 100,000 frames (about 30 MB, far
    more than the socket buffer), cross while the reader is busy: none lost, split or reordered."""
    left, right, _, _ = pair
    rng = random.Random(7)
    messages = [[bytes([i % 256]) * rng.randint(0, 5000) for _ in range(rng.randint(1, 40))] for i in range(2000)]
    batch = [b"TASKS"] + [b"x" * 300 for _ in range(100_000)]
    received: list[list[bytes]] = []

    def read_all() -> None:
        while len(received) < len(messages) + 1:
            select.select([right.fd], [], [], 1)
            received.extend(right.receive())

    reader = threading.Thread(target=read_all)
    reader.start()
    for message in messages:
        left.send(message)
    left.send(batch)
    while left.pending:
        select.select([], [left.fd], [], 1)
        left.flush()
    reader.join(60)
    assert received[:-1] == messages and received[-1] == batch


def test_what_arrived_before_the_other_end_closed_is_read_then_end_of_file(pair):
    left, right, a, _ = pair
    left.send([b"one", b"x" * 10])
    left.send([b"two"])
    a.close()
    assert right.receive() == [[b"one", b"x" * 10], [b"two"]]
    with pytest.raises(EOFError):
        right.receive()


def test_writing_to_an_end_nobody_reads_is_dropped_quietly(pair):
    left, _, _, b = pair
    b.close()
    left.send([b"x" * 1_000_000])  # more than the buffer: the rest would wait for room for ever
    left.send([b"y"])
    assert left.closed and not left.pending
