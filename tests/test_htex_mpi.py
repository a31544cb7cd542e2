"""MPI mode of the HighThroughputExecutor (``MPIExecutor``): launcher prefixes, resource
specification checks, node discovery and placement, and end-to-end runs on loopback with real
interchange and worker-pool processes (node names come from a PBS node file; a last test runs
a real MPICH ``mpiexec``)."""
from __future__ import annotations

import collections
import inspect
import os
import queue
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest

import parsl_repro
from parsl_repro import bash_app, python_app
from parsl_repro.config import Config
from parsl_repro.executors import HighThroughputExecutor, MPIExecutor
from parsl_repro.executors.errors import InvalidResourceSpecification, MissingResourceSpecification
from parsl_repro.executors.high_throughput import protocol as p
from parsl_repro.executors.high_throughput.mpi_prefix_composer import (
    complete_resource_spec,
    compose_all,
    compose_aprun_launch_cmd,
    compose_mpiexec_launch_cmd,
    compose_srun_launch_cmd,
    validate_resource_spec,
)
from parsl_repro.executors.high_throughput.mpi_resource_management import (
    MPINodesUnavailable,
    MPITaskScheduler,
    PoolMPIScheduler,
    Scheduler,
    get_nodes_in_batchjob,
    identify_scheduler,
)
from parsl_repro.launchers import SimpleLauncher, SingleNodeLauncher, SrunLauncher
from parsl_repro.providers import LocalProvider
from parsl_repro.serialize import deserialize, pack_apply_message, serialize

SPEC = {"num_nodes": 2, "ranks_per_node": 4}
NODES = ["n1", "n2"]


# --- prefixes ---------------------------------------------------------------------------------------
def test_each_launcher_prefix_names_ranks_and_nodes():
    assert compose_mpiexec_launch_cmd(SPEC, NODES) == ("PARSL_MPIEXEC_PREFIX", "mpiexec -n 8 -ppn 4 -hosts n1,n2")
    assert compose_srun_launch_cmd(SPEC, NODES) == (
        "PARSL_SRUN_PREFIX", "srun --nodes 2 --ntasks 8 --ntasks-per-node 4 --nodelist n1,n2")
    assert compose_aprun_launch_cmd(SPEC, NODES) == ("PARSL_APRUN_PREFIX", "aprun -n 8 -N 4 -node-list n1,n2")


def test_prefix_appends_launcher_options_and_derives_ranks_per_node():
    spec = {"num_nodes": 3, "num_ranks": 4, "launcher_options": "--cpu-bind depth"}
    _, prefix = compose_mpiexec_launch_cmd(spec, ["a", "b", "c"])
    assert prefix == "mpiexec -n 4 -ppn 2 -hosts a,b,c --cpu-bind depth"  # ceil(4 / 3) ranks per node


@pytest.mark.parametrize("launcher", ["mpiexec", "srun", "aprun"])
def test_compose_all_makes_the_chosen_launcher_the_mpi_prefix(launcher):
    table = compose_all(launcher, SPEC, NODES)
    assert set(table) == {"PARSL_MPI_PREFIX", "PARSL_MPIEXEC_PREFIX", "PARSL_SRUN_PREFIX", "PARSL_APRUN_PREFIX"}
    assert table["PARSL_MPI_PREFIX"] == table[f"PARSL_{launcher.upper()}_PREFIX"]
    assert table["PARSL_MPI_PREFIX"].startswith(launcher + " ")


def test_compose_all_refuses_an_unknown_launcher():
    with pytest.raises(ValueError, match="mpirun"):
        compose_all("mpirun", SPEC, NODES)


# --- resource specifications -----------------------------------------------------------------------
def test_valid_specifications_pass_unchanged():
    for spec in ({"num_nodes": 2, "ranks_per_node": 1}, {"launcher_options": "-v"}, {"num_ranks": "8"}):
        before = dict(spec)
        assert validate_resource_spec(spec) is None
        assert spec == before


def test_an_empty_specification_is_missing():
    with pytest.raises(MissingResourceSpecification) as caught:
        validate_resource_spec({})
    assert isinstance(caught.value, InvalidResourceSpecification)


@pytest.mark.parametrize("spec, key", [
    ({"num_nodes": 2, "BAD_OPT": 1}, "BAD_OPT"),
    ({"priority": 1}, "priority"),
    ({"num_nodes": 0}, "num_nodes"),
    ({"num_nodes": -2}, "num_nodes"),
    ({"num_nodes": True}, "num_nodes"),
    ({"ranks_per_node": 2.5}, "ranks_per_node"),
    ({"num_ranks": "many"}, "num_ranks"),
    ({"launcher_options": ["-v"]}, "launcher_options"),
])
def test_invalid_specifications_name_the_key(spec, key):
    with pytest.raises(InvalidResourceSpecification) as caught:
        validate_resource_spec(spec)
    assert caught.value.invalid_keys == {key}


def test_complete_resource_spec_fills_counts_without_touching_the_original():
    spec = {"num_ranks": 6, "num_nodes": 4}
    assert complete_resource_spec(spec) == {"num_nodes": 4, "num_ranks": 6, "ranks_per_node": 2}
    assert spec == {"num_ranks": 6, "num_nodes": 4}
    assert complete_resource_spec({"num_nodes": "3", "ranks_per_node": 5})["num_ranks"] == 15
    assert complete_resource_spec({"launcher_options": "-v"}) == {
        "launcher_options": "-v", "num_nodes": 1, "ranks_per_node": 1, "num_ranks": 1}


def test_executors_validate_by_mode():
    mpi = MPIExecutor(provider=LocalProvider(launcher=SimpleLauncher()))
    mpi.validate_resource_spec({"num_nodes": 2})
    with pytest.raises(MissingResourceSpecification):
        mpi.validate_resource_spec({})
    htex = HighThroughputExecutor()
    htex.validate_resource_spec({"priority": 1})
    with pytest.raises(InvalidResourceSpecification):
        htex.validate_resource_spec({"num_nodes": 2})
    htex.enable_mpi_mode = True  # Parsl's switch is this attribute, which MPIExecutor sets
    htex.validate_resource_spec({"num_nodes": 2})
    with pytest.raises(InvalidResourceSpecification):
        htex.validate_resource_spec({"priority": 1})


# --- MPIExecutor configuration -----------------------------------------------------------------------
def test_mpi_executor_needs_simple_launcher_and_a_known_mpi_launcher():
    for launcher in (SrunLauncher(), SingleNodeLauncher()):
        with pytest.raises(TypeError, match="SimpleLauncher"):
            MPIExecutor(provider=LocalProvider(launcher=launcher))
    with pytest.raises(ValueError, match="bad_launcher"):
        MPIExecutor(mpi_launcher="bad_launcher", provider=LocalProvider(launcher=SimpleLauncher()))
    executor = MPIExecutor(mpi_launcher="srun", max_workers_per_block=3)
    assert isinstance(executor.provider.launcher, SimpleLauncher)  # the default provider fits
    assert (executor.enable_mpi_mode, executor.mpi_launcher, executor.max_workers_per_node) == (True, "srun", 3)
    assert executor.workers_per_node == 3
    assert not executor.monitor_resources()
    assert HighThroughputExecutor.enable_mpi_mode is False


def test_mpi_executor_signature_is_htex_without_per_worker_settings():
    htex = set(inspect.signature(HighThroughputExecutor.__init__).parameters)
    mpi = set(inspect.signature(MPIExecutor.__init__).parameters)
    assert mpi - htex == {"max_workers_per_block", "mpi_launcher"}
    assert htex - mpi == {"available_accelerators", "cores_per_worker", "max_workers_per_node",
                          "mem_per_worker", "cpu_affinity", "manager_selector"}


# --- nodes of the batch job -----------------------------------------------------------------------------
def test_nodes_come_from_pbs_slurm_or_this_host(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_NODELIST", raising=False)
    monkeypatch.delenv("PBS_NODEFILE", raising=False)
    assert identify_scheduler() is Scheduler.Unknown
    assert get_nodes_in_batchjob(Scheduler.Unknown) == [socket.gethostname()]

    nodefile = tmp_path / "nodefile"
    nodefile.write_text("c1\nc1\nc2\n\nc1\nc3\n")  # PBS may list a host once per rank
    monkeypatch.setenv("PBS_NODEFILE", str(nodefile))
    assert identify_scheduler() is Scheduler.PBS
    assert get_nodes_in_batchjob(Scheduler.PBS) == ["c1", "c2", "c3"]

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"  # a stand-in that checks how it is called
    scontrol.write_text('#!/bin/sh\n[ "$*" = "show hostnames nid[001-002]" ] && printf "nid001\\nnid002\\n"\n')
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_NODELIST", "nid[001-002]")
    assert identify_scheduler() is Scheduler.Slurm  # Slurm wins over PBS
    assert get_nodes_in_batchjob(Scheduler.Slurm) == ["nid001", "nid002"]


# --- placing tasks on nodes -------------------------------------------------------------------------------
def _task(task_id: int, nodes: int) -> dict:
    return {"task_id": task_id, "buffer": b"", "context": {"resource_spec": {"num_nodes": nodes}}}


def test_tasks_wait_until_enough_nodes_are_free():
    ready: queue.Queue = queue.Queue()
    scheduler = MPITaskScheduler(ready, None, nodes=["a", "b", "c"])
    scheduler.put_task(_task(1, 2))
    scheduler.put_task(_task(2, 2))  # one node free: held
    scheduler.put_task(_task(3, 1))  # fits at once
    started = [ready.get_nowait() for _ in range(ready.qsize())]
    assert [t["task_id"] for t in started] == [1, 3]
    first = started[0]["context"]["resource_spec"]["MPI_NODELIST"].split(",")
    assert len(first) == 2 and started[1]["context"]["resource_spec"]["MPI_NODELIST"] not in first
    scheduler.release(3)  # two free nodes? no: task 1 still holds two of three
    assert ready.empty()
    scheduler.release(1)
    held = ready.get_nowait()
    assert held["task_id"] == 2 and len(held["context"]["resource_spec"]["MPI_NODELIST"].split(",")) == 2
    assert scheduler._free_node_counter.value == 1
    with pytest.raises(MPINodesUnavailable):
        scheduler.put_task(_task(4, 4))  # more than the block has: never runs, so refused


def test_backlog_starts_fewest_nodes_first_then_in_arrival_order():
    ready: queue.Queue = queue.Queue()
    scheduler = MPITaskScheduler(ready, None, nodes=["a", "b", "c", "d"])
    scheduler.put_task(_task(0, 4))
    for task_id, nodes in ((1, 3), (2, 1), (3, 1)):
        scheduler.put_task(_task(task_id, nodes))
    ready.get_nowait()
    scheduler.release(0)
    assert [ready.get_nowait()["task_id"] for _ in range(ready.qsize())] == [2, 3]  # 3 nodes do not fit beside
    scheduler.release(2)
    scheduler.release(3)
    assert ready.get_nowait()["task_id"] == 1


def test_pool_scheduler_adds_nodes_and_prefixes_to_the_task_and_fails_oversized_ones():
    ready: collections.deque = collections.deque()
    pool = PoolMPIScheduler("srun", ready, nodes=["a", "b"])
    buffer = pack_apply_message(len, ([1],), {})

    def payload(spec: dict) -> bytes:
        return p.pack_context_payload(serialize({"resource_spec": spec}), buffer)

    assert pool.put(p.pack_id(1), payload({"num_nodes": 2, "ranks_per_node": 3, "num_ranks": 6})) == []
    assert pool.put(p.pack_id(2), payload({"num_nodes": 1, "ranks_per_node": 1, "num_ranks": 1})) == []
    assert len(ready) == 1 and pool.held() == 1
    task_id, sent = ready.popleft()
    context, rest = p.unpack_context_payload(sent)
    spec = deserialize(context)["resource_spec"]
    assert task_id == p.pack_id(1) and rest == buffer
    assert spec["MPI_NODELIST"] == "a,b"
    assert spec["MPI_PREFIX"] == spec["SRUN_PREFIX"] == "srun --nodes 2 --ntasks 6 --ntasks-per-node 3 --nodelist a,b"
    assert spec["MPIEXEC_PREFIX"] == "mpiexec -n 6 -ppn 3 -hosts a,b"

    pool.release(p.pack_id(1))
    assert [t for t, _ in ready] == [p.pack_id(2)] and pool.held() == 0

    failed = pool.put(p.pack_id(3), payload({"num_nodes": 3}))
    assert failed[:2] == [p.pack_id(3), p.OK]
    with pytest.raises(MPINodesUnavailable) as caught:
        deserialize(failed[3]).reraise()
    assert (caught.value.requested, caught.value.available) == (3, 2)


# --- end to end -----------------------------------------------------------------------------------------------
def _descendants() -> set[int]:
    return {proc.pid for proc in psutil.Process().children(recursive=True)}


@pytest.fixture
def mpi_load(tmp_path, monkeypatch, no_leaks):
    """Load a kernel on an MPIExecutor whose pool reads ``nodes`` from a PBS node file (none: this
    host); cleanup must leave no process behind."""
    monkeypatch.chdir(tmp_path)
    before = _descendants()
    kernels = []

    def load(nodes: list[str] | None, **fields) -> MPIExecutor:
        if nodes is None:
            init = "unset PBS_NODEFILE SLURM_NODELIST"
        else:
            nodefile = tmp_path / "nodefile"
            nodefile.write_text("".join(f"{node}\n" for node in nodes))
            init = f"unset SLURM_NODELIST; export PBS_NODEFILE={nodefile}"
        fields.setdefault("max_workers_per_block", 2)
        executor = MPIExecutor(label="mpi", heartbeat_period=1, heartbeat_threshold=4, provider=LocalProvider(
            init_blocks=1, min_blocks=0, max_blocks=1, worker_init=init, launcher=SimpleLauncher()), **fields)
        kernels.append(parsl_repro.load(Config(executors=[executor], run_dir=str(tmp_path / "runinfo"),
                                               strategy_period=0.2)))
        return executor

    yield load
    for kernel in kernels:
        kernel.cleanup()
    deadline = time.monotonic() + 10
    while _descendants() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [psutil.Process(pid).cmdline() for pid in _descendants() - before if psutil.pid_exists(pid)]
    assert not left, f"processes left after cleanup: {left}"


@python_app
def parsl_env(parsl_resource_specification=None):
    import os
    return {k: v for k, v in os.environ.items() if k.startswith("PARSL_")}


@python_app
def hold_nodes(seconds, parsl_resource_specification=None):
    import os
    import time
    start = time.time()
    time.sleep(seconds)
    return start, time.time(), os.environ["PARSL_MPI_NODELIST"].split(",")


@bash_app
def show_prefix(parsl_resource_specification=None, stdout=parsl_repro.AUTO_LOGNAME):
    return 'echo "$PARSL_MPI_PREFIX hostname|$PARSL_NUM_NODES|$PARSL_NUM_RANKS|$PARSL_MPI_NODELIST"'


@bash_app
def mpi_hostname(parsl_resource_specification=None, stdout=parsl_repro.AUTO_LOGNAME,
                 stderr=parsl_repro.AUTO_LOGNAME):
    return "$PARSL_MPI_PREFIX hostname"


def test_mpi_mode_task_sees_its_nodes_and_prefix(mpi_load):
    executor = mpi_load(["m0", "m1", "m2", "m3"], mpi_launcher="mpiexec")
    assert "--enable-mpi-mode --mpi-launcher=mpiexec" in executor.launch_cmd
    env = parsl_env(parsl_resource_specification={"num_nodes": 3, "ranks_per_node": 5}).result(timeout=60)
    nodes = env["PARSL_MPI_NODELIST"].split(",")
    assert len(nodes) == 3 and set(nodes) <= {"m0", "m1", "m2", "m3"}
    assert (env["PARSL_NUM_NODES"], env["PARSL_RANKS_PER_NODE"], env["PARSL_NUM_RANKS"]) == ("3", "5", "15")
    assert env["PARSL_MPI_PREFIX"] == env["PARSL_MPIEXEC_PREFIX"] == \
        f"mpiexec -n 15 -ppn 5 -hosts {env['PARSL_MPI_NODELIST']}"
    assert env["PARSL_SRUN_PREFIX"].startswith("srun --nodes 3 --ntasks 15")

    future = show_prefix(parsl_resource_specification={"num_nodes": 2, "num_ranks": 4, "launcher_options": "-v"})
    assert future.result(timeout=60) == 0
    line = Path(future.stdout).read_text().strip()
    command, num_nodes, num_ranks, nodelist = line.split("|")
    assert command == f"mpiexec -n 4 -ppn 2 -hosts {nodelist} -v hostname"
    assert (num_nodes, num_ranks) == ("2", "4")

    with pytest.raises(MissingResourceSpecification):
        parsl_env().result(timeout=60)
    with pytest.raises(InvalidResourceSpecification):
        parsl_env(parsl_resource_specification={"num_nodes": 1, "priority": 1}).result(timeout=60)
    with pytest.raises(MPINodesUnavailable):
        parsl_env(parsl_resource_specification={"num_nodes": 5}).result(timeout=60)
    # the oversized task released nothing it did not hold: the block still runs a 4-node task
    assert len(parsl_env(parsl_resource_specification={"num_nodes": 4}).result(timeout=60)[
        "PARSL_MPI_NODELIST"].split(",")) == 4


def test_mpi_mode_holds_tasks_until_their_nodes_are_free(mpi_load):
    mpi_load(["m0", "m1"], max_workers_per_block=2)
    # two free workers, but each task wants both nodes: they must run one after the other...
    whole = [hold_nodes(0.6, parsl_resource_specification={"num_nodes": 2}) for _ in range(2)]
    (s1, e1, n1), (s2, e2, n2) = sorted(f.result(timeout=60) for f in whole)
    assert sorted(n1) == sorted(n2) == ["m0", "m1"]
    assert s2 >= e1 - 0.01
    # ...while two one-node tasks share the block at once, on different nodes
    halves = [hold_nodes(0.6, parsl_resource_specification={"num_nodes": 1}) for _ in range(2)]
    (s1, e1, n1), (s2, e2, n2) = sorted(f.result(timeout=60) for f in halves)
    assert s2 < e1 and n1 != n2


def _mpich_mpiexec() -> str | None:
    """An mpiexec that takes Parsl's ``-n/-ppn/-hosts`` (MPICH's Hydra), installed on demand."""
    if shutil.which("mpiexec") is None:
        script = Path(__file__).resolve().parent.parent / "scripts" / "system-packages.sh"
        subprocess.run(["bash", str(script), "mpiexec:mpich"], check=False, timeout=600)
    found = shutil.which("mpiexec")
    if found is None:
        return None
    version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=30)
    return found if "HYDRA" in version.stdout else None


def test_real_mpiexec_runs_the_ranks_through_the_prefix(mpi_load):
    if _mpich_mpiexec() is None:
        pytest.skip("no MPICH (Hydra) mpiexec, and it could not be installed")
    mpi_load(None, max_workers_per_block=1)  # no batch scheduler: the node is this host
    future = mpi_hostname(parsl_resource_specification={"num_nodes": 1, "ranks_per_node": 3})
    assert future.result(timeout=60) == 0
    assert Path(future.stdout).read_text().split() == [socket.gethostname()] * 3
