"""The batch script a Grid Engine block runs, in ``string.Template`` syntax (``${name}``).

``$$`` is a literal ``$``: Grid Engine reads ``#$`` lines as ``qsub`` options."""

template_string = """#!/bin/bash
#$$ -S /bin/bash
#$$ -o ${job_stdout_path}
#$$ -e ${job_stderr_path}
#$$ -cwd
#$$ -l h_rt=${walltime}
${scheduler_options}

${worker_init}

export JOBNAME="${jobname}"

$user_script
"""
