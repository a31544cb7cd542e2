"""parsl_repro.curvezmq: only holders of the run's keys get messages through, and the keys stay private."""
from __future__ import annotations

import os
import stat
import threading

import pytest
import zmq

from parsl_repro import curvezmq

LOOPBACK = "tcp://127.0.0.1"
SILENCE_MS = 300  # how long "nothing arrives" is waited for


@pytest.fixture
def cert_dir(tmp_path):
    return curvezmq.create_certificates(tmp_path)


@pytest.fixture
def server(cert_dir):
    ctx = curvezmq.ServerContext(cert_dir)
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.RCVTIMEO, SILENCE_MS)
    sock.setsockopt(zmq.LINGER, 0)
    port = sock.bind_to_random_port(LOOPBACK)
    yield sock, port
    ctx.destroy(linger=0)


@pytest.fixture
def raw_ctx():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def _pusher(ctx, port, public=None, secret=None, server_key=None):
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 0)
    if public is not None:
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
        sock.setsockopt(zmq.CURVE_SERVERKEY, server_key)
    sock.connect(f"{LOOPBACK}:{port}")
    return sock


def test_certificates_are_owner_only_even_with_a_permissive_umask(tmp_path):
    old_umask = os.umask(0)
    try:
        cert_dir = curvezmq.create_certificates(tmp_path / "run")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(cert_dir).st_mode) == 0o700
    names = sorted(os.listdir(cert_dir))
    assert names == ["client.key", "client.key_secret", "server.key", "server.key_secret"]
    for name in names:
        assert stat.S_IMODE(os.stat(os.path.join(cert_dir, name)).st_mode) == 0o600, name


def test_each_run_gets_new_keys(tmp_path):
    first = curvezmq._load_certificate(curvezmq.create_certificates(tmp_path / "a"), "client")
    second = curvezmq._load_certificate(curvezmq.create_certificates(tmp_path / "b"), "client")
    assert first != second


def test_existing_directory_others_can_enter_is_refused(tmp_path):
    loose = tmp_path / "certificates"
    loose.mkdir()
    loose.chmod(0o755)
    with pytest.raises(PermissionError, match="not private"):
        curvezmq.create_certificates(tmp_path)
    assert os.listdir(loose) == []


def test_sockets_refuse_keys_in_a_directory_others_can_read(cert_dir):
    os.chmod(cert_dir, 0o750)
    ctx = curvezmq.ClientContext(cert_dir)
    try:
        with pytest.raises(OSError, match="must be private"):
            ctx.socket(zmq.DEALER)
    finally:
        ctx.destroy()


@pytest.mark.parametrize("encrypted", [True, False])
def test_round_trip(tmp_path, encrypted):
    cert_dir = curvezmq.create_certificates(tmp_path) if encrypted else None
    with curvezmq.ServerContext(cert_dir) as server_ctx, curvezmq.ClientContext(cert_dir) as client_ctx:
        assert server_ctx.encrypted is encrypted and client_ctx.encrypted is encrypted
        server = server_ctx.socket(zmq.REP)
        server.setsockopt(zmq.RCVTIMEO, 5000)
        port = server.bind_to_random_port(LOOPBACK)
        client = client_ctx.socket(zmq.REQ)
        client.setsockopt(zmq.RCVTIMEO, 5000)
        client.connect(f"{LOOPBACK}:{port}")
        client.send(b"task")
        assert server.recv() == b"task"
        server.send(b"result")
        assert client.recv() == b"result"
        assert client.getsockopt(zmq.MECHANISM) == (zmq.CURVE if encrypted else zmq.NULL)


def test_client_with_unknown_key_or_no_encryption_gets_nothing_through(server, cert_dir, raw_ctx):
    sock, port = server
    good_public, good_secret = curvezmq._load_certificate(cert_dir, "client")
    server_key, _ = curvezmq._load_certificate(cert_dir, "server")
    stranger_public, stranger_secret = zmq.curve_keypair()

    stranger = _pusher(raw_ctx, port, stranger_public, stranger_secret, server_key)
    stranger.send(b"from a stranger")
    plain = _pusher(raw_ctx, port)
    plain.send(b"in plain text")
    with pytest.raises(zmq.Again):
        sock.recv()

    member = _pusher(raw_ctx, port, good_public, good_secret, server_key)
    member.send(b"from the run")
    assert sock.recv() == b"from the run"
    with pytest.raises(zmq.Again):  # the rejected messages never arrive later either
        sock.recv()


def test_client_talking_to_an_impostor_server_sends_nothing(cert_dir, raw_ctx):
    impostor = raw_ctx.socket(zmq.PULL)
    impostor.setsockopt(zmq.LINGER, 0)
    impostor.setsockopt(zmq.RCVTIMEO, SILENCE_MS)
    _, impostor_secret = zmq.curve_keypair()
    impostor.setsockopt(zmq.CURVE_SECRETKEY, impostor_secret)
    impostor.setsockopt(zmq.CURVE_SERVER, True)
    port = impostor.bind_to_random_port(LOOPBACK)
    with curvezmq.ClientContext(cert_dir) as ctx:
        client = ctx.socket(zmq.PUSH)
        client.connect(f"{LOOPBACK}:{port}")
        client.send(b"secret data")
        with pytest.raises(zmq.Again):
            impostor.recv()


@pytest.mark.parametrize("finish", ["term", "destroy"])
def test_server_context_stops_its_authenticator(cert_dir, finish):
    before = set(threading.enumerate())
    ctx = curvezmq.ServerContext(cert_dir)
    auth_thread = ctx.auth_thread
    assert auth_thread is not None and auth_thread.is_alive()
    assert len(set(threading.enumerate()) - before) == 1
    getattr(ctx, finish)()
    assert ctx.closed and ctx.auth_thread is None and not auth_thread.is_alive()
    assert set(threading.enumerate()) - before == set()


def test_plain_server_context_has_no_authenticator():
    ctx = curvezmq.ServerContext(None)
    assert ctx.auth_thread is None and not ctx.encrypted
    sock = ctx.socket(zmq.ROUTER)
    ctx.destroy()
    assert sock.closed and ctx.closed
