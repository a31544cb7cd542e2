#!/usr/bin/env bash
# Refresh the plotly.js bundle the dashboard serves: viz/assets/vendor/plotly-cartesian.min.js, the
# "cartesian" partial bundle of plotly.js (scatter, bar, box, heatmap, histogram, ...: every trace type
# parsl-visualize draws, and nothing it does not). The browser sets it up in about 0.45 s where the full
# plotly.min.js that Dash would load takes 1.1 s (bench/viz.py, warm cache). Maintainers run this when the
# plotly package's plotly.js moves to a new version; tests/viz/test_assets.py says when that is needed.
# Usage: bash scripts/vendor-plotly.sh [VERSION]   (default: the plotly.js inside the installed plotly)
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-$(.venv/bin/python -c 'import parsl_repro.viz.plotlyjs as p; print(p.bundled_version())')}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "plotly.js-cartesian-dist-min@$version" >/dev/null && tar xzf ./*.tgz)
mkdir -p viz/assets/vendor
cp "$work/package/plotly-cartesian.min.js" viz/assets/vendor/plotly-cartesian.min.js
cp "$work/package/LICENSE" viz/assets/vendor/LICENSE-plotly.js
echo "viz/assets/vendor/plotly-cartesian.min.js is plotly.js $version (cartesian)"
