# ruff: noqa: UP032  (the seed config is kept as its users wrote it, str.format and all)
"""The original design's multi-site configuration, as its users wrote it, with our import paths.

Two HighThroughputExecutors, one on a Cobalt machine and one on a Slurm cluster, both reached
through ``SSHInteractiveLoginChannel``, with ``working_dir`` and a ``GlobusScheme`` in
``storage_access``. It must construct without a network or a terminal, and load against
loopback stand-ins of its two login nodes: this machine's real sshd (scripts/sshd.sh) plays
both hosts; Slurm there is the real single-node cluster of scripts/slurm.sh; Cobalt cannot run
here, so that site's ``qsub`` is missing and its block fails with the shell's own message.
"""
from __future__ import annotations

import os
import sys

import parsl_repro
from parsl_repro.channels import SSHInteractiveLoginChannel
from parsl_repro.config import Config
from parsl_repro.data_provider.scheme import GlobusScheme
from parsl_repro.executors import HighThroughputExecutor
from parsl_repro.jobs.states import JobState
from parsl_repro.launchers import AprunLauncher
from parsl_repro.providers import CobaltProvider, SlurmProvider

USERNAME = "someone"


def seed_config() -> Config:
    """The seed's config, word for word apart from the package name."""
    return Config(executors=[
        HighThroughputExecutor(
            label="theta_htex",
            working_dir="/home/{}/parsl_work".format(USERNAME),
            storage_access=[GlobusScheme(endpoint_uuid="08925f04-569f-11e7-bef8-22000b9a448b",
                                         endpoint_path="/home/{}".format(USERNAME),
                                         local_path="/home/{}".format(USERNAME))],
            provider=CobaltProvider(
                channel=SSHInteractiveLoginChannel(hostname="thetalogin3.alcf.anl.gov", username=USERNAME,
                                                   script_dir="/home/{}/parsl_scripts".format(USERNAME)),
                queue="debug-flat-quad", account="CSC249ADCD01", nodes_per_block=1, max_blocks=1,
                walltime="00:30:00", launcher=AprunLauncher(),
                worker_init="module load miniconda-3.6/conda-4.4.10"),
        ),
        HighThroughputExecutor(
            label="midway_htex",
            working_dir="/scratch/midway2/{}/parsl_work".format(USERNAME),
            storage_access=[GlobusScheme(endpoint_uuid="af7bda53-6d04-11e5-ba46-22000b92c6ec",
                                         endpoint_path="/", local_path="/")],
            provider=SlurmProvider(
                "westmere",
                channel=SSHInteractiveLoginChannel(hostname="swift.rcc.uchicago.edu", username=USERNAME,
                                                   script_dir="/scratch/midway2/{}/parsl_scripts".format(USERNAME)),
                max_blocks=1, nodes_per_block=1, tasks_per_node=4,
                overrides="module load python/3.6.1+intel-16.0"),
        ),
    ])


def test_the_seed_config_constructs_without_network_or_terminal():
    config = seed_config()
    theta, midway = config.executors
    assert isinstance(theta.provider.channel, SSHInteractiveLoginChannel)
    assert midway.provider.partition == "westmere" and midway.provider.tasks_per_node == 4
    assert "module load python/3.6.1+intel-16.0" in midway.provider.worker_init
    assert midway.provider.channel._client is None  # nothing connected, nothing asked


def test_the_seed_config_loads_against_loopback_stand_ins_of_its_hosts(sshd, slurm_conf, tmp_path):
    asked = []
    config = seed_config()
    venv = os.path.dirname(sys.executable)
    for executor in config.executors:
        channel = executor.provider.channel
        # point each login node at the loopback sshd; the person at the terminal answers here
        channel.hostname, channel.port, channel.username = sshd["host"], sshd["port"], "root"
        channel.key_filename, channel.host_keys_filename = sshd["root_key"], sshd["known_hosts"]
        channel.prompt = lambda question: asked.append(question) or ""
        channel.envs = {"SLURM_CONF": slurm_conf}
        channel.script_dir = str(tmp_path / executor.label / "parsl_scripts")
        executor.working_dir = str(tmp_path / executor.label / "parsl_work")
        executor.address = "127.0.0.1"
        executor.provider.worker_init = f"export PATH={venv}:$PATH\n"
        executor.provider.init_blocks = 1  # Cobalt's default is 0: ask for a block at load
    with parsl_repro.load(Config(executors=config.executors, run_dir=str(tmp_path / "runinfo"))) as dfk:
        for label, complaint in (("theta_htex", "qsub"), ("midway_htex", "westmere")):
            executor = dfk.executors[label]
            assert executor.interchange_proc.pid == "remote"  # its interchange runs on the stand-in host
            assert executor.remote_dir.startswith(str(tmp_path / label / "parsl_work"))
            [status] = executor._status.values()
            assert status.state is JobState.FAILED and complaint in status.message
    assert asked == []  # keys were enough: no prompt
