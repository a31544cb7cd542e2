#!/usr/bin/env bash
# The project's one test command: lint (ruff, and the import layers with import-linter), then the
# whole test suite. CI runs exactly this.
# Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
.venv/bin/ruff check parsl_repro monitoring viz tests examples bench provenance-schemas
bash scripts/lint_imports.sh
.venv/bin/python -m pytest -q "$@"
