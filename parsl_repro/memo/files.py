"""File content digests for memo keys: sha256 of a file's bytes, cached by its stat signature."""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat as _stat
import threading
import time
from collections import OrderedDict

logger = logging.getLogger(__name__)


class FileDigestCache:
    """The sha256 of files' content, cached by (path, size, mtime_ns, ctime_ns, inode, device).

    A file whose stat is unchanged is not re-read; a rewrite (new size, mtime, ctime or inode) is
    noticed. A file modified less than ``racy_window`` seconds before it was hashed is not cached
    (it is re-read next time), because a second write within the file system's timestamp
    granularity could leave size and mtime unchanged. Thread-safe; holds at most ``max_entries``
    paths, evicting the least recently used. Files are read outside the lock.
    """

    def __init__(self, max_entries: int = 100_000, racy_window: float = 2.0) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.racy_window_ns = int(racy_window * 1e9)
        self._entries: OrderedDict[str, tuple[tuple[int, ...], str]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _signature(st: os.stat_result) -> tuple[int, ...]:
        return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def sha256(self, path: str) -> str:
        """The sha256 hex of the file's content. Raises ``FileNotFoundError`` for a missing file and
        another ``OSError`` for a directory or other non-regular file."""
        path = os.fspath(path)
        key = os.path.abspath(path)
        st = os.stat(path)
        if not _stat.S_ISREG(st.st_mode):
            code = errno.EISDIR if _stat.S_ISDIR(st.st_mode) else errno.EINVAL
            raise OSError(code, "not a regular file, its content cannot be hashed", path)
        signature = self._signature(st)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == signature:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[1]
            self.misses += 1
        for _attempt in range(3):
            with open(path, "rb") as fh:
                before = self._signature(os.fstat(fh.fileno()))
                sha = hashlib.file_digest(fh, "sha256").hexdigest()
                after = self._signature(os.fstat(fh.fileno()))
            if before == after:
                break
            logger.debug("file %s changed while it was being hashed; hashing it again", path)
        else:
            logger.warning("file %s kept changing while it was being hashed; its digest is not cached", path)
            return sha
        if max(after[1], after[2]) >= time.time_ns() - self.racy_window_ns:
            logger.debug("file %s was modified moments ago; its digest is not cached", path)
            return sha
        with self._lock:
            self._entries[key] = (after, sha)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return sha


_default_cache: FileDigestCache | None = None
_default_cache_lock = threading.Lock()


def default_file_cache() -> FileDigestCache:
    """The process-wide cache ``canonical_bytes`` uses when no ``file_digest`` is given."""
    global _default_cache
    with _default_cache_lock:
        if _default_cache is None:
            _default_cache = FileDigestCache()
        return _default_cache
