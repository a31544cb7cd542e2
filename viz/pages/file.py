"""File (not drawn yet: this module is being built)."""
from __future__ import annotations

from typing import Any

from dash import Dash, html

from parsl_repro.viz.components import frame, notice

PATH = "/file/<file_id>"
TITLE = "File"


def layout(**_: Any) -> html.Div:
    return frame(TITLE, notice("This view is not built yet.", "info"))


def register_callbacks(app: Dash) -> None:
    pass
