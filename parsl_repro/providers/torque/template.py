"""The batch script a Torque block runs, in ``string.Template`` syntax (``${name}``).

Parsl's placeholders: ``scheduler_options`` comes first so that site lines can set the shell or
the account before the provider's own ``#PBS`` lines; ``submit_script_dir`` is the directory of
the script on the scheduler's host, where the job's ``.submit.stdout``/``.submit.stderr`` go.
"""

template_string = """#!/bin/bash

${scheduler_options}
#PBS -S /bin/bash
#PBS -N ${jobname}
#PBS -m n
#PBS -l walltime=$walltime
#PBS -l nodes=${nodes_per_block}:ppn=${tasks_per_node}
#PBS -o ${submit_script_dir}/${jobname}.submit.stdout
#PBS -e ${submit_script_dir}/${jobname}.submit.stderr

${worker_init}

export JOBNAME="${jobname}"

${user_script}

"""
