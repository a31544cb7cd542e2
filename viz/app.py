"""The Dash application: one page module per view (``parsl_repro.viz.pages``), over the read-only
store of ``monitoring.engine.open_for_reading``.

    app = create_app(open_for_reading(url), url)
    app.run(host="127.0.0.1", port=8080)

The JavaScript and CSS are served by the app itself (no CDN), so the dashboard works offline."""
from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

import dash
from dash import Dash, html

from parsl_repro.utils import redact_secrets
from parsl_repro.viz import context, plotlyjs
from parsl_repro.viz.components import frame, guarded_layout, notice
from parsl_repro.viz.pages import PAGES

if TYPE_CHECKING:
    from sqlalchemy import Engine

ASSETS = pathlib.Path(__file__).with_name("assets")


def create_app(engine: Engine, url: str, *, refresh_seconds: float = 2.0) -> Dash:
    """The dashboard over ``engine`` (the store at ``url``, shown with its password hidden); live
    pages look for news every ``refresh_seconds``."""
    app = Dash(__name__, use_pages=True, pages_folder="", assets_folder=str(ASSETS), title="parsl-visualize",
               update_title=None, suppress_callback_exceptions=True, serve_locally=True,
               assets_path_ignore=["^vendor$"])  # served, but loaded only when a figure asks (plotlyjs)
    if plotlyjs.vendored_usable():
        bundle = app.get_asset_url(plotlyjs.ASSET_PATH) + f"?v={plotlyjs.version_of(plotlyjs.VENDORED)}"
        app.index_string = app.index_string.replace("{%scripts%}", plotlyjs.loader_script(bundle) + "{%scripts%}")
    app.server.config[context.ENGINE_KEY] = engine
    app.server.config[context.URL_KEY] = redact_secrets(url)
    app.server.config[context.REFRESH_KEY] = max(250, int(refresh_seconds * 1000))
    dash.page_registry.clear()
    for order, module in enumerate(PAGES):
        dash.register_page(module.__name__, path_template=module.PATH, path=_plain_path(module.PATH),
                           title=module.TITLE, name=module.TITLE, order=order,
                           layout=guarded_layout(module.layout, module.TITLE))
        module.register_callbacks(app)
    dash.register_page("not_found_404", path="/404", title="Not found", layout=_not_found)
    app.layout = html.Div(dash.page_container, id="app")
    return app


def _plain_path(template: str) -> str:
    """A template's path with its variables left out (Dash Pages wants one per page)."""
    return "/" + "/".join(part for part in template.strip("/").split("/") if not part.startswith("<"))


def _not_found(**_: object) -> html.Div:
    return frame("Not found", notice("There is no such page in parsl-visualize: start from the list of runs.", "info"))
