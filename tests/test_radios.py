"""The monitoring radios: each carries messages from a sender to its receiver's queue, and none
unpickles what an unauthenticated peer sent."""
from __future__ import annotations

import datetime
import fractions
import hmac
import logging
import os
import pickle
import queue
import socket
import time
from pathlib import Path

import psutil
import pytest
import sqlalchemy
import zmq

from parsl_repro import curvezmq, python_app
from parsl_repro.events import BlockState, RecordingSink, ResourceSample
from parsl_repro.monitoring import MonitoringHub
from parsl_repro.monitoring.errors import MonitoringRouterStartError
from parsl_repro.monitoring.message_type import MessageType
from parsl_repro.monitoring.radios import codec, htex
from parsl_repro.monitoring.radios.base import RadioConfig
from parsl_repro.monitoring.radios.bridge import RadioBridge
from parsl_repro.monitoring.radios.filesystem import FilesystemRadio
from parsl_repro.monitoring.radios.multiprocessing import MultiprocessingQueueRadio
from parsl_repro.monitoring.radios.udp import UDPRadio, bind_address_for
from parsl_repro.monitoring.radios.zmq import ZMQRadio, ZMQRadioSender
from parsl_repro.multiprocessing import SpawnQueue

WHEN = datetime.datetime(2026, 1, 2, 3, 4, 5, 600000)
MESSAGE = (MessageType.RESOURCE_INFO, {"task_id": 3, "timestamp": WHEN, "tags": ("a", 1), "raw": b"\x00\xff"})


class Planted:
    """Unpickling this creates a directory: the proof that a receiver unpickled untrusted bytes."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def _nothing_arrives(q, seconds: float = 1.5) -> bool:
    try:
        q.get(timeout=seconds)
    except queue.Empty:
        return True
    return False


def _listening_addresses(pid: int, kind: str) -> set[str]:
    return {c.laddr.ip for c in psutil.Process(pid).net_connections(kind=kind) if c.laddr}


# --- multiprocessing -------------------------------------------------------------------------------
def test_multiprocessing_radio_puts_messages_on_the_receivers_queue(tmp_path):
    q = SpawnQueue()
    radio = MultiprocessingQueueRadio()
    with pytest.raises(RuntimeError, match="create_receiver"):
        radio.create_sender()
    receiver = radio.create_receiver(run_dir=str(tmp_path), resource_msgs=q)
    radio.create_sender().send(MESSAGE)
    assert q.get(timeout=10) == MESSAGE
    receiver.shutdown()


# --- UDP ------------------------------------------------------------------------------------------------
def test_udp_radio_delivers_signed_messages_and_listens_on_loopback_only(tmp_path):
    q = SpawnQueue()
    radio = UDPRadio(address="localhost", atexit_timeout=0)
    receiver = radio.create_receiver(run_dir=str(tmp_path), resource_msgs=q)
    try:
        assert len(radio.hmac_key) == 64 and radio.port
        assert _listening_addresses(receiver.process.pid, "udp") == {"127.0.0.1"}
        radio.create_sender().send(MESSAGE)
        assert q.get(timeout=10) == MESSAGE
    finally:
        receiver.shutdown()
    with pytest.raises(ValueError):
        receiver.process.exitcode  # noqa: B018  (closed after shutdown)
    assert "hmac_key" not in repr(radio), "the key stays out of reprs (and so out of logs)"


def test_udp_receiver_binds_every_interface_only_for_remote_senders():
    assert bind_address_for("127.0.0.1") == "127.0.0.1"
    assert bind_address_for("localhost") == "127.0.0.1"
    assert bind_address_for("192.0.2.10") == "0.0.0.0"


def test_udp_receiver_checks_the_hmac_before_unpickling(tmp_path):
    q = SpawnQueue()
    radio = UDPRadio(address="127.0.0.1", atexit_timeout=0)
    receiver = radio.create_receiver(run_dir=str(tmp_path), resource_msgs=q)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        forged_target = tmp_path / "forged"
        data = pickle.dumps(Planted(str(forged_target)))
        wrong_key = bytes(64)
        sock.sendto(hmac.digest(wrong_key, data, "sha512") + data, (radio.address, radio.port))
        sock.sendto(b"short", (radio.address, radio.port))
        assert _nothing_arrives(q)
        assert not forged_target.exists(), "a datagram with a wrong HMAC was unpickled"
        assert receiver.process.is_alive()

        # control: the same payload signed with the run's key is unpickled, so the check above means something
        signed_target = tmp_path / "signed"
        data = pickle.dumps(Planted(str(signed_target)))
        sock.sendto(hmac.digest(radio.hmac_key, data, "sha512") + data, (radio.address, radio.port))
        assert q.get(timeout=10) is None and signed_target.is_dir()
    finally:
        sock.close()
        receiver.shutdown()
    log = (tmp_path / "monitoring_udp_router.log").read_text()
    assert "HMAC does not match" in log and "too short" in log and log.count("ERROR") == 2


def test_udp_sender_with_another_digest_is_refused(tmp_path):
    q = SpawnQueue()
    radio = UDPRadio(address="localhost", atexit_timeout=0)
    receiver = radio.create_receiver(run_dir=str(tmp_path), resource_msgs=q)
    try:
        radio.hmac_digest = "sha3_224"
        radio.create_sender().send(MESSAGE)
        assert _nothing_arrives(q)
    finally:
        receiver.shutdown()
    assert "HMAC does not match" in (tmp_path / "monitoring_udp_router.log").read_text()


def test_udp_receiver_that_cannot_bind_fails_to_start_with_the_reason(tmp_path):
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        radio = UDPRadio(address="127.0.0.1", port=taken.getsockname()[1])
        with pytest.raises(MonitoringRouterStartError, match="could not listen"):
            radio.create_receiver(run_dir=str(tmp_path), resource_msgs=SpawnQueue())
    finally:
        taken.close()


# --- zmq --------------------------------------------------------------------------------------------
def test_zmq_radio_binds_loopback_by_default_and_decodes_without_pickle(tmp_path):
    q = SpawnQueue()
    radio = ZMQRadio()
    receiver = radio.create_receiver(run_dir=str(tmp_path), resource_msgs=q)
    sender = radio.create_sender()
    context = zmq.Context()
    raw = context.socket(zmq.DEALER)
    try:
        assert _listening_addresses(receiver.process.pid, "tcp") <= {"127.0.0.1", "::ffff:127.0.0.1"}
        forged_target = tmp_path / "forged"
        raw.connect(f"tcp://127.0.0.1:{radio.hub_zmq_port}")
        raw.send(pickle.dumps((MessageType.TASK_INFO, Planted(str(forged_target)))))
        raw.send(b"fuzz\r\n")
        sender.send(MESSAGE)
        assert q.get(timeout=10) == MESSAGE  # only the well-formed message arrives
        assert _nothing_arrives(q, 0.5)
        assert not forged_target.exists(), "an unauthenticated zmq message was unpickled"
        with pytest.raises(TypeError, match="unauthenticated"):
            sender.send((MessageType.TASK_INFO, {"value": fractions.Fraction(1, 3)}))
    finally:
        raw.close(linger=0)
        context.term()
        sender.close()
        receiver.shutdown()
    assert (tmp_path / "monitoring_zmq_router.log").read_text().count("Dropped a message") == 2


def test_zmq_radio_with_certificates_admits_only_key_holders(tmp_path):
    cert_dir = curvezmq.create_certificates(tmp_path)
    q = SpawnQueue()
    radio = ZMQRadio(cert_dir=cert_dir)
    receiver = radio.create_receiver(run_dir=str(tmp_path), resource_msgs=q)
    keyless = ZMQRadioSender("127.0.0.1", radio.hub_zmq_port, cert_dir=None, timeout=1)
    sender = radio.create_sender()
    try:
        keyless.send(MESSAGE)
        assert _nothing_arrives(q)
        rich = (MessageType.TASK_INFO, {"share": fractions.Fraction(1, 3)})  # any picklable value, once authenticated
        sender.send(rich)
        assert q.get(timeout=10) == rich
    finally:
        keyless.close(linger_ms=0)
        sender.close()
        receiver.shutdown()


def test_codec_round_trips_monitoring_values_and_rejects_anything_else():
    message = (MessageType.NODE_INFO, {"when": WHEN, "day": WHEN.date(), "took": datetime.timedelta(seconds=1.5),
                                       1: [None, True, 2.5, "x", {"nested": (1, 2)}], ("k", 2): frozenset({3}),
                                       "s": {4}})
    assert codec.decode(codec.encode(message)) == message
    with pytest.raises(TypeError):
        codec.encode(object())
    for bad in (pickle.dumps(MESSAGE), b'{"!eval": "1"}', b'{"!MessageType": "NOPE"}', b'{"!dict": [[[1], 2]]}',
                b"\xff\xfe"):
        with pytest.raises(ValueError):
            codec.decode(bad)


# --- filesystem -----------------------------------------------------------------------------------------
def test_filesystem_radio_delivers_through_a_private_directory(tmp_path):
    q = SpawnQueue()
    radio = FilesystemRadio()
    receiver = radio.create_receiver(run_dir=str(tmp_path), resource_msgs=q)
    try:
        radio.create_sender().send(MESSAGE)
        assert q.get(timeout=10) == MESSAGE
        base = tmp_path / "monitor-fs-radio"
        assert base.stat().st_mode & 0o777 == 0o700
        assert list((base / "new").iterdir()) == [] and list((base / "tmp").iterdir()) == []
    finally:
        receiver.shutdown()


@pytest.mark.skipif(os.getuid() != 0, reason="making a file of another user needs root")
def test_filesystem_receiver_removes_unread_what_another_user_or_a_link_put_there(tmp_path):
    q = SpawnQueue()
    radio = FilesystemRadio()
    receiver = radio.create_receiver(run_dir=str(tmp_path), resource_msgs=q)
    new = tmp_path / "monitor-fs-radio" / "new"
    forged_target = tmp_path / "forged"
    try:
        foreign = new / "foreign"
        foreign.write_bytes(pickle.dumps(Planted(str(forged_target))))
        os.chown(foreign, 65534, 65534)
        outside = tmp_path / "outside"
        outside.write_bytes(pickle.dumps(Planted(str(forged_target))))
        (new / "link").symlink_to(outside)
        deadline = time.monotonic() + 10
        while any(new.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(new.iterdir())
        assert _nothing_arrives(q, 0.5) and not forged_target.exists()
    finally:
        receiver.shutdown()
    assert (tmp_path / "monitoring_filesystem_radio.log").read_text().count("unread") == 2


def test_filesystem_radio_refuses_a_directory_others_can_write(tmp_path):
    (tmp_path / "monitor-fs-radio").mkdir(mode=0o777)
    os.chmod(tmp_path / "monitor-fs-radio", 0o777)
    with pytest.raises(MonitoringRouterStartError, match="private"):
        FilesystemRadio().create_receiver(run_dir=str(tmp_path), resource_msgs=SpawnQueue())
    with pytest.raises(PermissionError):
        FilesystemRadio(run_dir=str(tmp_path)).create_sender()


# --- HTEX ---------------------------------------------------------------------------------------------
def test_htex_sender_uses_the_installed_result_channel_and_says_when_there_is_none(caplog):
    radio = htex.HTEXRadio()
    assert isinstance(radio, RadioConfig)
    sent: list[bytes] = []
    htex.set_result_channel(sent.append)
    try:
        radio.create_sender().send(MESSAGE)
    finally:
        htex.set_result_channel(None)
    assert pickle.loads(sent[0]) == {"type": "monitoring", "payload": MESSAGE}
    with caplog.at_level(logging.ERROR):
        radio.create_sender().send(MESSAGE)
    assert "No HTEX result channel" in caplog.text and len(sent) == 1


# --- into the store -----------------------------------------------------------------------------------
RESOURCE = {"run_id": "someone-elses-run", "task_id": 0, "try_id": 0, "timestamp": WHEN,
            "resource_monitoring_interval": 1.0, "psutil_process_pid": 4321, "psutil_process_time_user": 1.5,
            "psutil_process_time_system": 0.25, "psutil_process_memory_resident": 1000,
            "psutil_process_memory_virtual": 2000, "psutil_process_memory_percent": 0.5,
            "psutil_process_disk_read": 10, "psutil_process_disk_write": 20, "psutil_process_children_count": 1,
            "psutil_process_status": "running"}


def test_bridge_translates_resource_and_block_messages_for_its_own_run(caplog):
    sink = RecordingSink()
    bridge = RadioBridge(queue.Queue(), sink, "run-1")
    bridge.handle((MessageType.RESOURCE_INFO, RESOURCE))
    bridge.handle((MessageType.BLOCK_INFO, {"executor_label": "htex", "block_id": 0, "job_id": 77,
                                            "status": "RUNNING", "timestamp": 12.5}))
    bridge.handle((MessageType.TASK_INFO, {"task_id": 1}))
    with caplog.at_level(logging.ERROR):
        bridge.handle((MessageType.RESOURCE_INFO, {"task_id": "x"}))
        bridge.handle("not a pair")
    assert sink.events == [
        ResourceSample("run-1", 0, 0, WHEN.timestamp(), 1.0, 4321, 1.5, 0.25, 1000, 2000, 0.5, 10, 20, 1, "running"),
        BlockState("run-1", "htex", "0", 12.5, "RUNNING", "77")]
    assert (bridge.translated, bridge.rejected) == (2, 2)
    assert caplog.text.count("Radio message not recorded") == 2


@python_app
def _double(x):
    return 2 * x


def test_resource_message_sent_over_udp_lands_in_the_run_store(load):
    kernel = load(monitoring=MonitoringHub(resource_monitoring_interval=0))
    assert _double(4).result() == 8
    q = SpawnQueue()
    radio = UDPRadio(address="localhost", atexit_timeout=1)
    receiver = radio.create_receiver(run_dir=kernel.run_dir, resource_msgs=q)
    bridge = RadioBridge(q, kernel.event_sink, kernel.run_id).start()
    try:
        radio.create_sender().send((MessageType.RESOURCE_INFO, RESOURCE))
    finally:
        receiver.shutdown()
        bridge.close()
    kernel.cleanup()
    assert bridge.translated == 1
    engine = sqlalchemy.create_engine(kernel.store.url)
    with engine.connect() as conn:
        rows = conn.execute(sqlalchemy.text("SELECT run_id, task_id, psutil_process_pid, psutil_process_status "
                                            "FROM resource")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [(kernel.run_id, 0, 4321, "running")]
    assert Path(kernel.run_dir, "monitoring_udp_router.log").exists()
