"""Where a replay puts the files a run wrote, and how the run's paths are rewritten to point there.

A replay never writes over the recorded run's files. It works in a directory of its own (``root``,
``<runinfo>/replay-NNN/``) that stands for the run's working directory: a relative path the run
wrote (``out/a.txt``) lands there as it is, and an absolute one is rewritten to its place there
(``/data/out/a.txt`` of a run in ``/data`` becomes ``<root>/out/a.txt``; a path outside the working
directory goes under ``<root>/_root/``), and so is a relative one that would climb out of ``root``
(``../x``). Whatever a call declares it writes counts, whether or not the run recorded the write. A
file the run only read stays where it was: a relative one is copied (a large one linked) into the
directory at its relative place (``link_inputs``), so the task reads the verified original's
content under the name it used. ``PathMap`` rewrites a task's arguments (``File`` objects
and strings equal to such a path, inside lists, tuples and dicts) and a bash command line (the
paths appearing in it as words), and maps results back, so that a result naming a written file
compares equal to the recorded one.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable
from typing import Any

from parsl_repro.data_provider.files import File

_MAX_DEPTH = 8
COPY_LIMIT = 64 << 20
"""Read files up to this size are copied into a replay's directory; larger ones are linked."""


class PathMap:
    """The paths of one recorded run, and where a replay puts them.

    ``cwd``: the run's working directory; ``produced``: the absolute paths the run wrote;
    ``root``: the replay's directory, or None to replay in place (nothing is mapped).
    """

    def __init__(self, cwd: str, produced: set[str], root: str | None) -> None:
        self.cwd = cwd
        self.produced = produced
        self.root = root
        self._back: dict[str, str] = {}  # a mapped path -> the path as the run wrote it

    def destination(self, path: str) -> str:
        """Where the replay writes the absolute path ``path`` that the run wrote."""
        if self.root is None:
            return path
        rel = os.path.relpath(path, self.cwd)
        if rel.startswith(os.pardir):
            rel = os.path.join("_root", path.lstrip(os.sep))
        return os.path.join(self.root, rel)

    def inside_root(self, path: str) -> bool:
        return self.root is not None and (path == self.root or path.startswith(self.root + os.sep))

    def absolute(self, path: str) -> str:
        return os.path.normpath(path if os.path.isabs(path) else os.path.join(self.cwd, path))

    def path(self, text: str) -> str:
        """``text`` (a path as the run wrote it) as the replay uses it: a path the replay writes, mapped
        when absolute or when it climbs out of ``root`` (``../x``); anything else as it is (a relative
        path is read or written in ``root``)."""
        if self.root is None:
            return text
        if not os.path.isabs(text) and not text.startswith(os.pardir):
            return text
        full = self.absolute(text)
        if full not in self.produced or self.inside_root(full):
            return text
        mapped = self.destination(full)
        self._back.setdefault(mapped, text)
        return mapped

    @staticmethod
    def _plausible(text: str) -> bool:
        return bool(text) and "\n" not in text and len(text) < 4096 and (os.path.isabs(text)
                                                                        or text.startswith(os.pardir))

    def declare(self, kwargs: dict[str, Any]) -> None:
        """Add what a call declares it writes (``outputs=``, ``stdout=``, ``stderr=``) to the paths the
        replay writes, and make their folders in ``root``."""
        if self.root is None:
            return
        declared = list(kwargs.get("outputs") or ()) if isinstance(kwargs.get("outputs"), list | tuple) else []
        for name in ("stdout", "stderr"):
            spec = kwargs.get(name)
            declared.append(spec[0] if isinstance(spec, tuple) and spec else spec)
        for item in declared:
            text = item.filepath if isinstance(item, File) and item.scheme == "file" else item
            if not isinstance(text, str) or not text or "\n" in text or len(text) >= 4096:
                continue
            full = self.absolute(text)
            if full not in self.produced and not self.inside_root(full):  # not one mapped already
                self.produced.add(full)
                os.makedirs(os.path.dirname(self.destination(full)), exist_ok=True)

    def sha256_mapped_back(self, path: str, limit: int = 4 << 20) -> str | None:
        """The sha256 of the file at ``path`` with every path the replay wrote to in it read back as the
        run's (a bash app's stderr repeats its command line, whose paths were mapped); None when it
        cannot be read, is over ``limit`` bytes, or holds no mapped path."""
        if self.root is None:
            return None
        try:
            if os.path.getsize(path) > limit:
                return None
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        changed = data
        for original in sorted(self.produced, key=len, reverse=True):
            mapped = self.destination(original).encode()
            if mapped in changed:
                changed = changed.replace(mapped, original.encode())
        return hashlib.sha256(changed).hexdigest() if changed != data else None

    def value(self, value: Any) -> Any:
        """``value`` with its local ``File`` objects and path strings rewritten (new containers; the
        original is not changed)."""
        return _rewrite(value, self._forward)

    def _forward(self, value: Any) -> Any:
        if type(value) is str:
            return self.path(value) if self._plausible(value) else value
        if value.scheme != "file":
            return value
        mapped = self.path(value.filepath)
        return value if mapped == value.filepath else File(mapped)

    def command(self, command: str) -> str:
        """A recorded command line with the absolute paths the replay writes mapped, wherever they
        appear as a whole word (not inside a longer path)."""
        if self.root is None:
            return command
        table = {p: self.destination(p) for p in self.produced if p in command}
        if not table:
            return command
        pattern = re.compile(r"(?<![\w./~-])(" + "|".join(re.escape(p) for p in sorted(table, key=len, reverse=True))
                             + r")(?![\w/-])")
        return pattern.sub(lambda match: table[match.group(1)], command)

    def link_inputs(self, paths: set[str]) -> None:
        """Put the read files under the run's working directory into ``root`` at their relative places,
        so that relative names find them: a copy up to ``COPY_LIMIT`` bytes (a task that writes into a
        file it reads then changes the copy, never the original), a symbolic link to a larger one."""
        if self.root is None:
            return
        for path in paths:
            if os.path.relpath(path, self.cwd).startswith(os.pardir):
                continue
            place = self.destination(path)
            if os.path.lexists(place) or not os.path.isfile(path):
                continue
            os.makedirs(os.path.dirname(place), exist_ok=True)
            if os.path.getsize(path) <= COPY_LIMIT:
                shutil.copy2(path, place)
            else:
                os.symlink(path, place)

    def back(self, value: Any) -> Any:
        """A replay's result with the mapped paths in it as the run wrote them."""
        return _rewrite(value, self._backward) if self._back else value

    def _backward(self, value: Any) -> Any:
        if type(value) is str:
            return self._back.get(value, value)
        original = self._back.get(value.filepath) if value.scheme == "file" else None
        return File(original) if original is not None else value


def _rewrite(value: Any, leaf: Callable[[Any], Any], depth: int = 0) -> Any:
    """``value`` with ``leaf`` applied to every string and ``File`` in it, through lists, tuples and
    dicts (copied, ``_MAX_DEPTH`` deep); anything else is kept as it is."""
    kind = type(value)
    if kind is str or isinstance(value, File):
        return leaf(value)
    if depth >= _MAX_DEPTH:
        return value
    if kind is list:
        return [_rewrite(v, leaf, depth + 1) for v in value]
    if kind is tuple:
        return tuple(_rewrite(v, leaf, depth + 1) for v in value)
    if kind is dict:
        return {k: _rewrite(v, leaf, depth + 1) for k, v in value.items()}
    return value


def replace_at(root: Any, path: list, value: Any) -> Any:
    """``root`` (nested lists, tuples and dicts) with the item at ``path`` replaced by ``value``; the
    containers on the way are copied. Raises ``LookupError`` when ``path`` is not in ``root``."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if type(root) is dict:
        copy = dict(root)
        copy[head] = replace_at(root[head], rest, value)
        return copy
    if type(root) in (list, tuple):
        items = list(root)
        items[head] = replace_at(items[head], rest, value)
        return items if type(root) is list else tuple(items)
    raise LookupError(f"nothing to replace at {path!r} in a {type(root).__name__}")


def item_at(root: Any, path: list) -> Any:
    for step in path:
        root = root[step]
    return root
