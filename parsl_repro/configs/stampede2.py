"""Stampede2 (TACC): 2-node blocks of 30 minutes, two workers per node.

Fill in the partition and ``worker_init``. Parsl's version also stages ``globus://`` files through
TACC's Globus endpoint (``storage_access=[GlobusStaging(...)]``); parsl_repro has no Globus staging,
so this executor keeps the default staging providers (local, HTTP and FTP files).
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
            label='Stampede2_HTEX',
            # Parsl uses address_by_interface('em3'), the login node's interface that compute nodes
            # reach; off Stampede2, where there is no em3, this falls back to address_by_hostname().
            address=address_by_interface_or_hostname('em3'),
            max_workers_per_node=2,
            provider=SlurmProvider(
                nodes_per_block=2,
                init_blocks=1,
                min_blocks=1,
                max_blocks=1,
                partition='YOUR_PARTITION',
                # extra #SBATCH lines for the block's job script, e.g. '#SBATCH --constraint=knl,quad,cache'
                scheduler_options='',
                # shell commands each block runs before its workers start (modules, environments)
                worker_init='',
                launcher=SrunLauncher(),
                walltime='00:30:00'
            ),
        )
    ],
    usage_tracking=LEVEL_1,  # accepted for compatibility; parsl_repro sends nothing
)
