"""The store the running dashboard reads: set once by ``create_app``, read by every page."""
from __future__ import annotations

from typing import TYPE_CHECKING

import flask

if TYPE_CHECKING:
    from sqlalchemy import Engine

ENGINE_KEY = "PARSL_REPRO_ENGINE"
URL_KEY = "PARSL_REPRO_URL"
REFRESH_KEY = "PARSL_REPRO_REFRESH_MS"


def engine() -> Engine:
    """The read-only engine of the app serving the current request."""
    return flask.current_app.config[ENGINE_KEY]


def store_url() -> str:
    """The store's URL as shown to people (password hidden)."""
    return flask.current_app.config[URL_KEY]


def refresh_ms() -> int:
    """How often live pages look for news, in milliseconds."""
    return flask.current_app.config[REFRESH_KEY]
