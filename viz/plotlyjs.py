"""Which plotly.js the dashboard and the report use.

Dash would load the full ``plotly.min.js`` of the plotly package (every trace type: maps, 3-D,
WebGL, ...), which the browser needs about 1.1 s to set up before the first figure is drawn. The
dashboard draws only cartesian traces (scatter, bar, box, heatmap), so it serves plotly.js's own
"cartesian" partial bundle, vendored in ``assets/vendor`` (``scripts/vendor-plotly.sh`` refreshes
it), which is set up in about 0.45 s. dcc.Graph draws with ``window.Plotly`` when it is set (Dash's
documented way to use a custom bundle); :func:`loader_script` sets it to a stand-in that loads the
bundle when the first figure asks for it, so a page without figures loads none.

When the vendored bundle is missing or of another major version than the plotly package's
(whose figures it must draw), the full bundle is used as before, with a warning."""
from __future__ import annotations

import functools
import json
import logging
import pathlib
import re

import plotly.offline

logger = logging.getLogger(__name__)

VENDORED = pathlib.Path(__file__).with_name("assets") / "vendor" / "plotly-cartesian.min.js"
ASSET_PATH = "vendor/plotly-cartesian.min.js"
"""The vendored bundle's path under the assets folder."""
TRACE_TYPES = frozenset({"scatter", "bar", "box", "heatmap", "histogram", "histogram2d", "histogram2dcontour",
                         "contour", "image", "pie", "violin", "scatterternary"})
"""The trace types of the cartesian bundle; every figure of the dashboard must use only these."""

FIGURE_PAGES = r"/^\/run\/[^\/]+(\/(graph|apps|resources|task\/\d+))?\/?$/"
"""Paths (a JavaScript regular expression) of the pages that draw figures as soon as they open."""
_VERSION = re.compile(rb"plotly\.js (?:\([^)]*\) )?v(\d+\.\d+\.\d+)")


def version_of(path: pathlib.Path) -> str | None:
    """The plotly.js version in the licence header of the bundle at ``path`` (None when unreadable)."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(512)
    except OSError:
        return None
    found = _VERSION.search(head)
    return found.group(1).decode() if found else None


def bundled_version() -> str | None:
    """The version of the full plotly.js inside the installed plotly package."""
    return version_of(pathlib.Path(plotly.offline.__file__).parent.parent / "package_data" / "plotly.min.js")


@functools.cache
def vendored_usable() -> bool:
    """Whether the vendored cartesian bundle exists and can draw the plotly package's figures (same
    major version); logs why not."""
    ours, theirs = version_of(VENDORED), bundled_version()
    if ours is None:
        logger.warning("No plotly.js cartesian bundle at %s: using the plotly package's full bundle "
                       "(figures take about a second longer to appear)", VENDORED)
        return False
    if theirs is not None and ours.split(".")[0] != theirs.split(".")[0]:
        logger.warning("The vendored plotly.js is %s but the plotly package's is %s: using the full bundle; "
                       "run scripts/vendor-plotly.sh to refresh it", ours, theirs)
        return False
    return True


def loader_script(url: str) -> str:
    """A ``<script>`` that makes ``window.Plotly`` a stand-in which loads the bundle at ``url`` the
    first time something waits on it (dcc.Graph does ``Promise.resolve(window.Plotly || load())``);
    the bundle then replaces ``window.Plotly`` with the library itself."""
    return """<script>
(function () {
    var url = URL, loading = null;
    function load() {
        if (!loading) {
            loading = new Promise(function (resolve, reject) {
                var script = document.createElement("script");
                script.src = url;
                script.async = true;
                script.onload = function () { resolve(window.Plotly); };
                script.onerror = function () { reject(new Error("plotly.js did not load from " + url)); };
                document.head.appendChild(script);
            });
        }
        return loading;
    }
    window.Plotly = {then: function (resolve, reject) { return load().then(resolve, reject); }};
    // a page that draws figures from its first answer starts on plotly.js while that answer is
    // being prepared (the browser would otherwise wait for it to mount the first figure)
    if (FIGURE_PAGE.test(location.pathname)) {
        document.addEventListener("DOMContentLoaded", load);
    }
})();
</script>""".replace("URL", json.dumps(url)).replace("FIGURE_PAGE", FIGURE_PAGES)


def report_script() -> str:
    """The plotly.js to inline in a static report: the cartesian bundle when usable, else the full one."""
    if vendored_usable():
        return VENDORED.read_text(encoding="utf-8")
    return plotly.offline.get_plotlyjs()
