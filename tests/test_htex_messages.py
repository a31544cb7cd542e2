"""The typed messages between the HTEX executor and its interchange, and who decides pool activity.

No worker pools and no kernel: the messages by themselves, the interchange driven by hand over a
socket pair, the executor's link and result handler against a scripted interchange.
"""
from __future__ import annotations

import ast
import dataclasses
import pathlib
import select
import socket
import threading
import time
from concurrent.futures import Future
from types import SimpleNamespace

import pytest

import parsl_repro
from parsl_repro.events import NodeSeen, RecordingSink, TryPlaced
from parsl_repro.executors.errors import BadStateException, ExecutionStopped
from parsl_repro.executors.high_throughput import messages as m
from parsl_repro.executors.high_throughput import protocol as p
from parsl_repro.executors.high_throughput.errors import CommandFailed, ManagerLost, WorkerLost
from parsl_repro.executors.high_throughput.interchange import Interchange
from parsl_repro.executors.high_throughput.link import InterchangeLink
from parsl_repro.executors.high_throughput.results import ResultHandler
from parsl_repro.serialize import serialize

SAMPLE_REPLIES = {
    m.Command.CONNECTED_MANAGERS: m.ConnectedManagersReply([m.PoolInfo(
        manager="pool-1", block_id="0", hostname="node1", worker_count=2, tasks=1, active=True, draining=False,
        idle_duration=0.0, python_version="3.11.7", parsl_version="2026.1", pid=4321)]),
    m.Command.MANAGERS_PACKAGES: m.ManagersPackagesReply({"pool-1": {"parsl_repro": "2026.1"}}),
    m.Command.REGISTERED_BLOCKS: m.RegisteredBlocksReply(["0", "1"]),
    m.Command.WORKER_COUNT: m.WorkerCountReply(4),
    m.Command.OUTSTANDING: m.OutstandingReply(7),
    m.Command.WORKER_PORT: m.WorkerPortReply(54321),
    m.Command.HOLD_BLOCK: m.HoldBlockReply("1", 2),
    m.Command.HOLD_MANAGER: m.HoldManagerReply("pool-1", True),
}


def _through_a_frame_stream(frames: list[bytes]) -> list[bytes]:
    ours, theirs = socket.socketpair()
    try:
        sender, receiver = p.FrameStream(ours), p.FrameStream(theirs)
        sender.send(frames)
        select.select([theirs], [], [], 5)
        [received] = receiver.receive()
        return received
    finally:
        ours.close()
        theirs.close()


# --- the messages ---------------------------------------------------------------------------------------------
def test_every_command_has_its_own_reply_type():
    assert set(m.REPLY_TYPES) == set(m.Command) == set(SAMPLE_REPLIES)
    assert len(set(m.REPLY_TYPES.values())) == len(m.Command)
    for command, reply in SAMPLE_REPLIES.items():
        assert command.reply_type is type(reply)


@pytest.mark.parametrize("command", list(m.Command))
def test_each_command_and_its_reply_round_trip_through_the_frame_encoding(command):
    request = m.CommandRequest(command, "target")
    reply = SAMPLE_REPLIES[command]
    tag, request_frame, reply_frame = _through_a_frame_stream([p.COMMAND, m.encode(request), m.encode(reply)])
    assert tag == p.COMMAND
    assert m.decode(request_frame) == request
    assert m.decode(reply_frame) == reply


def test_replies_give_parsls_shapes():
    managers = SAMPLE_REPLIES[m.Command.CONNECTED_MANAGERS].value
    assert managers == [{"manager": "pool-1", "block_id": "0", "hostname": "node1", "worker_count": 2, "tasks": 1,
                         "active": True, "draining": False, "idle_duration": 0.0, "python_version": "3.11.7",
                         "parsl_version": "2026.1", "pid": 4321}]
    assert SAMPLE_REPLIES[m.Command.WORKER_PORT].value == 54321
    assert m.CommandFailedReply(None, "ValueError: no").value == {"error": "ValueError: no"}


@pytest.mark.parametrize("kind", list(m.PoolEventKind))
def test_pool_events_round_trip_and_say_whether_the_pool_is_still_connected(kind):
    event = m.PoolEvent(kind, "pool-1", 1700000000.5, "node1", "0", 2, 8, 16 << 30, "3.11.7", reason="why")
    [_, frame] = _through_a_frame_stream([p.EVENTS, m.encode(event)])
    assert m.decode(frame) == event
    assert event.active == (kind in (m.PoolEventKind.REGISTERED, m.PoolEventKind.BUSY, m.PoolEventKind.IDLE))


def test_a_lost_task_report_becomes_the_error_its_future_fails_with():
    worker = m.decode(m.encode(m.TaskLost(m.LostKind.WORKER, "pool-1", "node1", "0", worker=1, pid=99, exitcode=-9)))
    pool = m.decode(m.encode(m.TaskLost(m.LostKind.MANAGER, "pool-1", "node1", "0", reason="no heartbeat for 9 s")))
    assert isinstance(worker.exception(), WorkerLost) and "killed by signal 9" in str(worker.exception())
    assert isinstance(pool.exception(), ManagerLost) and "no heartbeat" in str(pool.exception())


def test_malformed_messages_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="unknown message type"):
        m.decode(b'{"type": "Shutdown"}')
    with pytest.raises(TypeError, match="no fields"):
        m.decode(b'{"type": "WorkerCountReply", "workers": 1, "extra": 2}')
    with pytest.raises(ValueError):
        m.decode(b'{"type": "CommandRequest", "command": "format_disk"}')
    with pytest.raises(ValueError, match="JSON object"):
        m.decode(b"[1, 2]")


# --- the interchange decides pool activity -----------------------------------------------------------------------
@pytest.fixture
def interchange(tmp_path):
    """An Interchange with no pools connected: the test plays the pools, and reads what the
    executor would get on the other end of the socket pair."""
    ours, theirs = socket.socketpair()
    broker = Interchange({"client_fd": theirs.detach(), "cert_dir": None, "logdir": str(tmp_path)})
    broker._send_worker = lambda identity, frames: True  # no real pool behind the identities
    yield broker, p.FrameStream(ours)
    if broker.client.sock.fileno() != -1:  # the test did not stop it
        broker.workers.close(0)
        broker.client.sock.close()
        broker.context.term()
    ours.close()


def _run_tasks(broker: Interchange, identity: bytes, task_ids: range) -> None:
    broker.queue.extend((p.pack_id(i), b"call") for i in task_ids)
    broker._dispatch()
    results = [identity, p.RESULTS]
    for i in task_ids:
        results += [p.pack_id(i), p.OK, p.META.pack(time.time(), 1), b"result"]
    broker._worker_message(results)


def _events_until_closed(stream: p.FrameStream) -> list[m.PoolEvent]:
    events = []
    while True:
        select.select([stream.fd], [], [], 5)
        try:
            messages = stream.receive()
        except EOFError:
            return events
        events += [m.decode(f) for frames in messages if frames[0] == p.EVENTS for f in frames[1:]]


def test_the_interchange_reports_registered_busy_idle_and_stopped(interchange):
    broker, executor_end = interchange
    broker._register(b"pool-1", {"uid": "pool-1", "hostname": "node1", "block_id": "0", "worker_count": 2,
                                 "cpu_count": 8, "total_memory": 16 << 30, "python_version": "3.11.7",
                                 "protocol": p.PROTOCOL_VERSION})
    pool = broker.managers[b"pool-1"]
    _run_tasks(broker, b"pool-1", range(1, 3))
    broker._report_idle()  # idle for less than IDLE_REPORT_AFTER: nothing yet
    pool.idle_since -= 2
    went_idle = pool.idle_since
    broker._report_idle()
    _run_tasks(broker, b"pool-1", range(3, 4))  # busy again, idle again, and then the run ends
    broker._flush()
    broker._stop_pools()
    events = _events_until_closed(executor_end)
    assert [e.kind.value for e in events] == ["registered", "busy", "idle", "busy", "idle", "stopped"]
    assert events[2].time == went_idle, "an idle record is dated when the pool went idle"
    assert {(e.manager, e.hostname, e.block_id, e.cpu_count, e.total_memory) for e in events} == \
        {("pool-1", "node1", "0", 8, 16 << 30)}


def test_a_pool_busy_when_the_interchange_stops_is_stopped_without_an_idle_record(interchange):
    broker, executor_end = interchange
    broker._register(b"pool-1", {"uid": "pool-1", "worker_count": 1, "protocol": p.PROTOCOL_VERSION})
    broker.queue.append((p.pack_id(1), b"call"))
    broker._dispatch()
    broker._stop_pools()
    assert [e.kind.value for e in _events_until_closed(executor_end)] == ["registered", "busy", "stopped"]


def test_commands_are_answered_with_their_reply_type_and_failures_with_a_failed_reply(interchange):
    broker, executor_end = interchange
    broker._register(b"pool-1", {"uid": "pool-1", "block_id": "3", "worker_count": 2, "protocol": p.PROTOCOL_VERSION})
    broker._client_message([p.COMMAND, m.encode(m.CommandRequest(m.Command.HOLD_BLOCK, "3"))])
    broker._client_message([p.COMMAND, m.encode(m.CommandRequest(m.Command.WORKER_COUNT))])
    broker._client_message([p.COMMAND, b'{"type": "CommandRequest", "command": "format_disk"}'])
    select.select([executor_end.fd], [], [], 5)
    replies = [m.decode(frames[1]) for frames in executor_end.receive() if frames[0] == p.COMMAND]
    assert replies[:2] == [m.HoldBlockReply("3", 1), m.WorkerCountReply(0)]
    assert isinstance(replies[2], m.CommandFailedReply) and replies[2].command is None


# --- the executor's side records what it is told, and decides nothing --------------------------------------------
def _fake_executor() -> SimpleNamespace:
    return SimpleNamespace(label="htex", run_id="run-1", tasks={}, event_sink=RecordingSink(), interchange_proc=None,
                           logdir="/nowhere", set_bad_state_and_fail_all=lambda error: None)


def test_results_record_where_tries_ran_and_only_pool_events_become_node_records():
    executor = _fake_executor()
    handler = ResultHandler(executor)
    registered = m.PoolEvent(m.PoolEventKind.REGISTERED, "pool-1", 1.0, "node1", "0", 2, 8, 1 << 30, "3.11.7")
    handler.pool_events([registered])
    future = Future()
    future.parsl_task = (5, 0)
    executor.tasks[1] = future
    lost = Future()
    executor.tasks[2] = lost
    worker_lost = m.encode(m.TaskLost(m.LostKind.WORKER, "pool-1", "node1", "0", worker=0, pid=7, exitcode=-9))
    handler.results([p.RESULTS, b"pool-1", p.pack_id(1), p.OK, p.META.pack(2.0, 77), serialize(49),
                     b"pool-1", p.pack_id(2), p.LOST, p.META.pack(2.0, 7), worker_lost])
    assert future.result() == 49 and isinstance(lost.exception(), WorkerLost)
    assert executor.event_sink.of_type(TryPlaced) == [TryPlaced("run-1", 5, 0, 2.0, "htex", "node1", "0", "pool-1", 77)]
    assert [n.active for n in executor.event_sink.of_type(NodeSeen)] == [True], "results alone change no node record"
    handler.pool_events([dataclasses.replace(registered, kind=m.PoolEventKind.IDLE, time=3.0)])
    handler.unreported_stops()  # the interchange died without saying: the pool is recorded as stopped
    handler.unreported_stops()
    assert [(n.time > 3.0, n.active) for n in executor.event_sink.of_type(NodeSeen)] == \
        [(False, True), (False, True), (True, False)]


class _Recorder:
    """A LinkHandler that keeps what the I/O loop hands it."""

    def __init__(self) -> None:
        self.events: list[m.PoolEvent] = []

    def results(self, frames: list[bytes]) -> None:
        raise AssertionError("no results in this test")

    def pool_events(self, events: list[m.PoolEvent]) -> None:
        self.events += events

    def interchange_died(self) -> bool:
        return False

    def link_closed(self) -> None:
        raise AssertionError("the link closed before STOP")

    def failed(self, error: Exception) -> None:
        raise AssertionError(error)


def test_the_link_asks_typed_commands_answers_parsl_names_and_hears_the_last_pool_events(no_leaks):
    ours, theirs = socket.socketpair()
    link = InterchangeLink(None, p.FrameStream(ours))
    handler, stopping = _Recorder(), threading.Event()
    io = threading.Thread(target=link.serve, args=(handler, stopping, "htex"), name="htex-io-test")
    io.start()
    fake = p.FrameStream(theirs)  # the interchange's end, scripted
    answers = iter([m.WorkerCountReply(3), SAMPLE_REPLIES[m.Command.CONNECTED_MANAGERS],
                    m.CommandFailedReply(m.Command.OUTSTANDING, "RuntimeError: boom"), m.OutstandingReply(1)])

    def interchange() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            select.select([theirs], [], [], 1)
            for frames in fake.receive():
                if frames[0] == p.COMMAND:
                    fake.send([p.COMMAND, m.encode(next(answers))])
                elif frames[0] == p.STOP:
                    stopped = m.PoolEvent(m.PoolEventKind.STOPPED, "pool-1", 9.0, "node1", "0", 2, 8, 1, "3.11.7")
                    fake.send([p.EVENTS, m.encode(stopped)])
                    theirs.close()
                    return

    scripted = threading.Thread(target=interchange, name="fake-interchange")
    scripted.start()
    try:
        assert link.ask(m.Command.WORKER_COUNT, 5) == m.WorkerCountReply(3)
        assert link.run("MANAGERS", 5) == SAMPLE_REPLIES[m.Command.CONNECTED_MANAGERS].value
        with pytest.raises(CommandFailed, match="boom"):
            link.ask(m.Command.OUTSTANDING, 5)
        with pytest.raises(CommandFailed, match="answered worker_port with a OutstandingReply"):
            link.ask(m.Command.WORKER_PORT, 5)  # a reply of the wrong type is refused
        assert link.run("NO_SUCH_COMMAND") == {"error": "unknown command 'NO_SUCH_COMMAND'"}
    finally:
        stopping.set()
        link.wake()
        io.join(10)
        scripted.join(10)
        link.close_pipe()
    assert [e.kind for e in handler.events] == [m.PoolEventKind.STOPPED]


# --- what ends a try because the executor stopped, and the layering ------------------------------------------------
def test_lost_workers_pools_and_a_broken_executor_share_one_base_the_kernel_tests_for():
    from parsl_repro.dataflow.launcher import ended_by_shutdown

    stopped = [WorkerLost(0, "node1"), ManagerLost("pool-1", "node1"), BadStateException(None, "interchange died")]
    assert all(isinstance(e, ExecutionStopped) and ended_by_shutdown(e) for e in stopped)
    assert not ended_by_shutdown(ValueError("the app's own failure"))


def test_parsls_paths_still_name_the_same_classes():
    import parsl_repro.app.errors as app_errors
    import parsl_repro.executors.errors as executor_errors
    import parsl_repro.executors.high_throughput.radio as radio
    import parsl_repro.monitoring.radios.htex as htex
    from parsl_repro.monitoring.radios.base import RadioConfig

    assert app_errors.RemoteExceptionWrapper is executor_errors.RemoteExceptionWrapper
    assert htex.HTEXRadio is radio.HTEXRadio and isinstance(htex.HTEXRadio(), RadioConfig)


def test_executors_import_nothing_from_the_layers_above_them():
    """Not even inside a function: monitoring, app, dataflow and config sit above the executors."""
    above = ("parsl_repro.monitoring", "parsl_repro.app", "parsl_repro.dataflow", "parsl_repro.config")
    root = pathlib.Path(parsl_repro.__file__).parent / "executors"
    found = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.relative_to(root)}: {name}" for name in names if name.startswith(above)]
    assert found == []
