"""The provenance schema: the one statement of every table, as SQLAlchemy 2.0 typed models.

A superset of Parsl's monitoring schema (``workflow``, ``task``, ``try``, ``status``, ``resource``,
``node``, ``block`` keep Parsl's table and column names, so queries written for Parsl's
monitoring database work here), plus what reproducibility needs: the run's environment
(``environment``), app identities (``app``), task-to-task edges (``dependency``), files by
content (``file``, ``file_use``) and stored results for memoization (``result``).

``workflow`` is the run record (DESIGN.md calls it ``run``). **Every stored time is UTC**: the
``DateTime`` columns hold naive values in UTC (whatever the time zone of the machine that ran the
workflow); ``parsl_repro.monitoring.queries`` returns them as timezone-aware UTC datetimes, and
``parsl-repro`` shows them in local time with the zone's name (``--json``: ISO 8601 with the offset).
The writer, the queries, the CLI and the dashboard import these models; nothing else states the
schema.
"""
from __future__ import annotations

import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 8
"""Bump on every change of the tables below, with a migration step in ``schema.py``."""


class Base(DeclarativeBase):
    pass


class SchemaInfo(Base):
    """Key/value facts about the store itself: ``schema_version``, ``created_by``."""
    __tablename__ = "schema_info"
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Environment(Base):
    """One row per distinct set of installed packages (shared by the runs that had it)."""
    __tablename__ = "environment"
    packages_digest: Mapped[str] = mapped_column(Text, primary_key=True)
    packages: Mapped[str] = mapped_column(Text)  # JSON list of [name, version]


class Workflow(Base):
    """A run: where, when, by whom, with which script, code version and environment, and how it ended."""
    __tablename__ = "workflow"
    run_id: Mapped[str] = mapped_column(Text, primary_key=True)
    workflow_name: Mapped[str | None] = mapped_column(Text)
    workflow_version: Mapped[str | None] = mapped_column(Text)
    time_began: Mapped[datetime.datetime] = mapped_column(index=True)
    time_completed: Mapped[datetime.datetime | None]
    host: Mapped[str] = mapped_column(Text)
    user: Mapped[str] = mapped_column(Text)
    rundir: Mapped[str] = mapped_column(Text)
    tasks_failed_count: Mapped[int] = mapped_column(Integer, default=0)
    tasks_completed_count: Mapped[int] = mapped_column(Integer, default=0)
    # beyond Parsl
    runinfo_dir: Mapped[str | None] = mapped_column(Text)  # the config's run_dir: where checkpoints are looked up
    outcome: Mapped[str | None] = mapped_column(Text)  # running|completed|failed|interrupted|incomplete|killed|...
    pid: Mapped[int | None] = mapped_column(Integer)  # of the submitting process, to tell killed runs from live ones
    script_path: Mapped[str | None] = mapped_column(Text)
    script_sha256: Mapped[str | None] = mapped_column(Text)
    argv: Mapped[str | None] = mapped_column(Text)  # JSON list, secrets redacted
    cwd: Mapped[str | None] = mapped_column(Text)
    python_version: Mapped[str | None] = mapped_column(Text)
    platform: Mapped[str | None] = mapped_column(Text)
    packages_digest: Mapped[str | None] = mapped_column(ForeignKey("environment.packages_digest"))
    git_repository: Mapped[str | None] = mapped_column(Text)
    git_commit: Mapped[str | None] = mapped_column(Text)
    git_dirty: Mapped[bool | None] = mapped_column(Boolean)
    git_diff_sha256: Mapped[str | None] = mapped_column(Text)
    config_summary: Mapped[str | None] = mapped_column(Text)
    parent_run_id: Mapped[str | None] = mapped_column(Text)
    parsl_repro_version: Mapped[str | None] = mapped_column(Text)
    # {"enabled", "from_store" (every earlier run), "runs", "files" (tasks.pkl read), "results"}
    memo_sources: Mapped[str | None] = mapped_column(Text)  # JSON: what the memo table started with (schema 4)
    replay_of: Mapped[str | None] = mapped_column(Text)  # the run this one replays (parsl-repro replay; schema 7)


class App(Base):
    """A function's identity: its normalised source and what it references, by digest."""
    __tablename__ = "app"
    app_digest: Mapped[str] = mapped_column(Text, primary_key=True)
    qualname: Mapped[str] = mapped_column(Text)
    module: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)  # python | bash | join
    source: Mapped[str | None] = mapped_column(Text)
    components: Mapped[str | None] = mapped_column(Text)  # JSON {component: digest}
    recipe: Mapped[str | None] = mapped_column(Text)  # JSON: how to rebuild it for a replay (memo.recipe; schema 7)


class Task(Base):
    """One app call in one run."""
    __tablename__ = "task"
    run_id: Mapped[str] = mapped_column(Text, ForeignKey("workflow.run_id"), primary_key=True)
    task_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_depends: Mapped[str | None] = mapped_column(Text)
    task_func_name: Mapped[str] = mapped_column(Text)
    task_memoize: Mapped[str] = mapped_column(Text)  # 'True' / 'False', as Parsl stores it
    task_hashsum: Mapped[str | None] = mapped_column(Text, index=True)  # the memo key
    task_inputs: Mapped[str | None] = mapped_column(Text)
    task_outputs: Mapped[str | None] = mapped_column(Text)
    task_stdin: Mapped[str | None] = mapped_column(Text)
    task_stdout: Mapped[str | None] = mapped_column(Text)
    task_stderr: Mapped[str | None] = mapped_column(Text)
    task_time_invoked: Mapped[datetime.datetime | None]
    task_time_returned: Mapped[datetime.datetime | None]
    task_fail_count: Mapped[int] = mapped_column(Integer, default=0)
    task_fail_cost: Mapped[float] = mapped_column(Float, default=0.0)
    # beyond Parsl
    task_status_name: Mapped[str | None] = mapped_column(Text)  # the latest state
    app_kind: Mapped[str | None] = mapped_column(Text)
    app_digest: Mapped[str | None] = mapped_column(Text)
    executor: Mapped[str | None] = mapped_column(Text)
    args_repr: Mapped[str | None] = mapped_column(Text)  # bounded, readable
    memo_components: Mapped[str | None] = mapped_column(Text)  # JSON {component: digest}
    cache_note: Mapped[str | None] = mapped_column(Text)  # why this task was not cached / not a hit
    result_digest: Mapped[str | None] = mapped_column(Text)  # sha256 of the serialized result (every task, schema 5)
    args_digest: Mapped[str | None] = mapped_column(Text, index=True)  # sha256 of the serialized arguments
    args_note: Mapped[str | None] = mapped_column(Text)  # "not replayable: ..." when the arguments were not stored
    command: Mapped[str | None] = mapped_column(Text)  # a bash app's rendered command line, as its last try ran it
    # JSON [[path, task id, kind], ...]: where the call held another task's future (kind "result")
    # or output file (kind "output"), path a list of positions and keys into (args, kwargs) (schema 7)
    arg_futures: Mapped[str | None] = mapped_column(Text)
    launched_by: Mapped[int | None] = mapped_column(Integer)  # the join app task whose code submitted it (schema 7)
    memo_source_run: Mapped[str | None] = mapped_column(Text)
    memo_source_task: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)  # of the final error, when it failed (schema 6)
    # the dashboard's counts by state, and by app and state, of one run (schema 6)
    __table_args__ = (Index("ix_task_run_state", "run_id", "task_status_name"),
                      Index("ix_task_run_app_state", "run_id", "task_func_name", "task_status_name"))


class Try(Base):
    """One attempt to run a task on an executor."""
    __tablename__ = "try"
    run_id: Mapped[str] = mapped_column(Text, primary_key=True)
    task_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    try_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    block_id: Mapped[str | None] = mapped_column(Text)
    hostname: Mapped[str | None] = mapped_column(Text)
    task_executor: Mapped[str] = mapped_column(Text)
    task_try_time_launched: Mapped[datetime.datetime | None]
    task_try_time_running: Mapped[datetime.datetime | None]
    task_try_time_returned: Mapped[datetime.datetime | None]
    task_fail_history: Mapped[str | None] = mapped_column(Text)
    task_joins: Mapped[str | None] = mapped_column(Text)
    # beyond Parsl
    pid: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    manager: Mapped[str | None] = mapped_column(Text)  # the worker pool that ran it (schema 3)
    traceback: Mapped[str | None] = mapped_column(Text)  # of the error, when the try failed (schema 6)


class Status(Base):
    """Every state change of every task, with its cause."""
    __tablename__ = "status"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(Text, ForeignKey("workflow.run_id"))
    task_id: Mapped[int] = mapped_column(Integer)
    try_id: Mapped[int] = mapped_column(Integer)
    task_status_name: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[datetime.datetime]
    # beyond Parsl
    previous_status_name: Mapped[str | None] = mapped_column(Text)
    cause: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_status_run_task", "run_id", "task_id"),)


class Dependency(Base):
    """An edge: ``task_id`` waited on ``depends_on`` (kind ``data``) or joined it (kind ``join``)."""
    __tablename__ = "dependency"
    run_id: Mapped[str] = mapped_column(Text, primary_key=True)
    task_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    depends_on: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(Text, primary_key=True, default="data")
    # a task's dependants: covering, so a look-up never reads the table
    __table_args__ = (Index("ix_dependency_run_upstream", "run_id", "depends_on", "task_id"),)


class File(Base):
    """A file as an entity: a URL with a content digest (one row per distinct content seen there)."""
    __tablename__ = "file"
    file_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(Text, index=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    mtime: Mapped[float | None] = mapped_column(Float)
    __table_args__ = (UniqueConstraint("url", "sha256", name="uq_file_url_sha256"),)


class FileUse(Base):
    """A file used by a task try, as input, output, stdout or stderr."""
    __tablename__ = "file_use"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(Text)
    task_id: Mapped[int] = mapped_column(Integer)
    try_id: Mapped[int] = mapped_column(Integer)
    file_id: Mapped[int] = mapped_column(ForeignKey("file.file_id"))
    role: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[datetime.datetime]
    __table_args__ = (Index("ix_file_use_run_task", "run_id", "task_id"), Index("ix_file_use_file", "file_id"),
                      Index("ix_file_use_run_role", "run_id", "role"))


class Argument(Base):
    """A task's arguments, serialized together as ``(args, kwargs)``, stored once per digest however
    many tasks or runs used them (``task.args_digest`` points here)."""
    __tablename__ = "argument"
    digest: Mapped[str] = mapped_column(Text, primary_key=True)
    serializer: Mapped[str] = mapped_column(Text)  # the parsl_repro.serialize method: pickle | dill
    size: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[bytes] = mapped_column(LargeBinary)


class Result(Base):
    """A stored result, by memo key: what a later run reuses instead of running the task again."""
    __tablename__ = "result"
    memo_key: Mapped[str] = mapped_column(Text, primary_key=True)
    run_id: Mapped[str] = mapped_column(Text, primary_key=True)  # a key recomputed in a later run is stored again
    task_id: Mapped[int] = mapped_column(Integer)
    result_digest: Mapped[str] = mapped_column(Text)
    serializer: Mapped[str] = mapped_column(Text)  # pickle | dill
    size: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    outputs: Mapped[str | None] = mapped_column(Text)  # JSON [[path, sha256], ...] of the task's output files
    created: Mapped[datetime.datetime]


class Resource(Base):
    """Resource samples of a task try (Parsl's columns)."""
    __tablename__ = "resource"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(Text, ForeignKey("workflow.run_id"))
    task_id: Mapped[int] = mapped_column(Integer)
    try_id: Mapped[int] = mapped_column(Integer)
    timestamp: Mapped[datetime.datetime]
    resource_monitoring_interval: Mapped[float | None] = mapped_column(Float)
    psutil_process_pid: Mapped[int | None] = mapped_column(Integer)
    psutil_process_memory_percent: Mapped[float | None] = mapped_column(Float)
    psutil_process_children_count: Mapped[float | None] = mapped_column(Float)
    psutil_process_time_user: Mapped[float | None] = mapped_column(Float)
    psutil_process_time_system: Mapped[float | None] = mapped_column(Float)
    psutil_process_memory_virtual: Mapped[float | None] = mapped_column(Float)
    psutil_process_memory_resident: Mapped[float | None] = mapped_column(Float)
    psutil_process_disk_read: Mapped[float | None] = mapped_column(Float)
    psutil_process_disk_write: Mapped[float | None] = mapped_column(Float)
    psutil_process_status: Mapped[str | None] = mapped_column(Text)
    psutil_cpu_num: Mapped[str | None] = mapped_column(Text)
    psutil_process_num_ctx_switches_voluntary: Mapped[float | None] = mapped_column(Float)
    psutil_process_num_ctx_switches_involuntary: Mapped[float | None] = mapped_column(Float)
    __table_args__ = (Index("ix_resource_run_task", "run_id", "task_id"),)


class Node(Base):
    """A worker node (manager) seen by an executor (Parsl's columns)."""
    __tablename__ = "node"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(Text)
    hostname: Mapped[str] = mapped_column(Text)
    uid: Mapped[str] = mapped_column(Text)
    block_id: Mapped[str] = mapped_column(Text)
    cpu_count: Mapped[int] = mapped_column(Integer)
    total_memory: Mapped[int] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean)
    worker_count: Mapped[int] = mapped_column(Integer)
    python_v: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[datetime.datetime]
    last_heartbeat: Mapped[datetime.datetime]
    executor_label: Mapped[str | None] = mapped_column(Text)  # the site (executor) the pool served; schema 8


class Block(Base):
    """A block's state changes (Parsl's columns)."""
    __tablename__ = "block"
    run_id: Mapped[str] = mapped_column(Text, primary_key=True)
    executor_label: Mapped[str] = mapped_column(Text, primary_key=True)
    block_id: Mapped[str] = mapped_column(Text, primary_key=True)
    timestamp: Mapped[datetime.datetime] = mapped_column(primary_key=True)
    job_id: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(Text)  # the provider's class and label, "SlurmProvider slurm"
    host: Mapped[str | None] = mapped_column(Text)  # where its scheduler commands ran: the channel's host
    script_sha256: Mapped[str | None] = mapped_column(Text)  # sha256 of the submit script the job ran
    message: Mapped[str | None] = mapped_column(Text)  # why it failed or ended, when the provider says
