"""Bridges (PSC), driven from a login node: each block is a 2-node job of 10 minutes, one worker per node.

Fill in the partition (e.g. ``RM-small``) and ``worker_init``.
"""
from parsl_repro.config import Config
from parsl_repro.configs import address_by_interface_or_hostname
from parsl_repro.executors import HighThroughputExecutor
from parsl_repro.launchers import SrunLauncher
from parsl_repro.providers import SlurmProvider
from parsl_repro.usage_tracking.levels import LEVEL_1

config = Config(
    executors=[
        HighThroughputExecutor(
            label='Bridges_HTEX_multinode',
            # Parsl uses address_by_interface('ens3f0'), the login node's interface that compute nodes
            # reach; off Bridges, where there is no ens3f0, this falls back to address_by_hostname().
            address=address_by_interface_or_hostname('ens3f0'),
            max_workers_per_node=1,
            provider=SlurmProvider(
                'YOUR_PARTITION_NAME',  # the partition (or QOS), e.g. RM-small
                nodes_per_block=2,
                init_blocks=1,
                # extra #SBATCH lines for the block's job script, e.g. '#SBATCH --gres=gpu:type:n'
                scheduler_options='',
                # shell commands each block runs before its workers start (modules, environments)
                worker_init='',
                launcher=SrunLauncher(),
                walltime='00:10:00',
                # the scheduler can be slow to answer, so give its commands more time
                cmd_timeout=120,
            ),
        )
    ],
    usage_tracking=LEVEL_1,  # accepted for compatibility; parsl_repro sends nothing
)
