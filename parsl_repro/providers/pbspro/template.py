"""The batch script a PBS Pro block runs, in ``string.Template`` syntax (``${name}``).

One ``select`` chunk per node (``ncpus`` each, plus ``select_options`` such as ``:ngpus=4``);
``job_stdout_path``/``job_stderr_path`` are paths on the scheduler's host.
"""

template_string = """#!/bin/bash

#PBS -S /bin/bash
#PBS -N ${jobname}
#PBS -m n
#PBS -l walltime=$walltime
#PBS -l select=${nodes_per_block}:ncpus=${ncpus}${select_options}
#PBS -o ${job_stdout_path}
#PBS -e ${job_stderr_path}
${scheduler_options}

${worker_init}

export JOBNAME="${jobname}"

${user_script}

"""
