"""The script an Azure block's VM runs at first boot (passed as custom data, which cloud-init
runs as root), in ``string.Template`` syntax (``${name}``)."""

template_string = """#!/bin/bash
cd ~
export JOBNAME="${jobname}"
${worker_init}

${user_script}

# Power off once the workers exit, so the VM stops using its cores (a powered-off VM still
# holds its allocation and costs until it is deallocated or deleted: cancel deletes it).
if ! ${linger}
then
    shutdown -h now
fi
"""
