"""``File``: a file named by a local path or a URL, as apps take it in ``inputs`` and ``outputs``."""
from __future__ import annotations

import logging
import os
from urllib.parse import urlparse

from parsl_repro.typecheck import typechecked_config

logger = logging.getLogger(__name__)


class File:
    """A file known by a URL (``file:///data/x.txt``, ``x.txt``, ``globus://ep/x``, ...).

    ``scheme`` is ``file`` for a plain path. ``filepath`` is where the file can be opened from
    here: the ``local_path`` that staging set, else the path of a ``file`` URL.
    """

    @typechecked_config
    def __init__(self, url: os.PathLike | str) -> None:
        self.url = str(os.fspath(url))
        parsed = urlparse(self.url)
        self.scheme = parsed.scheme or "file"
        self.netloc = parsed.netloc
        self.path = parsed.path
        self.filename = os.path.basename(self.path)
        self.local_path: str | None = None

    def cleancopy(self) -> File:
        """A copy with only the URL, without any staging-assigned local path."""
        return File(self.url)

    def __str__(self) -> str:
        return self.filepath

    def __repr__(self) -> str:
        parts = [f"{type(self).__name__} at 0x{id(self):x}", f"url={self.url}", f"scheme={self.scheme}",
                 f"netloc={self.netloc}", f"path={self.path}", f"filename={self.filename}"]
        if self.local_path is not None:
            parts.append(f"local_path={self.local_path}")
        return f"<{' '.join(parts)}>"

    def __fspath__(self) -> str:
        return self.filepath

    @property
    def filepath(self) -> str:
        """The path to open this file at from the current process."""
        if self.local_path is not None:
            return self.local_path
        if self.scheme == "file":
            return self.path
        raise ValueError(f"No local_path set for {self!r}: a {self.scheme}:// file must be staged before it is opened")
