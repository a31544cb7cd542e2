"""The UIUC Campus Cluster, driven from a login node: each block is a 2-node job of 10 minutes, and each
worker takes 16 cores (a whole node).

``worker_init`` activates a conda environment named ``envParsl`` holding parsl_repro; change it to yours.
"""
from parsl_repro.config import Config
from parsl_repro.executors import HighThroughputExecutor
from parsl_repro.launchers import SrunLauncher
from parsl_repro.providers import SlurmProvider
from parsl_repro.usage_tracking.levels import LEVEL_1

config = Config(
    executors=[
        HighThroughputExecutor(
            label="CC_htex",
            worker_debug=False,
            cores_per_worker=16.0,  # one worker per node
            provider=SlurmProvider(
                partition='secondary-fdr',
                nodes_per_block=2,
                init_blocks=1,
                max_blocks=1,
                scheduler_options='',
                cmd_timeout=60,
                walltime='00:10:00',
                launcher=SrunLauncher(),
                worker_init='conda activate envParsl',  # an environment with parsl_repro installed
            ),
        )
    ],
    usage_tracking=LEVEL_1,  # accepted for compatibility; parsl_repro sends nothing
)
