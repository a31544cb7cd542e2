"""Block error handlers: decide, after each status poll, whether an executor's blocks fail so
consistently that it should give up.

A handler is called as ``handler(executor, status)`` with the executor's ``{block_id: JobStatus}``
for every block it has launched, and gives up by calling
``executor.set_bad_state_and_fail_all(error)``. FAILED and MISSING blocks count as failures;
blocks that were scaled in, cancelled or timed out do not. Any callable with this signature can
be passed as an executor's ``block_error_handler``; ``functools.partial`` sets ``threshold``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from parsl_repro.jobs.errors import TooManyJobFailuresError
from parsl_repro.jobs.states import JobState, JobStatus

if TYPE_CHECKING:
    from parsl_repro.executors.status_handling import BlockProviderExecutor

FAILURE_STATES = (JobState.FAILED, JobState.MISSING)


def noop_error_handler(executor: BlockProviderExecutor, status: dict[str, JobStatus], threshold: int = 3) -> None:
    """Never gives up (``block_error_handler=False``)."""


def simple_error_handler(executor: BlockProviderExecutor, status: dict[str, JobStatus], threshold: int = 3) -> None:
    """Gives up when every block launched so far has failed, once there are at least as many as the
    provider's ``init_blocks`` (at least one). ``threshold`` is replaced by that count when the
    provider has ``init_blocks``. The default (``block_error_handler=True``)."""
    if executor.provider is None:
        raise ValueError(f"executor {executor.label}: block error handlers need an executor with a provider")
    init_blocks = getattr(executor.provider, "init_blocks", None)
    if init_blocks is not None:
        threshold = max(1, init_blocks)
    failed = _failures(status)
    if len(status) >= threshold and len(failed) == len(status):
        executor.set_bad_state_and_fail_all(_error(failed))


def windowed_error_handler(executor: BlockProviderExecutor, status: dict[str, JobStatus],
                           threshold: int = 3) -> None:
    """Gives up when the ``threshold`` most recently launched blocks (by block id) all failed,
    whatever happened to older blocks."""
    recent = dict(sorted(status.items(), key=lambda item: _block_order(item[0]))[-threshold:])
    failed = _failures(recent)
    if len(failed) == threshold:
        executor.set_bad_state_and_fail_all(_error(failed))


def _block_order(block_id: str) -> tuple[int, int | str]:
    # block ids are decimal counters; compare them as numbers so that '10' comes after '9'
    return (0, int(block_id)) if str(block_id).isdigit() else (1, str(block_id))


def _failures(status: dict[str, JobStatus]) -> dict[str, JobStatus]:
    return {block_id: s for block_id, s in status.items() if s.state in FAILURE_STATES}


def _error(failed: dict[str, JobStatus]) -> TooManyJobFailuresError:
    """One error describing each failed block: its reason, exit code and output."""
    lines = [f"{len(failed)} blocks failed; the executor will accept no more tasks. "
             f"Check the provider settings and worker_init, and each block's output below:"]
    for block_id, s in failed.items():
        lines.append(f"Block {block_id}: {s.state.name}")
        if s.message is not None:
            lines.append(f"\t{s.message}")
        if s.exit_code is not None:
            lines.append(f"\tEXIT CODE: {s.exit_code}")
        for name, text in (("STDOUT", s.stdout_summary), ("STDERR", s.stderr_summary)):
            if text:
                lines.append(f"\t{name}: {text}")
    return TooManyJobFailuresError("\n".join(lines))
