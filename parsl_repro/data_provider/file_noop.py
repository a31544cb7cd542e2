"""``NoOpFileStaging``: ``file`` URLs need no staging, on the assumption that where the task runs
sees the same file system as where it was submitted."""
from __future__ import annotations

import logging

from parsl_repro.data_provider.files import File
from parsl_repro.data_provider.staging import Staging
from parsl_repro.utils import RepresentationMixin

logger = logging.getLogger(__name__)


class NoOpFileStaging(Staging, RepresentationMixin):
    """Claims ``file`` URLs (and plain paths) in both directions and leaves them where they are."""

    def can_stage_in(self, file: File) -> bool:
        return file.scheme == "file"

    def can_stage_out(self, file: File) -> bool:
        return file.scheme == "file"
