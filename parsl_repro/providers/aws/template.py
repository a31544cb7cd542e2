"""The user data an EC2 block's instance runs at boot (cloud-init runs it as root), in
``string.Template`` syntax (``${name}``)."""

template_string = """#!/bin/bash
cd ~
export JOBNAME="${jobname}"
${worker_init}

${user_script}

# Power off once the workers exit: the provider starts instances with shutdown behaviour
# "terminate", so this ends the instance and its costs.
if ! ${linger}
then
    shutdown -h now
fi
"""
