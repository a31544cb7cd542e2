"""Events to rows: one handler per event type (``HANDLERS``), each adding to a batch's rows what
its event says. ``apply`` runs a batch of events through them, in order.

No event starts or ends a try: the move to ``launched`` opens it (the executor's label in
``detail``) and the task's next move out of a running state closes it.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from urllib.parse import urlsplit

from parsl_repro.events import (
    AppSeen,
    BlockState,
    FileObserved,
    MemoTableLoaded,
    NodeSeen,
    ResourceSample,
    RunEnded,
    RunStarted,
    TaskArguments,
    TaskCommand,
    TaskCreated,
    TaskInputs,
    TaskJoined,
    TaskKeyed,
    TaskResult,
    TaskReturned,
    TaskState,
    TryPlaced,
)
from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.recorded_values import RenderedArguments, RenderedReturn, ValueRenderer
from parsl_repro.monitoring.rendering import RenderedTask, render, render_inputs
from parsl_repro.monitoring.rows import BatchRows, run_counts, utc
from parsl_repro.task_states import CANCELLED, FAILED_STATES, FINISHED_STATES, SUBMITTED, States
from parsl_repro.utils import redact_secrets

TRYING = frozenset({States.launched.name, States.running.name, States.running_ended.name})
"""States in which a try is open: the move out of one closes it."""
SUCCESS = frozenset({States.exec_done.name, States.joining.name, States.running_ended.name})
"""States whose move out of a try closes it without an error."""
PENDING = States.pending.name
LAUNCHED = States.launched.name


class Writer(Protocol):
    """What a handler asks of the writer it runs in."""

    host: str  # the kernel's host
    kernel_pid: int
    values: ValueRenderer  # for argument and result events that reach the writer unrendered

    def file_digest(self, path: str) -> tuple[str | None, int | None, float | None]:
        """(sha256, size, mtime) of a local file, or Nones when it cannot be read."""


def apply(writer: Writer, rows: BatchRows, events: Iterable[Any]) -> None:
    """Add what ``events`` say to ``rows``, in order; events of other types are ignored."""
    handlers = HANDLERS
    for event in events:
        handler = handlers.get(type(event))
        if handler is not None:
            handler(writer, rows, event)


def _on_run_started(writer: Writer, rows: BatchRows, e: RunStarted) -> None:
    rows.run_starts.append(e)


def _on_task_created(writer: Writer, rows: BatchRows, e: TaskCreated) -> None:
    _on_rendered_task(writer, rows, render(e))


def _on_rendered_task(writer: Writer, rows: BatchRows, e: RenderedTask) -> None:
    task = rows.new_task(e.run_id, e.task_id)
    task["task_func_name"] = e.func_name
    task["task_memoize"] = "True" if e.memoize else "False"
    task["task_depends"] = ",".join(map(str, e.depends_on)) if e.depends_on else None
    task["task_time_invoked"] = e.time
    task["task_inputs"], task["task_outputs"], task["task_stdin"] = e.inputs, e.outputs, e.stdin
    task["task_stdout"], task["task_stderr"] = e.stdout, e.stderr
    task["app_kind"], task["executor"], task["args_repr"] = e.app_kind, e.executor, e.args_repr
    if e.app_digest is not None:
        task["app_digest"] = e.app_digest
    if e.arg_futures is not None:
        task["arg_futures"] = e.arg_futures
    if e.launched_by is not None:
        task["launched_by"] = e.launched_by
    task["task_status_name"] = PENDING
    rows.status.append({"run_id": e.run_id, "task_id": e.task_id, "try_id": 0, "task_status_name": PENDING,
                        "timestamp": e.time, "previous_status_name": None, "cause": SUBMITTED, "detail": None})
    if e.depends_on:
        for dep in dict.fromkeys(e.depends_on):
            rows.dependencies.append({"run_id": e.run_id, "task_id": e.task_id, "depends_on": dep, "kind": "data"})


def _on_task_inputs(writer: Writer, rows: BatchRows, e: TaskInputs) -> None:
    rows.update_task(e.run_id, e.task_id, task_inputs=render_inputs(e.inputs))


def _on_task_state(writer: Writer, rows: BatchRows, e: TaskState) -> None:
    when = e.time  # converted for the database when the batch is written
    rows.status.append({"run_id": e.run_id, "task_id": e.task_id, "try_id": e.try_id, "task_status_name": e.new,
                        "timestamp": when, "previous_status_name": e.old, "cause": e.cause, "detail": e.detail})
    if e.new in FINISHED_STATES:
        values: dict[str, Any] = {"task_status_name": e.new, "task_time_returned": when,  # counts as charged
                                  "task_fail_count": e.fail_count or 0, "task_fail_cost": e.fail_cost or 0.0}
        if e.new in FAILED_STATES:
            values["error"] = e.detail
            values["traceback"] = e.traceback
        rows.update_task(e.run_id, e.task_id, **values)
    else:
        rows.update_task(e.run_id, e.task_id, task_status_name=e.new)
    if e.new == LAUNCHED:
        attempt = rows.new_try(e.run_id, e.task_id, e.try_id)
        attempt["task_executor"], attempt["task_try_time_launched"] = e.detail, when
    elif e.old in TRYING and e.new not in TRYING:
        error = None if e.new in SUCCESS else f"cancelled: {e.detail}" if e.new == CANCELLED else e.detail
        if e.running:  # ran in the kernel's process (threads): its host and pid
            rows.update_try(e.run_id, e.task_id, e.try_id, task_try_time_returned=when, error=error,
                            task_fail_history=error, traceback=e.traceback, task_try_time_running=e.running,
                            hostname=writer.host, pid=writer.kernel_pid)
        else:
            rows.update_try(e.run_id, e.task_id, e.try_id, task_try_time_returned=when, error=error,
                            task_fail_history=error, traceback=e.traceback)


def _on_task_keyed(writer: Writer, rows: BatchRows, e: TaskKeyed) -> None:
    rows.update_task(e.run_id, e.task_id, task_hashsum=e.memo_key, app_digest=e.app_digest,
                     memo_components=json.dumps(e.components, sort_keys=True), cache_note=e.note)
    if e.source_run is not None:
        rows.update_task(e.run_id, e.task_id, memo_source_run=e.source_run, memo_source_task=e.source_task)


def _on_app_seen(writer: Writer, rows: BatchRows, e: AppSeen) -> None:
    rows.apps.append({"app_digest": e.app_digest, "qualname": e.qualname, "module": e.module, "kind": e.kind,
                      "source": e.source, "components": json.dumps(e.components, sort_keys=True),
                      "recipe": e.recipe})


def _on_task_result(writer: Writer, rows: BatchRows, e: TaskResult) -> None:
    rows.results.append({"memo_key": e.memo_key, "run_id": e.run_id, "task_id": e.task_id,
                         "result_digest": e.result_digest, "serializer": e.serializer, "size": len(e.value),
                         "value": e.value, "outputs": json.dumps([list(o) for o in e.outputs]) if e.outputs else None,
                         "created": utc(e.time)})
    rows.update_task(e.run_id, e.task_id, result_digest=e.result_digest)
    for path, digest in e.outputs:
        _observe(writer, rows, e.run_id, e.task_id, 0, e.time, path, "output", "file", sha256=digest)


def _on_task_arguments(writer: Writer, rows: BatchRows, e: TaskArguments) -> None:
    _on_rendered_arguments(writer, rows, writer.values.arguments(e))


def _on_rendered_arguments(writer: Writer, rows: BatchRows, e: RenderedArguments) -> None:
    rows.update_task(e.run_id, e.task_id, args_digest=e.digest, args_note=e.note)
    if e.value is not None:
        rows.arguments.append({"digest": e.digest, "serializer": e.serializer, "size": e.size, "value": e.value})


def _on_task_returned(writer: Writer, rows: BatchRows, e: TaskReturned) -> None:
    _on_rendered_return(writer, rows, writer.values.returned(e))


def _on_rendered_return(writer: Writer, rows: BatchRows, e: RenderedReturn) -> None:
    if e.digest is not None:
        rows.update_task(e.run_id, e.task_id, result_digest=e.digest)


def _on_task_joined(writer: Writer, rows: BatchRows, e: TaskJoined) -> None:
    rows.update_try(e.run_id, e.task_id, e.try_id, task_joins=",".join(map(str, e.joins)) or None)
    for joined in e.joins:
        rows.dependencies.append({"run_id": e.run_id, "task_id": e.task_id, "depends_on": joined, "kind": "join"})


def _on_task_command(writer: Writer, rows: BatchRows, e: TaskCommand) -> None:
    rows.update_task(e.run_id, e.task_id, command=redact_secrets(e.command))


def _on_file_observed(writer: Writer, rows: BatchRows, e: FileObserved) -> None:
    scheme = urlsplit(e.url).scheme or "file"
    url = e.url if scheme == "file" else redact_secrets(e.url)
    _observe(writer, rows, e.run_id, e.task_id, e.try_id, e.time, url, e.role, scheme, e.sha256, e.size, e.mtime)


def _observe(writer: Writer, rows: BatchRows, run_id: str, task_id: int, try_id: int, t: float, url: str,
             role: str, scheme: str, sha256: str | None = None, size: int | None = None,
             mtime: float | None = None) -> None:
    """A file use: a local file by absolute path, digested here unless the event carried its
    digest and size; any other by URL."""
    if scheme == "file":
        path = url[len("file://"):] if url.startswith("file://") else url
        url = os.path.abspath(path)
        if sha256 is None or size is None:
            digest, size, mtime = writer.file_digest(url)
            sha256 = sha256 or digest
    entity = {"url": url, "sha256": sha256, "size": size, "mtime": mtime}
    use = {"run_id": run_id, "task_id": task_id, "try_id": try_id, "role": role, "timestamp": utc(t)}
    rows.files.append((entity, use))


def _on_try_placed(writer: Writer, rows: BatchRows, e: TryPlaced) -> None:
    rows.update_try(e.run_id, e.task_id, e.try_id, hostname=e.hostname, block_id=e.block_id, manager=e.manager,
                    pid=e.pid, task_try_time_running=e.time)


def _on_block_state(writer: Writer, rows: BatchRows, e: BlockState) -> None:
    rows.inserts.setdefault(m.Block.__table__, []).append({
        "run_id": e.run_id, "executor_label": e.executor, "block_id": e.block_id, "timestamp": utc(e.time),
        "job_id": e.job_id, "status": e.state, "provider": e.provider, "host": e.host,
        "script_sha256": e.script_sha256, "message": e.detail})


def _on_node_seen(writer: Writer, rows: BatchRows, e: NodeSeen) -> None:
    rows.inserts.setdefault(m.Node.__table__, []).append({
        "run_id": e.run_id, "hostname": e.hostname, "uid": e.manager, "block_id": e.block_id or "",
        "cpu_count": e.cpu_count, "total_memory": e.total_memory, "active": e.active,
        "worker_count": e.worker_count, "python_v": e.python_version, "timestamp": utc(e.time),
        "last_heartbeat": utc(e.time), "executor_label": e.executor})


def _on_resource_sample(writer: Writer, rows: BatchRows, e: ResourceSample) -> None:
    rows.inserts.setdefault(m.Resource.__table__, []).append({
        "run_id": e.run_id, "task_id": e.task_id, "try_id": e.try_id, "timestamp": utc(e.time),
        "resource_monitoring_interval": e.interval, "psutil_process_pid": e.pid,
        "psutil_process_memory_percent": e.memory_percent, "psutil_process_children_count": e.children,
        "psutil_process_time_user": e.cpu_user, "psutil_process_time_system": e.cpu_system,
        "psutil_process_memory_virtual": e.memory_virtual, "psutil_process_memory_resident": e.memory_resident,
        "psutil_process_disk_read": e.disk_read, "psutil_process_disk_write": e.disk_write,
        "psutil_process_status": e.status})


def _on_run_ended(writer: Writer, rows: BatchRows, e: RunEnded) -> None:
    rows.workflow_updates.append({"run_id": e.run_id, "time_completed": utc(e.time), "outcome": e.outcome,
                                  **run_counts(e.state_counts)})


def _on_memo_table_loaded(writer: Writer, rows: BatchRows, e: MemoTableLoaded) -> None:
    values = {"run_id": e.run_id, "memo_sources": json.dumps({
        "enabled": e.enabled, "from_store": e.from_store, "runs": list(e.runs), "files": list(e.files),
        "results": e.results})}
    if e.parent_run_id is not None:
        values["parent_run_id"] = e.parent_run_id
    rows.workflow_updates.append(values)


HANDLERS: dict[type, Callable[[Writer, BatchRows, Any], None]] = {
    RunStarted: _on_run_started, TaskCreated: _on_task_created, RenderedTask: _on_rendered_task,
    TaskInputs: _on_task_inputs, TaskState: _on_task_state, TaskKeyed: _on_task_keyed, AppSeen: _on_app_seen,
    TaskResult: _on_task_result, FileObserved: _on_file_observed, TryPlaced: _on_try_placed,
    BlockState: _on_block_state, NodeSeen: _on_node_seen, ResourceSample: _on_resource_sample,
    RunEnded: _on_run_ended, MemoTableLoaded: _on_memo_table_loaded, TaskArguments: _on_task_arguments,
    RenderedArguments: _on_rendered_arguments, TaskReturned: _on_task_returned, RenderedReturn: _on_rendered_return,
    TaskCommand: _on_task_command, TaskJoined: _on_task_joined,
}
"""The handler of each event type the store records."""
