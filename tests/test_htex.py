"""HighThroughputExecutor end to end: real interchange and worker-pool processes on loopback,
blocks from a real LocalProvider, results and provenance checked in the store."""
from __future__ import annotations

import os
import threading
import time

import psutil
import pytest
from sqlalchemy import text

import parsl_repro
from parsl_repro import bash_app, python_app
from parsl_repro.app.errors import BashExitFailure
from parsl_repro.config import Config
from parsl_repro.executors import HighThroughputExecutor
from parsl_repro.monitoring import MonitoringHub
from parsl_repro.monitoring.engine import default_url, make_engine
from parsl_repro.providers import LocalProvider


def _htex(**fields) -> HighThroughputExecutor:
    provider = fields.pop("provider", None) or LocalProvider(init_blocks=1, min_blocks=0, max_blocks=1)
    fields.setdefault("max_workers_per_node", 2)
    fields.setdefault("heartbeat_period", 1)
    fields.setdefault("heartbeat_threshold", 4)
    return HighThroughputExecutor(label="htex", provider=provider, **fields)


def _descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture
def htex_load(tmp_path, monkeypatch, no_leaks):
    """Load a kernel on an HTEX; after the test, cleanup must leave no process behind."""
    monkeypatch.chdir(tmp_path)
    before = _descendants()
    kernels = []

    def load(executor: HighThroughputExecutor | None = None, **fields) -> parsl_repro.DataFlowKernel:
        fields.setdefault("strategy_period", 0.2)
        kernel = parsl_repro.load(Config(executors=[executor or _htex()], run_dir=str(tmp_path / "runinfo"),
                                         **fields))
        kernels.append(kernel)
        return kernel

    yield load
    for kernel in kernels:
        kernel.cleanup()
    deadline = time.monotonic() + 10
    while _descendants() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [psutil.Process(pid).cmdline() for pid in _descendants() - before if psutil.pid_exists(pid)]
    assert not left, f"processes left after cleanup: {left}"


def _store(tmp_path):
    return make_engine(os.environ.get("PARSL_REPRO_PROVENANCE_URL") or default_url(str(tmp_path / "runinfo")),
                       writer=False)


@python_app
def square(x):
    return x * x


@python_app
def where():
    import os
    return os.getpid(), os.environ["PARSL_WORKER_RANK"], os.environ["PARSL_WORKER_POOL_ID"]


def test_thousands_of_tasks_return_correct_results_from_worker_processes(htex_load):
    kernel = htex_load()
    futures = [square(i) for i in range(3000)]
    assert [f.result(timeout=120) for f in futures] == [i * i for i in range(3000)]
    pids = {f.result()[0] for f in [where() for _ in range(40)]}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # two workers per node
    assert kernel.task_state_counts[parsl_repro.dataflow.states.States.exec_done] == 3040


@python_app
def kill_my_worker_once(marker):
    import os
    import signal
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


def test_a_worker_killed_mid_task_fails_that_try_with_worker_lost_and_the_retry_succeeds(htex_load, tmp_path):
    kernel = htex_load(retries=1)
    assert kill_my_worker_once(str(tmp_path / "killed")).result(timeout=60) == "survived"
    assert square(7).result(timeout=30) == 49  # the pool replaced the worker
    kernel.cleanup()
    with _store(tmp_path).connect() as conn:
        detail = conn.execute(text("SELECT detail FROM status WHERE task_status_name = 'fail_retryable'")).scalar()
    assert detail.startswith("WorkerLost") and "killed by signal 9" in detail


@python_app
def kill_my_manager_once(marker):
    import os
    import signal
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getppid(), signal.SIGKILL)
        import time
        time.sleep(30)
    return "survived"


def test_a_killed_manager_fails_its_tasks_with_manager_lost_and_they_are_retried(htex_load, tmp_path):
    # one failed block must not condemn the executor here (Parsl's default handler would)
    provider = LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1)
    kernel = htex_load(_htex(provider=provider, block_error_handler=False), retries=1)
    worker = where().result(timeout=30)[0]
    assert kill_my_manager_once(str(tmp_path / "killed")).result(timeout=60) == "survived"
    assert not psutil.pid_exists(worker) or psutil.Process(worker).status() == psutil.STATUS_ZOMBIE
    kernel.cleanup()
    with _store(tmp_path).connect() as conn:
        detail = conn.execute(text("SELECT detail FROM status WHERE task_status_name = 'fail_retryable'")).scalar()
        blocks = conn.execute(text("SELECT count(DISTINCT block_id) FROM block")).scalar()
    assert detail.startswith("ManagerLost") and "block 0" in detail
    assert blocks == 2  # the lost block was replaced


@python_app
def sleep_for(seconds):
    import time
    time.sleep(seconds)
    return seconds


def test_a_dead_interchange_fails_outstanding_tasks_fast_with_a_clear_error(htex_load):
    kernel = htex_load()
    executor = kernel.executors["htex"]
    futures = [sleep_for(30) for _ in range(3)]
    time.sleep(1)
    executor.interchange_proc.kill()
    started = time.monotonic()
    for future in futures:
        error = future.exception(timeout=10)
        assert "interchange" in str(error) and "exited" in str(error)
    assert time.monotonic() - started < 5
    with pytest.raises(Exception, match="interchange"):
        square(2).result(timeout=10)


def test_blocks_scale_out_to_max_blocks_under_load_and_back_in_when_idle(htex_load, tmp_path):
    provider = LocalProvider(init_blocks=0, min_blocks=0, max_blocks=2)
    kernel = htex_load(_htex(provider=provider, max_workers_per_node=1), max_idletime=1)
    executor = kernel.executors["htex"]
    futures = [sleep_for(1.5) for _ in range(4)]
    peak = 0
    deadline = time.monotonic() + 30
    while not all(f.done() for f in futures) and time.monotonic() < deadline:
        peak = max(peak, len(executor.connected_managers()))
        time.sleep(0.1)
    assert [f.result() for f in futures] == [1.5] * 4
    assert peak == 2
    deadline = time.monotonic() + 20
    while executor.connected_managers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert executor.connected_managers() == []
    kernel.cleanup()
    with _store(tmp_path).connect() as conn:
        states = conn.execute(text("SELECT block_id, status FROM block ORDER BY timestamp")).all()
        nodes = conn.execute(text("SELECT uid, active FROM node ORDER BY timestamp")).all()
    assert {b for b, _ in states} == {"0", "1"}
    assert {s for _, s in states} >= {"PENDING", "SCALED_IN"} or {s for _, s in states} >= {"PENDING", "CANCELLED"}
    # each pool: registered, busy once it got tasks (idle too, if that lasted a second before it
    # was scaled in), and inactive at the end
    assert len({uid for uid, _ in nodes}) == 2
    for uid in {uid for uid, _ in nodes}:
        history = [bool(active) for u, active in nodes if u == uid]
        assert history[:2] == [True, True] and history[-1] is False, history


def test_node_records_follow_pool_activity_not_every_task(htex_load, tmp_path):
    """A pool's node records: registered, busy, idle (once idle for a second, or when the run
    ends with nothing outstanding) and stopped, as Parsl's monitoring keeps them; a chain of
    quick tasks with gaps shorter than a second adds none."""
    kernel = htex_load()
    value = 0
    for _ in range(100):
        value = square(value + 1).result(timeout=30) and value + 1
    assert value == 100
    kernel.cleanup()
    with _store(tmp_path).connect() as conn:
        rows = conn.execute(text("SELECT active FROM node ORDER BY timestamp")).all()
    assert [bool(active) for (active,) in rows] == [True, True, True, False]  # registered, busy, idle, stopped


@python_app
def burn(cpu_seconds):
    import time
    held = bytearray(32 << 20)  # 32 MiB resident while it computes
    total = 0
    start = time.process_time()
    while time.process_time() - start < cpu_seconds:  # CPU time, however loaded the machine is
        total += sum(range(10_000))
    return total + len(held)


def test_tries_record_host_block_pool_and_pid_and_resource_samples_reach_the_store(htex_load, tmp_path):
    kernel = htex_load(monitoring=MonitoringHub(resource_monitoring_interval=0.2))
    assert burn(1.0).result(timeout=120) > 0
    pid = where().result(timeout=30)[0]
    kernel.cleanup()
    with _store(tmp_path).connect() as conn:
        tries = conn.execute(text('SELECT hostname, block_id, manager, pid, task_try_time_running FROM "try" '
                                  "ORDER BY task_id")).all()
        samples = conn.execute(text("SELECT psutil_process_time_user + psutil_process_time_system, "
                                    "psutil_process_memory_resident FROM resource WHERE task_id = 0 "
                                    "ORDER BY timestamp")).all()
    assert all(t[0] and t[1] == "0" and t[2] and t[3] and t[4] for t in tries)
    assert tries[1][3] == pid
    # sampled every 0.2 s while it ran: CPU time grows from sample to sample, RSS holds the 32 MiB
    assert len(samples) >= 3 and samples[-1][0] > samples[0][0] and samples[-1][0] > 0.4
    assert max(rss for _, rss in samples) > 32 << 20


def test_a_workers_first_task_is_sampled_however_short_then_once_per_interval(htex_load, tmp_path):
    """Workers sample themselves as a task ends, at most once per resource_monitoring_interval
    (30 s by default): a run of quick tasks gets a resource record from each worker's first task,
    as Parsl's always has one, without paying for a sample per task."""
    kernel = htex_load(_htex(max_workers_per_node=1))
    assert [square(i).result(timeout=60) for i in range(20)] == [i * i for i in range(20)]
    kernel.cleanup()
    with _store(tmp_path).connect() as conn:
        sampled = conn.execute(text("SELECT task_id, psutil_process_memory_resident, psutil_process_time_user "
                                    "FROM resource")).all()
    assert [task for task, _, _ in sampled] == [0]
    assert sampled[0][1] > 1 << 20 and sampled[0][2] > 0  # a real process: megabytes, CPU time


def test_runs_are_encrypted_by_default_with_owner_only_keys(htex_load):
    kernel = htex_load()
    executor = kernel.executors["htex"]
    assert square(3).result(timeout=30) == 9
    assert executor.encrypted and executor.cert_dir and os.path.isdir(executor.cert_dir)
    assert os.stat(executor.cert_dir).st_mode & 0o077 == 0
    for name in os.listdir(executor.cert_dir):
        assert os.stat(os.path.join(executor.cert_dir, name)).st_mode & 0o077 == 0


def test_an_unencrypted_run_works_when_asked_for(htex_load):
    kernel = htex_load(_htex(encrypted=False))
    assert square(4).result(timeout=30) == 16
    assert kernel.executors["htex"].cert_dir is None


@python_app
def identity(x):
    return x


def test_an_unpicklable_argument_fails_only_its_task_naming_the_type(htex_load):
    htex_load()
    bad = identity(x for x in range(3))  # neither pickle nor dill can carry a generator
    good = identity(5)
    error = bad.exception(timeout=30)
    assert "generator" in str(error) and "argument 1 of identity" in str(error)
    assert good.result(timeout=30) == 5


@python_app
def gen():
    return (i for i in range(3))


def test_an_unpicklable_return_value_is_named_as_the_return_value_of_its_function(htex_load):
    from parsl_repro.serialize import pack_apply_message
    from parsl_repro.serialize.errors import SerializationError

    kernel = htex_load()
    error = gen().exception(timeout=30)
    text = str(error)
    assert "the return value of gen: object of type generator cannot be serialized" in text
    assert "return plain data (a list instead of a generator" in text
    assert "pass plain data (or a path to it)" not in text and "generators inside the app" not in text
    assert isinstance(error, SerializationError) and error.role == "result" and error.fname == "gen"
    # the same through submit_payload (whose futures hold the worker's RemoteExceptionWrapper, as in
    # Parsl): an apply message, and a named task executor
    executor = kernel.executors["htex"]
    wrapped = executor.submit_payload({}, pack_apply_message(lambda: (i for i in range(3)), (), {}))
    text = str(wrapped.result(timeout=30).get_exception())
    assert "the return value of <lambda>: object of type generator cannot be serialized" in text
    wrapped = executor.submit_payload({"task_executor": {"f": "builtins.memoryview"}}, b"bytes")
    text = str(wrapped.result(timeout=30).get_exception())
    assert "the return value of builtins.memoryview: object of type memoryview cannot be serialized" in text
    assert "pass plain data (or a path to it)" not in text


@bash_app
def exits_three():
    return "echo 'no such sample: S42' >&2; exit 3"


def test_a_failing_bash_app_without_stderr_names_the_block_err_file_its_error_output_went_to(htex_load):
    kernel = htex_load()
    error = exits_three().exception(timeout=30)
    text = str(error)
    scripts = os.path.join(kernel.run_dir, "submit_scripts")
    assert f"exit code 3; it had no stderr= file, so its error output went to the worker's stderr, {scripts}/" in text
    path = text.split(", ")[-1].split(";")[0]
    assert path.endswith(".err") and "no such sample: S42" in open(path).read()
    assert text.endswith(f"{path}; give the app a stderr= file to keep it per task")
    assert isinstance(error, BashExitFailure) and error.stderr_path is None and error.inherited_stderr == path


def test_cleanup_leaves_no_process_or_thread(htex_load):
    kernel = htex_load()
    assert square(2).result(timeout=30) == 4
    executor = kernel.executors["htex"]
    interchange = executor.interchange_proc.pid
    kernel.cleanup()
    assert not psutil.pid_exists(interchange) or psutil.Process(interchange).status() == psutil.STATUS_ZOMBIE
    assert not [t for t in threading.enumerate() if t.name.startswith("htex-io")]
    assert executor.interchange_proc.returncode == 0, "the interchange did not stop cleanly"
    log = open(os.path.join(executor.logdir, "interchange.log")).read()
    assert "Interchange failed" not in log and "Traceback" not in log



# --- Parsl behaviours: worker counts, resource specs, drain, robustness, commands ---------------------------
def test_workers_per_node_is_the_tightest_of_max_workers_cores_memory_and_accelerators():
    provider = LocalProvider(init_blocks=0, max_blocks=0)
    assert HighThroughputExecutor(provider=provider).workers_per_node == 1  # nothing bounds it: Parsl's guess
    assert HighThroughputExecutor(provider=provider, max_workers_per_node=5).workers_per_node == 5
    provider.cores_per_node, provider.mem_per_node = 8, 16
    assert HighThroughputExecutor(provider=provider, max_workers_per_node=16, cores_per_worker=4).workers_per_node == 2
    assert HighThroughputExecutor(provider=provider, max_workers_per_node=16, cores_per_worker=1,
                                  mem_per_worker=16).workers_per_node == 1
    assert HighThroughputExecutor(provider=provider, cores_per_worker=1, mem_per_worker=2,
                                  available_accelerators=3).workers_per_node == 3


def test_resource_specifications_accept_only_a_numeric_priority():
    from parsl_repro.executors.errors import InvalidResourceSpecification

    executor = HighThroughputExecutor()
    assert executor.validate_resource_spec({"priority": 3}) is None
    with pytest.raises(InvalidResourceSpecification, match="only accepts these types of resources: priority"):
        executor.validate_resource_spec({"num_nodes": 2})
    with pytest.raises(InvalidResourceSpecification, match="must be a number"):
        executor.validate_resource_spec({"priority": "high"})


def test_an_unencrypted_executor_refuses_a_cert_dir(tmp_path):
    executor = HighThroughputExecutor(encrypted=False)
    executor.run_dir = str(tmp_path)
    executor.cert_dir = str(tmp_path)
    with pytest.raises(AttributeError, match="change cert_dir to None"):
        executor.start()
    executor.shutdown()


def test_shutdown_of_an_executor_never_started_is_a_quiet_no_op(caplog):
    import logging

    executor = HighThroughputExecutor()
    log = logging.getLogger("parsl_repro.executors.high_throughput.executor")
    log.addHandler(caplog.handler)  # directly: an earlier test's kernel may have changed propagation
    try:
        with caplog.at_level("INFO", logger=log.name):
            executor.shutdown()
            executor.shutdown()
    finally:
        log.removeHandler(caplog.handler)
    assert "has not started" in caplog.text


def test_block_id_selector_orders_pools_by_block_id_so_the_highest_is_filled_first():
    from parsl_repro.executors.high_throughput.manager_selector import BlockIdManagerSelector

    records = {b"a": {"block_id": "1"}, b"b": {"block_id": None}, b"c": {"block_id": "3"}, b"d": {"block_id": "2"}}
    assert BlockIdManagerSelector().sort_managers(records, set(records)) == [b"b", b"a", b"d", b"c"]


@python_app
def my_block():
    import os
    return os.environ["PARSL_WORKER_BLOCK_ID"]


def test_with_the_block_id_selector_every_task_goes_to_the_highest_block(htex_load):
    from parsl_repro.executors.high_throughput.manager_selector import BlockIdManagerSelector

    provider = LocalProvider(init_blocks=2, min_blocks=2, max_blocks=2)
    kernel = htex_load(_htex(provider=provider, max_workers_per_node=1, manager_selector=BlockIdManagerSelector()))
    executor = kernel.executors["htex"]
    deadline = time.monotonic() + 20
    while len(executor.connected_managers()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    # one task at a time: each finds both pools free, and the highest block gets it
    assert {my_block().result(timeout=30) for _ in range(10)} == {"1"}


@python_app
def exit_the_worker():
    raise SystemExit(2)


def test_a_task_raising_system_exit_ends_its_worker_and_fails_with_worker_lost(htex_load):
    from parsl_repro.executors.high_throughput.errors import WorkerLost

    htex_load(_htex(max_workers_per_node=1))
    for _ in range(2):
        error = exit_the_worker().exception(timeout=30)
        assert isinstance(error, WorkerLost) and "exit code 2" in str(error)
    assert square(3).result(timeout=30) == 9  # the pool replaced its worker each time


def test_the_interchange_survives_garbage_on_its_worker_port_and_logs_it(htex_load):
    import zmq

    kernel = htex_load(_htex(encrypted=False, provider=LocalProvider(init_blocks=0, min_blocks=0, max_blocks=0)),
                       strategy="none")
    executor = kernel.executors["htex"]
    port = executor.command_client.run("WORKER_BINDS")
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://127.0.0.1:{port}")
    for message in ([b"FuzzyByte\rSTREAM"], [b"REGISTER", b"{not json"], [b"REGISTER", b"[]"], [b"RESULTS", b"x"],
                    [b"HEARTBEAT"], [b"DRAIN"]):
        sock.send_multipart(message)
    time.sleep(0.5)
    sock.close()
    context.term()
    executor.scale_out_facade(1)
    assert square(6).result(timeout=30) == 36
    with open(os.path.join(executor.logdir, "interchange.log")) as log:
        text_of_log = log.read()
    assert "Dropped a malformed message" in text_of_log and "unknown tag" in text_of_log


def test_a_pool_drains_after_drain_period_finishing_its_task_then_leaves(htex_load):
    kernel = htex_load(_htex(drain_period=2, max_workers_per_node=1), strategy="none")
    executor = kernel.executors["htex"]
    deadline = time.monotonic() + 20
    while not executor.connected_managers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not executor.connected_managers()[0]["draining"]
    future = sleep_for(3)
    deadline = time.monotonic() + 10
    while not executor.connected_managers()[0]["draining"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert executor.connected_managers()[0]["draining"] and not future.done()
    later = square(2)  # a draining pool takes no new task
    assert future.result(timeout=30) == 3
    deadline = time.monotonic() + 5
    while executor.connected_managers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert executor.connected_managers() == [] and not later.done()


@python_app
def finished_at(parsl_resource_specification=None):
    import time
    return time.monotonic()


def test_tasks_run_by_priority_lowest_first_and_in_submission_order_among_equals(htex_load):
    provider = LocalProvider(init_blocks=0, min_blocks=0, max_blocks=0)
    kernel = htex_load(_htex(provider=provider, max_workers_per_node=1), strategy="none")
    executor = kernel.executors["htex"]
    priorities = [10, 5, None, 1, 5, 10, 1]
    futures = [finished_at(parsl_resource_specification={} if p is None else {"priority": p}) for p in priorities]
    deadline = time.monotonic() + 10
    while executor.command_client.run("OUTSTANDING_C") < len(priorities) and time.monotonic() < deadline:
        time.sleep(0.05)
    executor.scale_out_facade(1)
    finished = [f.result(timeout=30) for f in futures]
    order = sorted(range(len(priorities)), key=lambda i: finished[i])
    assert order == [3, 6, 1, 4, 0, 5, 2]


def test_submit_payload_runs_a_named_task_executor_on_the_worker(htex_load):
    from parsl_repro.serialize import pack_apply_message

    kernel = htex_load()
    executor = kernel.executors["htex"]
    # the worker imports operator.concat and calls it with the raw buffer, then the extra arguments
    context = {"task_executor": {"f": "operator.concat", "a": (b" world",)}}
    assert executor.submit_payload(context, b"hello").result(timeout=30) == b"hello world"
    assert executor.submit_payload({}, pack_apply_message(pow, (2, 5), {})).result(timeout=30) == 32


def test_commands_answer_in_parsl_spelling_from_many_threads_at_once(htex_load):
    kernel = htex_load()
    executor = kernel.executors["htex"]
    assert square(2).result(timeout=30) == 4
    [manager] = executor.connected_managers()
    packages = executor.connected_managers_packages()
    assert packages[manager["manager"]]["parsl_repro"] == parsl_repro.__version__
    assert executor.connected_blocks() == ["0"]
    failures = []

    def ask() -> None:
        try:
            for _ in range(50):
                assert executor.command_client.run("CONNECTED_BLOCKS") == ["0"]
                assert len(executor.command_client.run("MANAGERS")) == 1
                assert "error" in executor.command_client.run("NO_SUCH_COMMAND")
        except Exception as e:
            failures.append(e)

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures


def test_short_task_prefetch_holds_one_extra_task_per_worker_only_while_tasks_come_back_quickly():
    from parsl_repro.executors.high_throughput.manager_record import SHORT_TASK_SECONDS, ManagerRecord

    pool = ManagerRecord(b"pool", {"uid": "p", "worker_count": 4, "capacity": 4})
    assert pool.limit(True, 100.0) == 4, "nothing known of its tasks yet: Parsl's capacity"
    for i in range(10):
        pool.tasks[bytes([i])] = 100.0
        pool.returned(bytes([i]), 100.0 + SHORT_TASK_SECONDS / 10)
    assert pool.limit(True, 101.0) == 8
    assert pool.limit(False, 101.0) == 4, "turned off: Parsl's capacity"
    pool.tasks[b"long"] = 101.0
    assert pool.limit(True, 101.0 + SHORT_TASK_SECONDS / 2) == 8
    assert pool.limit(True, 101.0 + 2 * SHORT_TASK_SECONDS) == 4, "a task it holds has been out too long"
    del pool.tasks[b"long"]
    for i in range(10, 20):
        pool.tasks[bytes([i])] = 200.0
        pool.returned(bytes([i]), 200.0 + 20 * SHORT_TASK_SECONDS)
    assert pool.limit(True, 300.0) == 4, "long tasks: no task waits in a pool that another pool could run"
    assert not pool.tasks
    generous = ManagerRecord(b"g", {"uid": "g", "worker_count": 2, "capacity": 12})  # prefetch_capacity=10
    generous.tasks[b"x"] = 0.0
    generous.returned(b"x", 0.001)
    assert generous.limit(True, 1.0) == 12, "an explicit prefetch_capacity larger than the extra is kept"


def test_extras_go_out_only_once_every_pool_is_at_capacity(tmp_path):
    """Dispatch fills every pool to its capacity before any pool gets a short-task extra."""
    import socket

    from parsl_repro.executors.high_throughput.interchange import Interchange
    from parsl_repro.executors.high_throughput.manager_record import ManagerRecord
    from parsl_repro.executors.high_throughput.protocol import pack_id

    ours, theirs = socket.socketpair()
    interchange = Interchange({"client_fd": theirs.fileno(), "cert_dir": None, "logdir": str(tmp_path),
                               "short_task_prefetch": True})
    try:
        interchange._send_worker = lambda identity, frames: True
        pools = [ManagerRecord(bytes([i]), {"uid": str(i), "worker_count": 2, "capacity": 2}) for i in range(3)]
        for pool in pools:
            pool.turnaround = 0.001  # its tasks have been coming back quickly
            interchange.managers[pool.identity] = pool
        interchange.queue.extend((pack_id(i), b"call") for i in range(7))
        interchange._dispatch()
        assert sorted(len(pool.tasks) for pool in pools) == [2, 2, 3]
        interchange.queue.extend((pack_id(i), b"call") for i in range(7, 20))
        interchange._dispatch()
        assert [len(pool.tasks) for pool in pools] == [4, 4, 4] and len(interchange.queue) == 8
    finally:
        interchange.workers.close(0)
        interchange.client.sock.close()
        interchange.context.term()
        ours.close()


def test_pools_of_quick_tasks_are_kept_two_tasks_deep_per_worker(htex_load):
    """While short tasks flow, the interchange keeps a pool two tasks deep per worker (so workers
    never wait a round trip); with the prefetch off it keeps Parsl's one per worker."""
    for prefetch, deepest in ((True, 4), (False, 2)):
        executor = htex_load(_htex(short_task_prefetch=prefetch)).executors["htex"]

        @python_app
        def quick(i):
            import time
            time.sleep(0.002)
            return i

        futures = [quick(i) for i in range(600)]
        held = 0
        while not futures[-1].done():
            held = max([held, *(m["tasks"] for m in executor.connected_managers())])
        assert [f.result() for f in futures] == list(range(600))
        assert held == deepest
        parsl_repro.dfk().cleanup()


def _pool_logs(executor: HighThroughputExecutor) -> str:
    import glob
    return "".join(open(path).read() for path in glob.glob(os.path.join(executor.worker_logdir, "block-*", "*.log")))


def test_pools_on_this_host_use_a_private_unix_socket_removed_at_shutdown(htex_load):
    import stat
    kernel = htex_load()
    executor = kernel.executors["htex"]
    assert square(7).result() == 49
    directory = os.path.dirname(executor.worker_ipc)
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_ISSOCK(os.stat(executor.worker_ipc).st_mode)
    assert f"Connected to the interchange at ipc://{executor.worker_ipc}" in _pool_logs(executor)
    kernel.cleanup()
    assert not os.path.exists(directory)


def test_pools_elsewhere_connect_over_tcp(htex_load):
    """A pool whose --ipc-host is not this host (or a launch_cmd without the option) uses TCP."""
    from parsl_repro.executors.high_throughput.executor import DEFAULT_LAUNCH_CMD

    launch_cmd = DEFAULT_LAUNCH_CMD.replace("{ipc_option}", "--ipc=/tmp/no-such-socket --ipc-host=some-other-node")
    executor = htex_load(_htex(launch_cmd=launch_cmd)).executors["htex"]
    assert [f.result() for f in [square(i) for i in range(20)]] == [i * i for i in range(20)]
    log = _pool_logs(executor)
    assert f"Connected to the interchange at 127.0.0.1 (port {executor.worker_port})" in log
    assert "ipc://" not in log


PARSL_STYLE_LAUNCH_CMD = (
    "process_worker_pool.py {debug} {max_workers_per_node} -a {addresses} -p {prefetch_capacity} "
    "-c {cores_per_worker} -m {mem_per_worker} --poll {poll_period} --port={worker_port} --cert_dir {cert_dir} "
    "--logdir={logdir} --logconf={logconf} --block_id={{block_id}} --hb_period={heartbeat_period} "
    "{address_probe_timeout_string} --hb_threshold={heartbeat_threshold} --drain_period={drain_period} "
    "--cpu-affinity {cpu_affinity} {enable_mpi_mode} --mpi-launcher={mpi_launcher} "
    "--available-accelerators {accelerators}")
"""A launch_cmd as written for Parsl's own worker pool: its script name and option spellings."""


def test_parsls_script_names_stand_for_ours_and_a_parsl_style_launch_cmd_runs_our_pool(htex_load):
    default = HighThroughputExecutor()
    assert default.launch_cmd.startswith("process_worker_pool.py ")
    assert default.interchange_launch_cmd == ["interchange.py"]
    executor = htex_load(_htex(launch_cmd=PARSL_STYLE_LAUNCH_CMD)).executors["htex"]
    assert [f.result() for f in [square(i) for i in range(10)]] == [i * i for i in range(10)]
    assert "process_worker_pool.py" not in executor.launch_cmd and "worker-pool" in executor.launch_cmd
    interchange = " ".join(psutil.Process(executor.interchange_proc.pid).cmdline())
    assert interchange.endswith("-m parsl_repro.executors.high_throughput.interchange")
    [pool] = executor.connected_managers()
    assert pool["block_id"] == "0" and pool["worker_count"] == 2


def test_an_interchange_that_is_stopping_ignores_sigterm(monkeypatch):
    """The executor closes the interchange's pipe and sends SIGTERM at once. When the pipe wins,
    the signal can arrive while the interpreter is shutting down, after Python has put SIGTERM's
    default action back, and a clean exit ends with status -15 (seen in CI). Once ``run``
    returns, the interchange ignores SIGTERM, so the late signal is harmless."""
    import io
    import signal

    from parsl_repro.executors.high_throughput import interchange as module

    class Finished:
        worker_port = 1

        def __init__(self, settings):
            pass

        def run(self, control):
            return None

    before = signal.getsignal(signal.SIGTERM)
    stdin = io.TextIOWrapper(io.BytesIO(b'{"logdir": null}\n'))
    stdin.fileno = lambda: 0  # type: ignore[method-assign]
    monkeypatch.setattr(module, "Interchange", Finished)
    monkeypatch.setattr(module, "_start_logging", lambda settings: None)
    monkeypatch.setattr(module.sys, "stdin", stdin)
    monkeypatch.setattr(module.sys, "stdout", io.StringIO())
    try:
        assert module.main() == 0
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, before)
