"""Where a run is recorded: choosing its provenance store (``store_url``) and opening it for the
kernel (``open_store``), before any executor starts."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from parsl_repro.events import EventSink, RunStarted

if TYPE_CHECKING:
    from parsl_repro.config import Config

PROVENANCE_URL_VARIABLE = "PARSL_REPRO_PROVENANCE_URL"
"""The environment variable naming the store of every run whose ``Config`` names none."""


def store_url(config: Config) -> str | None:
    """The database URL this config records runs in, or None when recording is off."""
    from parsl_repro.monitoring.engine import default_url

    if config.provenance is False:
        return None
    if isinstance(config.provenance, str):
        return config.provenance
    endpoint = getattr(config.monitoring, "logging_endpoint", None)
    if isinstance(endpoint, str) and "://" in endpoint and not endpoint.startswith(("udp://", "tcp://")):
        return endpoint
    if os.environ.get(PROVENANCE_URL_VARIABLE):
        return os.environ[PROVENANCE_URL_VARIABLE]
    return default_url(config.run_dir)


def open_store(config: Config, run_dir: str, started: RunStarted) -> tuple[Any, EventSink | None, RunStarted]:
    """Check the run's provenance store (raising if it cannot be used) and start its event sink,
    before any executor starts; return them and ``started`` as recorded.

    The run's row is written from its ``RunStarted``, like every record: it carries where, how and
    with what code the run was started (a ``PendingEnvironment``, which the writer process captures)
    and reaches the writer before this returns. Nothing here waits for the writer process, which
    makes the schema current itself, nor for the capture."""
    url = store_url(config)
    if url is None:
        return None, None, started
    from parsl_repro.monitoring.engine import default_url, prepare_default_store
    from parsl_repro.monitoring.environment import PendingEnvironment
    from parsl_repro.monitoring.shipping import RunStore

    if url == default_url(config.run_dir):
        prepare_default_store(config.run_dir)
    store = RunStore(url, spool_dir=run_dir, initialize_logging=config.initialize_logging).check()
    started = started._replace(environment=PendingEnvironment())
    try:
        sink = store.sink(started)
    except BaseException:
        store.close()
        raise
    return store, sink, started
