"""``JSONLogging``: one JSON object per record, one per line, in ``<log_dir>/<log_name>.jsonlog``."""
from __future__ import annotations

import json
import logging
import pathlib
import threading
from collections.abc import Callable
from typing import Any

from parsl_repro.logconfigs.base import LogConfig

logger = logging.getLogger(__name__)


class JSONLogging(LogConfig):
    """Write every logger's records at ``level`` and above as JSON lines.

    It attaches to the root logger, so the records of the workflow's own modules and of other
    libraries are kept too. Each line holds the record's time, process, thread, logger, place,
    level, raw ``msg`` and formatted message, plus every ``parsl.*`` field given as ``extra``
    (``parsl.task``, ``parsl.try``, ...), as text.
    """

    def __init__(self, *, level: int = logging.DEBUG) -> None:
        super().__init__()
        self.level = level

    def __repr__(self) -> str:
        return f"JSONLogging(level={self.level!r})"

    def initialize_logging(self, *, log_dir: pathlib.Path, log_name: str) -> Callable[[], None]:
        log_dir.mkdir(parents=True, exist_ok=True)
        handler = JSONHandler(log_dir / f"{log_name}.jsonlog")
        handler.setLevel(self.level)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root = logging.getLogger()
        previous = root.level
        if previous > self.level:
            root.setLevel(self.level)
        root.addHandler(handler)
        # our own records must reach the root even when a default parsl.log left "parsl_repro" at INFO
        ours = logging.getLogger("parsl_repro")
        ours_previous = ours.level
        if ours_previous > self.level:
            ours.setLevel(self.level)

        def uninitialize() -> None:
            root.removeHandler(handler)
            if not root.handlers:
                root.setLevel(previous)  # only when no other handler still relies on the level
            if ours.level == self.level and ours_previous > self.level:
                ours.setLevel(ours_previous)
            handler.close()

        return uninitialize


class JSONHandler(logging.Handler):
    """Appends each record to ``filename`` as one line of JSON, flushed at once."""

    def __init__(self, filename: pathlib.Path) -> None:
        super().__init__()
        self._file = open(filename, "a", encoding="utf-8")  # noqa: SIM115  # closed by close()
        self._file_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = json.dumps(self.to_dict(record), default=str)
            with self._file_lock:
                self._file.write(line + "\n")
                self._file.flush()
        except Exception:
            self.handleError(record)

    def to_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        """The JSON object written for ``record``."""
        fields: dict[str, Any] = {
            "created": record.created, "process": record.process, "processName": record.processName,
            "thread": record.thread, "threadName": record.threadName, "name": record.name,
            "lineno": record.lineno, "funcname": record.funcName, "levelname": record.levelname,
            "msg": str(record.msg), "formatted": self.format(record),
        }
        for key, value in record.__dict__.items():
            if key.startswith("parsl."):
                try:
                    fields[key] = str(value)
                except Exception as e:  # say why rather than drop the field
                    fields[key] = f"UNREPRESENTABLE: {e!r}"
        return fields

    def close(self) -> None:
        with self._file_lock:
            if not self._file.closed:
                self._file.close()
        super().close()
