"""The shell text a Kubernetes block's container runs with ``/bin/bash -c``, in
``string.Template`` syntax (``${name}``)."""

template_string = """${worker_init}

${command}
"""
