"""Expanse (SDSC, ACCESS): 2-node blocks in the ``compute`` partition, up to 32 workers per node.

Fill in your allocation, and ``worker_init`` if your environment needs it.
"""
from parsl_repro.config import Config
from parsl_repro.executors import HighThroughputExecutor
from parsl_repro.launchers import SrunLauncher
from parsl_repro.providers import SlurmProvider
from parsl_repro.usage_tracking.levels import LEVEL_1

config = Config(
    executors=[
        HighThroughputExecutor(
            label='Expanse_CPU_Multinode',
            max_workers_per_node=32,
            provider=SlurmProvider(
                'compute',
                account='YOUR_ALLOCATION_ON_EXPANSE',
                launcher=SrunLauncher(),
                # extra #SBATCH lines for the block's job script
                scheduler_options='',
                # shell commands each block runs before its workers start (modules, environments)
                worker_init='',
                walltime='01:00:00',
                init_blocks=1,
                max_blocks=1,
                nodes_per_block=2,
            ),
        )
    ],
    usage_tracking=LEVEL_1,  # accepted for compatibility; parsl_repro sends nothing
)
