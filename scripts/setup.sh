#!/usr/bin/env bash
# Set up parsl_repro for development and use: a virtual environment in .venv with the package
# installed editable and its test tools (and the RO-Crate validator beside it, in .venv-roc), then
# run the hello-world example to show it works.
# Usage: bash scripts/setup.sh            (idempotent; re-run after pulling)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "parsl_repro needs Python 3.11 or newer (found $("$PYTHON" --version))" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
bash scripts/roc-validator.sh install  # the RO-Crate validator, in .venv-roc (its pins clash with .venv's)
.venv/bin/python examples/hello.py
