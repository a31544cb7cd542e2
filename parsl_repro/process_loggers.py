"""``wrap_with_logs``: log an exception escaping a background function before re-raising it."""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


def wrap_with_logs(fn: Callable | None = None, target: str = __name__) -> Callable:
    """Decorate ``fn`` so that its exceptions are logged (to logger ``target``) and then re-raised.

    Usable bare (``@wrap_with_logs``) or with a logger name (``@wrap_with_logs(target="x")``).
    """

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            log = logging.getLogger(target)
            try:
                result = func(*args, **kwargs)
            except Exception:
                log.error("Exceptional ending for %s", func.__name__, exc_info=True)
                raise
            log.debug("Normal ending for %s", func.__name__)
            return result

        return wrapped

    return decorator(fn) if fn is not None else decorator
