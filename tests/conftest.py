"""Shared fixtures: a fresh kernel per test with its run directory in tmp_path, and a check that
nothing it started is left running afterwards."""
from __future__ import annotations

import threading
import time

import pytest

import parsl_repro
from parsl_repro.config import Config
from parsl_repro.dataflow.dflow import DataFlowKernelLoader
from parsl_repro.events import RecordingSink
from parsl_repro.executors import ThreadPoolExecutor


def _threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}


@pytest.fixture
def no_leaks():
    """Fails the test if threads it started are still alive shortly after it ends."""
    before = _threads()
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = {t for t in _threads() - before if not t.name.startswith(("pytest_timeout", "Dummy"))}
        if not left:
            return
        time.sleep(0.05)
    pytest.fail(f"threads left running after the test: {sorted(t.name for t in left)}")


@pytest.fixture
def make_config(tmp_path):
    def make(**fields) -> Config:
        fields.setdefault("executors", [ThreadPoolExecutor(max_threads=4)])
        return Config(run_dir=str(tmp_path / "runinfo"), **fields)
    return make


@pytest.fixture
def dfk(make_config, no_leaks, monkeypatch, tmp_path):
    """The loaded kernel (threads), cleaned up after the test; cwd is tmp_path."""
    monkeypatch.chdir(tmp_path)
    kernel = parsl_repro.load(make_config())
    yield kernel
    kernel.cleanup()
    assert DataFlowKernelLoader._dfk is None


@pytest.fixture
def load(make_config, no_leaks, monkeypatch, tmp_path):
    """Load a kernel with the given Config fields (and an optional event sink); cleaned up after."""
    monkeypatch.chdir(tmp_path)
    loaded = []

    def _load(sink: RecordingSink | None = None, **fields):
        config = make_config(**fields)
        if sink is None:
            kernel = parsl_repro.load(config)
        else:
            kernel = parsl_repro.DataFlowKernel(config, event_sink=sink)
            DataFlowKernelLoader._dfk = kernel
        loaded.append(kernel)
        return kernel

    yield _load
    for kernel in loaded:
        kernel.cleanup()
    DataFlowKernelLoader.clear()


@pytest.fixture(scope="module")
def slurm_conf(tmp_path_factory):
    """A real single-node Slurm cluster on ports of its own (scripts/slurm.sh), one per test module."""
    from tests.slurm_server import SlurmCluster

    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    conf = cluster.start()
    yield conf
    cluster.stop()


@pytest.fixture
def slurm(slurm_conf, monkeypatch, tmp_path):
    """SLURM_CONF for this test's Slurm commands (and everything they start); cwd is tmp_path."""
    monkeypatch.setenv("SLURM_CONF", slurm_conf)
    monkeypatch.chdir(tmp_path)
    return slurm_conf


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A real sshd on 127.0.0.1 (scripts/sshd.sh), one per test module: its sshd.json as a dict
    (port, host, root_key, user, user_key, password_file, known_hosts)."""
    from tests.sshd_server import SshServer

    server = SshServer(tmp_path_factory.mktemp("sshd"))
    info = server.start()
    yield info
    server.stop()
