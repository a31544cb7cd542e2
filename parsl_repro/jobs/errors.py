"""Errors raised by block scaling and block error handling."""
from __future__ import annotations

from parsl_repro.errors import ParslError


class TooManyJobFailuresError(ParslError):
    """An executor was marked bad because its blocks kept failing.

    The message lists each failed block's reason, exit code and output summary; every task sent
    to that executor fails with a ``BadStateException`` carrying this error.
    """
