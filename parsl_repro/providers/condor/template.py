"""The two files an HTCondor block is made of, in ``string.Template`` syntax (``${name}``).

``template_string`` is the submit description given to ``condor_submit``: it runs ``/bin/bash``
on ``job_script`` (the second file, transferred with ``transfer_input_files``) and keeps the job
in the queue after it ends (``leave_in_queue``), so that ``condor_q`` still reports how it ended.
``user_script_template`` is that job script: ``worker_init`` then the launcher's text.
"""

template_string = """
universe                = vanilla
should_transfer_files   = YES
when_to_transfer_output = ON_EXIT_OR_EVICT
Transfer_Executable     = false
transfer_input_files    = ${input_files}
machine_count           = ${nodes}
output                  = ${submit_script_dir}/${job_name}.stdout
error                   = ${submit_script_dir}/${job_name}.stderr
log                     = ${submit_script_dir}/${job_name}.log
executable              = /bin/bash
arguments               = ${job_script}
requirements            = ${requirements}
+projectname            = ${project}
leave_in_queue          = TRUE
environment             = "${environment}"
${scheduler_options}

queue

"""

user_script_template = """${worker_init}
${user_script}
"""
