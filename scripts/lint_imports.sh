#!/usr/bin/env bash
# Check the import layers in pyproject.toml ([tool.importlinter]) with import-linter.
# monitoring/ and viz/ install as parsl_repro.monitoring and parsl_repro.viz (package-dir), which
# import-linter cannot see in the source tree, so it reads a copy assembled as installed.
# Usage: bash scripts/lint_imports.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
cp -r parsl_repro "$tree/parsl_repro"
cp -r monitoring "$tree/parsl_repro/monitoring"
cp -r viz "$tree/parsl_repro/viz"
find "$tree" -name __pycache__ -prune -exec rm -rf {} +
repo=$PWD
cd "$tree"  # not the repository, whose parsl_repro/ lacks monitoring and viz
PYTHONPATH="$tree" "$repo/.venv/bin/lint-imports" --no-cache "$repo/pyproject.toml"
PYTHONPATH="$tree" "$repo/.venv/bin/lint-imports" --no-cache "$repo/scripts/importlinter-monitoring.toml"
