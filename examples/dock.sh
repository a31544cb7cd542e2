#!/usr/bin/env bash
# A stand-in for a docking program: writes "protein ligand score" to the output file.
# The score is a deterministic fake, computed from the names, so every run gives the same table.
#
# usage: dock.sh PROTEIN LIGAND OUTPUT
set -euo pipefail

if [[ $# -ne 3 ]]; then
    echo "usage: $0 PROTEIN LIGAND OUTPUT" >&2
    exit 2
fi
protein=$1
ligand=$2
output=$3

# score in kcal/mol (more negative binds better), from the characters of both names
score=$(awk -v p="$protein" -v l="$ligand" 'BEGIN {
    s = p ":" l; h = 0
    for (i = 1; i <= length(s); i++) h = (h * 31 + index("abcdefghijklmnopqrstuvwxyz0123456789:-_", substr(s, i, 1))) % 9973
    printf "%.2f", -4 - (h % 800) / 100
}')

echo "$protein $ligand $score" > "$output"
echo "docked $ligand into $protein: $score kcal/mol"
