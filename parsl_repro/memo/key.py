"""The memo key of a task: its app's identity and its arguments, each digested canonically."""
from __future__ import annotations

import hashlib
import inspect
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from parsl_repro.data_provider.files import File
from parsl_repro.memo.canonical import digest
from parsl_repro.memo.identity import AppIdentity, app_identity

if TYPE_CHECKING:
    from parsl_repro.dataflow.taskrecord import TaskRecord

_unwrapped: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def identity_of(func: Any) -> AppIdentity:
    """The ``AppIdentity`` of the function an app wraps (through walltime and bash wrappers)."""
    target = _unwrapped.get(func)
    if target is None:
        target = inspect.unwrap(func)
        try:
            _unwrapped[func] = target
        except TypeError:  # not weak-referenceable
            pass
    return app_identity(target)


def memo_key(task: TaskRecord, file_digest: Callable[[str], str] | None = None,
             identity: AppIdentity | None = None) -> tuple[str, dict[str, str]]:
    """The memo key of a resolved task, and the digest of each part it is made of.

    The parts, each a sha256 digest: ``code`` (the app's identity: normalised source, defaults,
    closure values and the module-level names it uses), ``arg N`` for each positional argument,
    ``kwarg NAME`` for each keyword argument not in ``ignore_for_cache`` (``outputs`` by file
    name only, since those files do not exist yet), and ``input PATH`` for each local ``File`` in
    ``inputs=`` (its content, so a renamed file with the same bytes still hits). Arguments are
    serialized canonically (type-tagged, mappings and sets sorted), never pickled.

    Raises ``Uncacheable`` for a value that cannot be hashed deterministically.
    """
    identity = identity or identity_of(task.func)
    components = {"code": identity.digest}
    for position, value in enumerate(task.args):
        components[f"arg {position}"] = digest(value, file_digest=file_digest)
    ignored = set(task.ignore_for_cache)
    for name in sorted(task.kwargs):
        if name in ignored:
            continue
        value = task.kwargs[name]
        components[f"kwarg {name}"] = digest(value, file_digest=file_digest, output_ref=name == "outputs")
        if name == "inputs" and file_digest is not None:
            for f in value or ():
                if isinstance(f, File) and f.scheme == "file":
                    components[f"input {f.filepath}"] = file_digest(f.filepath)
    combined = hashlib.sha256()
    for name in sorted(components):
        if name.startswith("input "):
            continue  # already inside kwarg inputs; listed separately to explain misses by path
        combined.update(name.encode() + b"\0" + components[name].encode() + b"\0")
    return combined.hexdigest(), components


def make_hash(task: TaskRecord) -> str:
    """Parsl's name: the memo key of a resolved task alone (see ``memo_key``)."""
    key, _components = memo_key(task)
    return key
