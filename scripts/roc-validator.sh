#!/usr/bin/env bash
# The community RO-Crate validator (PyPI roc-validator, command rocrate-validator), run offline.
#
# roc-validator pins rich 13, which the project's own environment (import-linter wants rich 14) cannot
# share, so it lives in a tool environment of its own, .venv-roc, made on first use. It fetches the
# crate's JSON-LD contexts while validating; they are served from its HTTP cache, seeded from the copies
# vendored in provenance-schemas/contexts/ (the exact RO-Crate 1.1 context and the Workflow Run terms),
# and --offline keeps it off the network.
#
# Usage: bash scripts/roc-validator.sh install
#        bash scripts/roc-validator.sh CRATE [rocrate-validator validate options...]
#   e.g. bash scripts/roc-validator.sh ro-crate-1a2b3c4d -p provenance-run-crate-0.5 -l REQUIRED
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${ROC_VALIDATOR_VENV:-$repo/.venv-roc}
cache=$venv/http-cache
if [ ! -x "$venv/bin/rocrate-validator" ]; then
  PYTHON=${PYTHON:-python3}
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q 'roc-validator==0.13.0'
fi
if [ ! -s "$cache.sqlite" ] || [ "$repo/scripts/roc_seed_cache.py" -nt "$cache.sqlite" ]; then
  "$venv/bin/python" "$repo/scripts/roc_seed_cache.py" "$cache" \
    "https://w3id.org/ro/crate/1.1/context=$repo/provenance-schemas/contexts/ro-crate-1.1-context.jsonld" \
    "https://w3id.org/ro/terms/workflow-run/context=$repo/provenance-schemas/contexts/workflow-run-context.json"
fi
[ "${1:-}" = install ] && exit 0
crate=$1
shift
exec "$venv/bin/rocrate-validator" -y --disable-color validate --offline --cache-path "$cache" "$@" "$crate"
