"""The typed messages between the executor and its interchange, and the lost-task reports.

``protocol`` moves frames; this module says what the JSON frames among them mean::

    executor -> interchange   COMMAND CommandRequest          a ``Command``, and its target if it has one
    interchange -> executor   COMMAND <the command's reply>   one reply type per command (``Command.reply_type``),
                                                              or ``CommandFailedReply`` if it raised
                              EVENTS PoolEvent PoolEvent ...  pools registering, turning busy or idle, leaving
    pool or interchange       LOST payload: TaskLost          a worker or a whole pool went away with the task
      -> executor

Pool activity is decided by the interchange alone: it sends ``BUSY`` when work reaches an idle
pool, ``IDLE`` once a pool has had no task for ``IDLE_REPORT_AFTER`` seconds (or, for a pool
idle at that moment, when the interchange stops), and ``STOPPED`` for each pool still
connected when it stops. The executor turns each event into one ``NodeSeen``.

Each message is one JSON object (``encode``/``decode``): its fields, enums by value, and a
``type`` key naming its class. JSON, not pickle: these frames never carry code, and the same
decoder serves the lost-task reports that pools send over the network.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from parsl_repro.executors.high_throughput import protocol as p
from parsl_repro.executors.high_throughput.errors import ManagerLost, WorkerLost


# --- commands ------------------------------------------------------------------------------------------
class Command(enum.Enum):
    """What the executor can ask its interchange. Each command has exactly one reply type."""

    CONNECTED_MANAGERS = "connected_managers"
    MANAGERS_PACKAGES = "managers_packages"
    REGISTERED_BLOCKS = "registered_blocks"
    WORKER_COUNT = "worker_count"
    OUTSTANDING = "outstanding"
    WORKER_PORT = "worker_port"
    HOLD_BLOCK = "hold_block"
    HOLD_MANAGER = "hold_manager"

    @property
    def reply_type(self) -> type[Reply]:
        """The one type of reply the interchange gives to this command."""
        return REPLY_TYPES[self]


PARSL_COMMANDS = {"MANAGERS": Command.CONNECTED_MANAGERS, "MANAGERS_PACKAGES": Command.MANAGERS_PACKAGES,
                  "CONNECTED_BLOCKS": Command.REGISTERED_BLOCKS, "WORKERS": Command.WORKER_COUNT,
                  "OUTSTANDING_C": Command.OUTSTANDING, "WORKER_BINDS": Command.WORKER_PORT}
"""Parsl's command-channel spellings (``command_client.run("MANAGERS")``) and the commands they mean."""


@dataclass(frozen=True)
class CommandRequest:
    """One command to the interchange. ``target`` is the block id for ``HOLD_BLOCK`` and the pool
    (manager) id for ``HOLD_MANAGER``; the other commands take none."""

    command: Command
    target: str = ""


class Reply(ABC):
    """Base of the interchange's replies. ``value`` is the reply in the shape Parsl's command
    channel gives it (a list of dicts for ``MANAGERS``, a number for ``WORKERS``, ...)."""

    @property
    @abstractmethod
    def value(self) -> Any:
        """The reply as Parsl's command channel answers it."""


@dataclass(frozen=True)
class PoolInfo:
    """One connected worker pool (manager) as the interchange sees it: an entry of
    ``connected_managers()``. ``idle_duration`` is 0 while the pool holds tasks."""

    manager: str
    block_id: str
    hostname: str
    worker_count: int
    tasks: int
    active: bool
    draining: bool
    idle_duration: float
    python_version: str
    parsl_version: str
    pid: int | None


@dataclass(frozen=True)
class ConnectedManagersReply(Reply):
    managers: list[PoolInfo]

    @property
    def value(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(pool) for pool in self.managers]


@dataclass(frozen=True)
class ManagersPackagesReply(Reply):
    packages: dict[str, dict[str, str]]  # pool id -> {distribution: version}

    @property
    def value(self) -> dict[str, dict[str, str]]:
        return self.packages


@dataclass(frozen=True)
class RegisteredBlocksReply(Reply):
    block_ids: list[str]  # every block whose pools ever registered, sorted

    @property
    def value(self) -> list[str]:
        return self.block_ids


@dataclass(frozen=True)
class WorkerCountReply(Reply):
    workers: int  # in the connected pools that still take tasks

    @property
    def value(self) -> int:
        return self.workers


@dataclass(frozen=True)
class OutstandingReply(Reply):
    tasks: int  # queued at the interchange or held by pools

    @property
    def value(self) -> int:
        return self.tasks


@dataclass(frozen=True)
class WorkerPortReply(Reply):
    port: int

    @property
    def value(self) -> int:
        return self.port


@dataclass(frozen=True)
class HoldBlockReply(Reply):
    block_id: str
    pools_held: int  # its pools connected now; later ones are held as they register

    @property
    def value(self) -> bool:
        return True


@dataclass(frozen=True)
class HoldManagerReply(Reply):
    manager: str
    found: bool  # False: no such pool is connected

    @property
    def value(self) -> bool:
        return True


@dataclass(frozen=True)
class CommandFailedReply(Reply):
    """The interchange could not carry out ``command`` (None: the request itself was malformed);
    its log has the traceback."""

    command: Command | None
    error: str

    @property
    def value(self) -> dict[str, str]:
        return {"error": self.error}


REPLY_TYPES: dict[Command, type[Reply]] = {
    Command.CONNECTED_MANAGERS: ConnectedManagersReply, Command.MANAGERS_PACKAGES: ManagersPackagesReply,
    Command.REGISTERED_BLOCKS: RegisteredBlocksReply, Command.WORKER_COUNT: WorkerCountReply,
    Command.OUTSTANDING: OutstandingReply, Command.WORKER_PORT: WorkerPortReply,
    Command.HOLD_BLOCK: HoldBlockReply, Command.HOLD_MANAGER: HoldManagerReply,
}


# --- pool events ---------------------------------------------------------------------------------------
class PoolEventKind(enum.Enum):
    """What happened to a worker pool; the first three leave it connected (``PoolEvent.active``)."""

    REGISTERED = "registered"
    BUSY = "busy"
    IDLE = "idle"
    LOST = "lost"
    DRAINED = "drained"
    STOPPED = "stopped"


@dataclass(frozen=True)
class PoolEvent:
    """One change in a worker pool's life, as the interchange saw it at ``time`` (time.time()):
    everything its node record (``NodeSeen``) needs. ``reason`` says why a pool was lost."""

    ACTIVE: ClassVar[frozenset[PoolEventKind]] = frozenset(
        {PoolEventKind.REGISTERED, PoolEventKind.BUSY, PoolEventKind.IDLE})

    kind: PoolEventKind
    manager: str
    time: float
    hostname: str
    block_id: str
    worker_count: int
    cpu_count: int
    total_memory: int
    python_version: str
    reason: str = ""

    @property
    def active(self) -> bool:
        """Whether the pool is still connected after this event."""
        return self.kind in self.ACTIVE


# --- lost tasks ----------------------------------------------------------------------------------------
class LostKind(enum.Enum):
    WORKER = "worker"
    MANAGER = "manager"


@dataclass(frozen=True)
class TaskLost:
    """The payload of a ``LOST`` result: the worker process running the task died (sent by its
    pool), or the whole pool went away (sent by the interchange). ``worker`` is the worker's rank;
    ``pid`` and ``exitcode`` are the worker process's."""

    kind: LostKind
    manager: str
    hostname: str
    block_id: str
    reason: str = ""
    worker: int | None = None
    pid: int | None = None
    exitcode: int | None = None

    def exception(self) -> WorkerLost | ManagerLost:
        """The error the task's future fails with."""
        if self.kind is LostKind.WORKER:
            return WorkerLost(self.worker, self.hostname, self.block_id, self.pid, self.exitcode)
        return ManagerLost(self.manager, self.hostname, self.block_id, self.reason or None)


# --- encoding ------------------------------------------------------------------------------------------
Message = CommandRequest | Reply | PoolEvent | TaskLost

_TYPES: dict[str, type] = {cls.__name__: cls for cls in (CommandRequest, PoolEvent, TaskLost, CommandFailedReply,
                                                         *REPLY_TYPES.values())}


def encode(message: Message) -> bytes:
    """One JSON frame: the message's fields and its type's name."""
    return p.dumps({"type": type(message).__name__, **_plain(message)})


def decode(frame: bytes) -> Message:
    """The message ``encode`` made. Raises ``ValueError`` for an unknown type, ``TypeError`` for
    missing or unknown fields, and whatever JSON and enum decoding raise for malformed values."""
    data = p.loads(frame)
    if not isinstance(data, dict):
        raise ValueError(f"a message must be a JSON object, not {type(data).__name__}")
    name = data.pop("type", None)
    cls = _TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown message type {name!r}")
    return _build(cls, data)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _build(cls: type, data: dict[str, Any]) -> Any:
    hints = _field_types(cls)
    unknown = set(data) - set(hints)
    if unknown:
        raise TypeError(f"{cls.__name__} has no fields {sorted(unknown)}")
    return cls(**{name: _typed(hints[name], value) for name, value in data.items()})


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _typed(hint: Any, value: Any) -> Any:
    """``value`` (decoded JSON) as the type ``hint`` names: enums and dataclasses rebuilt."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_typed(item, v) for v in value]
    if origin is dict:
        _, item = typing.get_args(hint)
        return {k: _typed(item, v) for k, v in value.items()}
    if origin is not None:  # X | None
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _typed(inner, value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value)
    return value
