"""The batch script an LSF block runs, in ``string.Template`` syntax (``${name}``).

``walltime`` is in whole minutes (``#BSUB -W``); the node or core request and the project and
queue lines arrive in ``scheduler_options``. ``submit_script_dir`` is the script's directory on
the scheduler's host.
"""

template_string = """#!/bin/bash

#BSUB -W ${walltime}
#BSUB -J ${jobname}
#BSUB -o ${submit_script_dir}/${jobname}.submit.stdout
#BSUB -e ${submit_script_dir}/${jobname}.submit.stderr
${scheduler_options}

${worker_init}

export JOBNAME="${jobname}"

$user_script
"""
