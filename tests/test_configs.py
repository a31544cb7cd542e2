"""parsl_repro.configs, Parsl's ready-made configs: every module imports on any machine, and each
one's config runs a python app task. ``local_threads`` and ``htex_local`` run as they are; the
Slurm site configs run on the test's real single-node Slurm cluster (scripts/slurm.sh) after the
edits a user of that site makes to a copy of the file: placeholders filled in, and requests the
test node cannot meet (two nodes, GPUs, 32 cores, 220 GB) brought down to what it has."""
from __future__ import annotations

import importlib
import os
import pathlib
import runpy
import sys

import psutil
import pytest

import parsl_repro
import parsl_repro.configs as configs
from parsl_repro import python_app
from parsl_repro.addresses import address_by_hostname
from parsl_repro.config import Config
from parsl_repro.configs import LOOPBACK, PROVIDED, SKIPPED, address_by_interface_or_hostname
from parsl_repro.executors import HighThroughputExecutor, ThreadPoolExecutor
from parsl_repro.launchers import SrunLauncher
from parsl_repro.providers import LocalProvider, SlurmProvider
from parsl_repro.providers.errors import SubmitException
from parsl_repro.usage_tracking.levels import LEVEL_1

# Every module in Parsl's parsl/configs/ (release wheel), provided here or skipped with a reason.
PARSL_CONFIG_MODULES = {
    "ASPIRE1", "Azure", "anvil", "bridges", "cc_in2p3", "delta", "ec2", "expanse", "frontera", "gc_multisite",
    "gc_tutorial", "htex_local", "illinoiscluster", "improv", "kubernetes", "local_threads", "midway", "osg",
    "polaris", "stampede2", "summit", "toss3_llnl", "vineex_local", "wqex_local",
}

LOCAL = ["local_threads", "htex_local"]

# The login-node interface each site config takes the workers' address from.
SITE_INTERFACES = {"bridges": "ens3f0", "midway": "bond0", "stampede2": "em3"}

VENV_ACTIVATE = repr(f"source {sys.prefix}/bin/activate")

# What a user of each site edits in a copy of the module to run it on the test cluster: each pair is
# (text in the module, its replacement), and each text must occur exactly once; WORKING_DIR in a
# replacement stands for a directory of the test's. The test cluster has
# one partition, "debug", no accounts, one node (2 cores here, no GPUs, no node features) and no
# environment modules; the workers' pool is found by absolute path, so an empty worker_init works, and
# a site worker_init that loads modules or a conda environment becomes activating this virtualenv.
SITE_EDITS: dict[str, list[tuple[str, str]]] = {
    "anvil": [
        ("'/anvil/scratch/path/to/your/directory'", "WORKING_DIR"),
        ("partition='gpu'", "partition='debug'"),
        ("account='YOUR_ALLOCATION_ON_ANVIL'", "account=None"),
        ("cores_per_node=4", "cores_per_node=2"),
        ("mem_per_node=50", "mem_per_node=1"),
        ("scheduler_options='#SBATCH --gres gpu:1 --gpus-per-node=1'", "scheduler_options=''"),
        ("worker_init='module load modtree/gpu'", f"worker_init={VENV_ACTIVATE}"),
    ],
    "bridges": [
        ("'YOUR_PARTITION_NAME'", "'debug'"),
        ("nodes_per_block=2", "nodes_per_block=1"),
    ],
    "delta": [
        ("'/scratch/path/to/your/directory'", "WORKING_DIR"),
        ("partition='gpuA100x4'", "partition='debug'"),
        ("account='YOUR_ALLOCATION_ON_DELTA'", "account=None"),
        ('constraint="scratch"', "constraint=None"),
        ("cores_per_node=32", "cores_per_node=2"),
        ("mem_per_node=220", "mem_per_node=1"),
        ("scheduler_options='#SBATCH --gpus-per-node=1 --gpu-bind=closest'", "scheduler_options=''"),
    ],
    "expanse": [
        ("'compute'", "'debug'"),
        ("account='YOUR_ALLOCATION_ON_EXPANSE'", "account=None"),
        ("nodes_per_block=2", "nodes_per_block=1"),
    ],
    "frontera": [
        ("partition='normal'", "partition='debug'"),
        ("scheduler_options='#SBATCH -A <YOUR_ALLOCATION>'", "scheduler_options=''"),
        ("nodes_per_block=2", "nodes_per_block=1"),
    ],
    "illinoiscluster": [
        ("partition='secondary-fdr'", "partition='debug'"),
        ("nodes_per_block=2", "nodes_per_block=1"),
        ("worker_init='conda activate envParsl'", f"worker_init={VENV_ACTIVATE}"),
    ],
    "midway": [
        ("'YOUR_PARTITION'", "'debug'"),
        ("nodes_per_block=2", "nodes_per_block=1"),
    ],
    "stampede2": [
        ("partition='YOUR_PARTITION'", "partition='debug'"),
        ("nodes_per_block=2", "nodes_per_block=1"),
    ],
}
SLURM_SITES = sorted(SITE_EDITS)

# What each site's shipped script must ask Slurm for, beyond nodes, walltime and partition.
SHIPPED_DIRECTIVES = {
    "anvil": ["#SBATCH --account=YOUR_ALLOCATION_ON_ANVIL", "#SBATCH --gres gpu:1 --gpus-per-node=1",
              "#SBATCH --mem=50g", "#SBATCH --cpus-per-task=4"],
    "delta": ["#SBATCH --account=YOUR_ALLOCATION_ON_DELTA", "#SBATCH --constraint=scratch",
              "#SBATCH --gpus-per-node=1 --gpu-bind=closest", "#SBATCH --mem=220g", "#SBATCH --cpus-per-task=32"],
    "expanse": ["#SBATCH --account=YOUR_ALLOCATION_ON_EXPANSE", "#SBATCH --exclusive"],
    "frontera": ["#SBATCH -A <YOUR_ALLOCATION>", "#SBATCH --exclusive"],
    "illinoiscluster": ["conda activate envParsl", "#SBATCH --exclusive"],
    "bridges": ["#SBATCH --exclusive"], "midway": ["#SBATCH --exclusive"], "stampede2": ["#SBATCH --exclusive"],
}


def _module(name: str):
    return importlib.import_module(f"parsl_repro.configs.{name}")


def _config_from_source(name: str, directory: pathlib.Path, edits: list[tuple[str, str]]) -> Config:
    """The ``config`` of a fresh copy of the module's file with ``edits`` applied, as a user copies and edits it."""
    source = pathlib.Path(_module(name).__file__).read_text()
    for old, new in edits:
        assert source.count(old) == 1, f"{name}.py should contain {old!r} exactly once"
        source = source.replace(old, new.replace("WORKING_DIR", repr(str(directory / "work"))))
    path = directory / f"{name}_{'edited' if edits else 'shipped'}.py"
    path.write_text(source)
    return runpy.run_path(str(path))["config"]


def _square_where_app():
    """A python app defined in a function, so that it is sent to workers by value."""
    @python_app
    def square_where(x):
        import os
        return x * x, os.environ.get("SLURM_JOB_ID")
    return square_where


# --- every module ----------------------------------------------------------------------------------


def test_every_parsl_config_module_is_provided_or_listed_as_skipped_with_its_reason():
    assert set(PROVIDED) | set(SKIPPED) == PARSL_CONFIG_MODULES and not set(PROVIDED) & set(SKIPPED)
    on_disk = {p.stem for p in pathlib.Path(configs.__file__).parent.glob("*.py")} - {"__init__"}
    assert on_disk == set(PROVIDED)
    assert set(LOCAL) | set(SLURM_SITES) == set(PROVIDED)
    for name, lacking in SKIPPED.items():
        [line] = [line for line in configs.__doc__.splitlines() if f"``{name}``" in line]
        assert f"``{lacking}``" in line
    for name in PROVIDED:
        assert f"``{name}``" in configs.__doc__


@pytest.mark.parametrize("name", PROVIDED)
def test_module_imports_anywhere_and_defines_one_valid_config(name):
    """Imports here, where no site interface (bond0, ens3f0, em3) exists: the address falls back."""
    config = _module(name).config
    assert isinstance(config, Config) and config.usage_tracking == LEVEL_1 and len(config.executors) == 1
    [executor] = config.executors
    repr(config)
    if name == "local_threads":
        assert isinstance(executor, ThreadPoolExecutor) and executor.label == "threads"
        return
    assert type(executor) is HighThroughputExecutor
    if name == "htex_local":
        assert executor.label == "htex_local" and isinstance(executor.provider, LocalProvider)
        return
    provider = executor.provider
    assert type(provider) is SlurmProvider and isinstance(provider.launcher, SrunLauncher)
    interface = SITE_INTERFACES.get(name)
    if interface is None:
        assert executor.address is None
    elif interface not in psutil.net_if_addrs():
        assert executor.address == address_by_interface_or_hostname(interface)
        assert executor.address in (address_by_hostname(), LOOPBACK)


def test_a_missing_interface_falls_back_to_the_hostname_then_to_loopback(monkeypatch, caplog):
    assert address_by_interface_or_hostname("lo") == "127.0.0.1"
    assert address_by_interface_or_hostname("no-such-if0") == address_by_hostname()
    assert "no-such-if0" in caplog.text

    def unresolvable() -> str:
        raise OSError("name does not resolve")

    monkeypatch.setattr(configs, "address_by_hostname", unresolvable)
    assert address_by_interface_or_hostname("no-such-if0") == LOOPBACK


# --- local configs, as they are --------------------------------------------------------------------


@pytest.mark.parametrize("name", LOCAL)
def test_local_config_runs_a_task_as_it_is(name, tmp_path, monkeypatch, no_leaks):
    monkeypatch.chdir(tmp_path)
    config = _module(name).config
    config.run_dir = str(tmp_path / "runinfo")
    parsl_repro.load(config)
    try:
        assert _square_where_app()(7).result(timeout=60) == (49, None)
    finally:
        parsl_repro.dfk().cleanup()
    assert list((tmp_path / "runinfo").iterdir())


# --- Slurm site configs, on the test cluster -------------------------------------------------------


@pytest.mark.parametrize("name", SLURM_SITES)
def test_slurm_site_config_runs_a_task_on_the_test_cluster_after_the_site_edits(name, slurm, tmp_path):
    """The module as shipped renders the site's job script (srun over all its nodes, its walltime,
    partition and directives), which this cluster refuses (no such partition, or no GPUs); with SITE_EDITS
    applied, the same executor, label, launcher and walltime run a task in a Slurm job here. The
    site's interface address needs no edit: it is absent here, so the module falls back."""
    shipped = _config_from_source(name, tmp_path, [])
    [shipped_executor] = shipped.executors
    provider = shipped_executor.provider
    provider.script_dir = str(tmp_path / "shipped")
    os.makedirs(provider.script_dir)
    with pytest.raises(SubmitException) as refused:
        provider.submit("echo the-worker-command", 1, "shipped")
    # no such partition here, or (GPU sites) no GPUs to ask for
    assert any(reason in refused.value.stderr.lower() for reason in ("partition", "generic resource (gres)"))
    [script_path] = [p for p in (tmp_path / "shipped").glob("shipped.*") if p.suffix not in (".stdout", ".stderr")]
    script = script_path.read_text()
    hours, minutes, _ = map(int, provider.walltime.split(":"))
    for expected in (f"srun --ntasks {provider.nodes_per_block} -l", "echo the-worker-command",
                     f"#SBATCH --nodes={provider.nodes_per_block}", f"#SBATCH --time={hours * 60 + minutes}",
                     f"#SBATCH --partition={provider.partition}", *SHIPPED_DIRECTIVES[name]):
        assert expected in script, f"{expected!r} not in the shipped {name} script:\n{script}"

    config = _config_from_source(name, tmp_path, SITE_EDITS[name])
    config.run_dir = str(tmp_path / "runinfo")
    [executor] = config.executors
    assert (type(executor), executor.label, executor.address) == \
        (type(shipped_executor), shipped_executor.label, shipped_executor.address)
    assert (type(executor.provider.launcher), executor.provider.walltime, executor.provider.partition) == \
        (SrunLauncher, provider.walltime, "debug")
    parsl_repro.load(config)
    try:
        square, job_id = _square_where_app()(7).result(timeout=120)
        assert square == 49 and job_id in executor.provider.resources
    finally:
        parsl_repro.dfk().cleanup()
