"""``DataFuture``: a future for a file that a task will produce."""
from __future__ import annotations

import logging
from concurrent.futures import Future

import typeguard

from parsl_repro.data_provider.files import File

logger = logging.getLogger(__name__)


class DataFuture(Future):
    """Completes with its ``File`` when the future it tracks (the producing task, or its stage-out)
    completes, or with that future's exception."""

    @typeguard.typechecked
    def __init__(self, fut: Future, file_obj: File, tid: int) -> None:
        super().__init__()
        self._tid = tid
        self.file_obj = file_obj
        self.parent = fut
        fut.add_done_callback(self.parent_callback)

    def parent_callback(self, parent_fu: Future) -> None:
        exception = parent_fu.exception()
        if exception is not None:
            self.set_exception(exception)
        else:
            self.set_result(self.file_obj)

    @property
    def tid(self) -> int:
        """The id of the task whose completion this future waits for."""
        return self._tid

    @property
    def filepath(self) -> str:
        return self.file_obj.filepath

    @property
    def filename(self) -> str:
        return self.filepath

    def cancel(self) -> bool:
        raise NotImplementedError("Cancel not implemented")

    def cancelled(self) -> bool:
        return False

    def running(self) -> bool:
        return bool(self.parent and self.parent.running())

    def __repr__(self) -> str:
        state = "done" if self.done() else "not done"
        return (f"<{type(self).__module__}.{type(self).__qualname__} object at {hex(id(self))} "
                f"representing {self.file_obj!r} {state}>")
