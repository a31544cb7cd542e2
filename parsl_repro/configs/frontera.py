"""Frontera (TACC), driven from a login node: each block is a 2-node job of 10 minutes, one worker per node.

Fill in your allocation (the ``-A`` line), the partition if not ``normal``, and ``worker_init``.
"""
from parsl_repro.config import Config
from parsl_repro.executors import HighThroughputExecutor
from parsl_repro.launchers import SrunLauncher
from parsl_repro.providers import SlurmProvider
from parsl_repro.usage_tracking.levels import LEVEL_1

config = Config(
    executors=[
        HighThroughputExecutor(
            label="frontera_htex",
            max_workers_per_node=1,
            provider=SlurmProvider(
                cmd_timeout=60,  # the scheduler can be slow to answer
                nodes_per_block=2,
                init_blocks=1,
                min_blocks=1,
                max_blocks=1,
                partition='normal',  # your partition
                scheduler_options='#SBATCH -A <YOUR_ALLOCATION>',  # your allocation, plus any other #SBATCH lines
                # shell commands each block runs before its workers start (modules, environments)
                worker_init='',
                # as long as the partition allows is best; ten minutes here
                walltime='00:10:00',
                launcher=SrunLauncher(),
            ),
        )
    ],
    usage_tracking=LEVEL_1,  # accepted for compatibility; parsl_repro sends nothing
)
