"""parsl_repro.multiprocessing: the spawn/fork contexts and ending a helper process for certain."""
from __future__ import annotations

import logging
import os
import signal
import time

import psutil
import pytest

from parsl_repro.multiprocessing import (
    ForkContext,
    ForkProcess,
    SpawnContext,
    SpawnEvent,
    SpawnProcess,
    SpawnQueue,
    join_terminate_close_proc,
)


def _put_pid(q) -> None:
    q.put(os.getpid())


def _spin() -> None:
    while True:
        time.sleep(0.01)


def _spin_ignoring_sigterm(ready, got_sigterm) -> None:
    def note(signum, frame):
        got_sigterm.set()
    signal.signal(signal.SIGTERM, note)
    ready.set()
    while True:
        time.sleep(0.01)


def test_contexts_use_the_start_method_their_name_says():
    assert SpawnContext.get_start_method() == "spawn"
    assert ForkContext.get_start_method() == "fork"
    q = SpawnQueue()
    for make in (SpawnProcess, ForkProcess):
        p = make(target=_put_pid, args=(q,))
        p.start()
        assert q.get(timeout=30) == p.pid != os.getpid()
        join_terminate_close_proc(p, timeout=10)


def test_a_process_that_already_exited_is_joined_and_closed():
    p = SpawnProcess(target=_put_pid, args=(SpawnQueue(),))
    p.start()
    p.join()
    join_terminate_close_proc(p)
    with pytest.raises(ValueError):
        p.exitcode  # noqa: B018  (a closed process refuses every attribute)


def test_a_hung_process_is_terminated_after_the_join_timeout(caplog):
    p = SpawnProcess(target=_spin)
    p.start()
    pid = p.pid
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="parsl_repro.multiprocessing"):
        join_terminate_close_proc(p, timeout=1)
    assert 1 <= time.monotonic() - started < 10
    assert not psutil.pid_exists(pid)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "SIGTERM" in messages and "SIGKILL" not in messages  # SIGTERM was enough


def test_a_process_ignoring_sigterm_is_killed_and_saw_the_sigterm_first(caplog):
    ready, got_sigterm = SpawnEvent(), SpawnEvent()
    p = SpawnProcess(target=_spin_ignoring_sigterm, args=(ready, got_sigterm))
    p.start()
    assert ready.wait(30)
    pid = p.pid
    with caplog.at_level(logging.ERROR, logger="parsl_repro.multiprocessing"):
        join_terminate_close_proc(p, timeout=1)
    assert got_sigterm.is_set(), "SIGTERM comes before SIGKILL"
    assert not psutil.pid_exists(pid)
    assert "SIGKILL" in " ".join(r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError):
        p.is_alive()
