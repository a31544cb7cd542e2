"""Run one task from its apply message: what a worker process does with each task it is handed.

If the message carries a resource specification, each of its entries is visible to the task as an
environment variable ``PARSL_<KEY>`` (upper-cased; for example ``{"num_nodes": 2}`` gives
``PARSL_NUM_NODES=2``), as in Parsl's workers, so that MPI launch wrappers and bash apps can read
them. Unlike Parsl, the variables are restored when the task ends, so one task's specification
never leaks into the next task on the same worker. Because the environment belongs to the whole
process, run one task at a time per process.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from parsl_repro.serialize import unpack_res_spec_apply_message
from parsl_repro.serialize.facade import _name_of

logger = logging.getLogger(__name__)


def execute_task(bufs: bytes) -> Any:
    """Unpack a task packed by ``pack_apply_message`` or ``pack_res_spec_apply_message`` and run it.

    Returns what the function returns; an exception the function raises propagates unchanged.
    Only call this on bytes from an authenticated peer: unpacking runs code the sender chose.
    """
    return execute_task_named(bufs)[1]


def execute_task_named(bufs: bytes) -> tuple[str, Any]:
    """``execute_task``, also naming the function that ran: ``(its name, what it returned)``, so that a
    worker can say whose return value could not be sent back. Same contract as ``execute_task`` otherwise.
    """
    func, args, kwargs, resource_specification = unpack_res_spec_apply_message(bufs)
    name = _name_of(func)  # as packing errors name it
    if not resource_specification:
        return name, func(*args, **kwargs)
    with _resource_environment(resource_specification):
        return name, func(*args, **kwargs)


@contextlib.contextmanager
def _resource_environment(resource_specification: Mapping[str, Any]) -> Iterator[None]:
    names = {f"PARSL_{str(key).upper()}": str(value) for key, value in resource_specification.items()}
    previous = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    logger.debug("Task environment from its resource specification: %s", names)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
