"""The script a Cobalt block runs, in ``string.Template`` syntax (``${name}``).

Nodes, walltime, queue and account go on ``qsub``'s command line, not in the script;
``$$COBALT_NODEFILE`` is a literal ``$COBALT_NODEFILE`` for the job's shell.
"""

template_string = """#!/bin/bash -e
${scheduler_options}

${worker_init}

echo "Starting Cobalt job script"

echo "----Cobalt Nodefile: -----"
cat $$COBALT_NODEFILE
echo "--------------------------"

export JOBNAME="${jobname}"

$user_script

echo "End of Cobalt job"
"""
