"""Delta (NCSA, ACCESS): one A100 GPU node per block (``gpuA100x4``), one worker per node.

Fill in your allocation and a scratch directory of yours, and ``worker_init`` if your environment needs it.
"""
from parsl_repro.config import Config
from parsl_repro.executors import HighThroughputExecutor
from parsl_repro.launchers import SrunLauncher
from parsl_repro.providers import SlurmProvider
from parsl_repro.usage_tracking.levels import LEVEL_1

config = Config(
    executors=[
        HighThroughputExecutor(
            label='Delta_GPU_Executor',
            working_dir='/scratch/path/to/your/directory',
            max_workers_per_node=1,
            provider=SlurmProvider(
                partition='gpuA100x4',
                account='YOUR_ALLOCATION_ON_DELTA',
                constraint="scratch",  # nodes that mount /scratch
                nodes_per_block=1,
                cores_per_node=32,
                mem_per_node=220,  # GB
                init_blocks=1,
                max_blocks=1,
                walltime='00:30:00',
                # extra #SBATCH lines for the block's job script: here, one GPU bound to the nearest cores
                scheduler_options='#SBATCH --gpus-per-node=1 --gpu-bind=closest',
                # shell commands each block runs before its workers start (modules, environments)
                worker_init='',
                exclusive=False,
                launcher=SrunLauncher(),
            ),
        )
    ],
    usage_tracking=LEVEL_1,  # accepted for compatibility; parsl_repro sends nothing
)
