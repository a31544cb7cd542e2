"""Numbered run directories: ``runinfo/000``, ``runinfo/001``, ... one per kernel."""
from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)


def make_rundir(path: str) -> str:
    """Create and return the next free numbered directory under ``path``.

    Safe when several runs start at once: each claims its number with an exclusive ``mkdir``.
    """
    os.makedirs(path, exist_ok=True)
    existing = [int(n) for n in os.listdir(path) if n.isdigit()]
    number = max(existing) + 1 if existing else 0
    while True:
        candidate = os.path.join(path, f"{number:03d}")
        try:
            os.mkdir(candidate)
        except FileExistsError:
            number += 1
            continue
        logger.debug("Run directory is %s", candidate)
        return os.path.abspath(candidate)
