"""Midway (UChicago RCC): 2-node blocks of 30 minutes, two workers per node.

Fill in the partition (e.g. ``broadwl``) and ``worker_init``.
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
            label='Midway_HTEX_multinode',
            # Parsl uses address_by_interface('bond0'), the login node's interface that compute nodes
            # reach; off Midway, where there is no bond0, this falls back to address_by_hostname().
            address=address_by_interface_or_hostname('bond0'),
            worker_debug=False,
            max_workers_per_node=2,
            provider=SlurmProvider(
                'YOUR_PARTITION',  # e.g. 'broadwl'
                launcher=SrunLauncher(),
                nodes_per_block=2,
                init_blocks=1,
                min_blocks=1,
                max_blocks=1,
                # extra #SBATCH lines for the block's job script, e.g. '#SBATCH --constraint=knl,quad,cache'
                scheduler_options='',
                # shell commands each block runs before its workers start (modules, environments)
                worker_init='',
                walltime='00:30:00'
            ),
        )
    ],
    usage_tracking=LEVEL_1,  # accepted for compatibility; parsl_repro sends nothing
)
