"""The dashboard's pages, one module each. A page module has ``PATH`` (a Dash Pages path template),
``TITLE``, ``layout(**params)`` (path variables and query parameters arrive as keyword arguments,
as strings) and ``register_callbacks(app)``; ``parsl_repro.viz.app.create_app`` registers every
module in ``PAGES`` in this order. Dash Pages gives a URL to the first template that matches it,
and a template's ``<variable>`` matches any text, slashes included: so a run's sub-pages come
before the run's overview."""
from __future__ import annotations

from parsl_repro.viz.pages import (
    apps,
    compare,
    failures,
    file,
    files,
    graph,
    resources,
    run,
    run_files,
    runs,
    task,
    tasks,
)

PAGES = [runs, graph, failures, apps, task, tasks, resources, run_files, run, files, file, compare]
