"""Run overview (not drawn yet: this module is being built)."""
from __future__ import annotations

from typing import Any

from dash import Dash, html

from parsl_repro.viz.components import frame, notice

PATH = "/run/<run_id>"
TITLE = "Run overview"


def layout(run_id: str, **_: Any) -> html.Div:
    return frame(TITLE, notice("This view is not built yet.", "info"), run_id=run_id)


def register_callbacks(app: Dash) -> None:
    pass
