#!/usr/bin/env bash
# Install Debian/Ubuntu packages that tests need but Python cannot provide (as root, with apt-get),
# if their command is missing. Usage: bash scripts/system-packages.sh COMMAND:PACKAGE ...
# e.g.  bash scripts/system-packages.sh parallel:parallel
# Used by the tests: parallel:parallel (tests/test_launchers.py); slurmctld:slurm-wlm, slurmd:slurm-wlm,
# munged:munge (scripts/slurm.sh, for tests/test_providers_slurm.py); mpiexec:mpich (tests/test_htex_mpi.py:
# MPICH's Hydra mpiexec takes the -n/-ppn/-hosts prefix of MPI mode; Open MPI's does not).
set -euo pipefail
missing=()
for spec in "$@"; do
  command -v "${spec%%:*}" >/dev/null || missing+=("${spec##*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
[ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null \
  || { echo "need ${missing[*]}: install them (apt-get install ${missing[*]})" >&2; exit 1; }
{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >&2
