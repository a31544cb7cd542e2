"""Anvil (Purdue, ACCESS): one GPU node per block in the ``gpu`` partition, one worker per node.

Fill in your allocation and a scratch directory of yours; ``worker_init`` loads the GPU module tree.
"""
from parsl_repro.config import Config
from parsl_repro.executors import HighThroughputExecutor
from parsl_repro.launchers import SrunLauncher
from parsl_repro.providers import SlurmProvider
from parsl_repro.usage_tracking.levels import LEVEL_1

config = Config(
    executors=[
        HighThroughputExecutor(
            label='Anvil_GPU_Executor',
            working_dir='/anvil/scratch/path/to/your/directory',
            max_workers_per_node=1,
            provider=SlurmProvider(
                partition='gpu',
                account='YOUR_ALLOCATION_ON_ANVIL',
                nodes_per_block=1,
                cores_per_node=4,
                mem_per_node=50,  # GB
                init_blocks=1,
                max_blocks=1,
                walltime='00:30:00',
                # extra #SBATCH lines for the block's job script: here, one GPU
                scheduler_options='#SBATCH --gres gpu:1 --gpus-per-node=1',
                # shell commands each block runs before its workers start (modules, environments)
                worker_init='module load modtree/gpu',
                exclusive=False,
                launcher=SrunLauncher(),
            ),
        )
    ],
    usage_tracking=LEVEL_1,  # accepted for compatibility; parsl_repro sends nothing
)
