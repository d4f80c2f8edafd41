#!/usr/bin/env bash
# Land what a GPU lease brought back (scripts/gpu_lease.sh): finished runs into results/, unfinished
# ones into results/partial/ (the next lease resumes them), the benchmark into docs/perf/, the
# sweep's table and MLflow store into results/sweeps/; rebuilds docs/RESULTS.md and the GPU section
# of docs/PERFORMANCE.md, and prints what changed. Then commit results/ and docs/.
#
#   bash scripts/gpu_collect.sh FOLDER      (the device call's files_at)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bash scripts/gpu_collect.sh FOLDER" >&2; exit 2; }
folder=$(cd "$1" 2>/dev/null && pwd) || { echo "gpu_collect.sh: $1 is not a folder" >&2; exit 2; }
shift
cd "$(dirname "$0")/.."
PY=${PYTHON:-}   # else the project's .venv, else python3
[ -n "$PY" ] || { [ -x .venv/bin/python ] && PY=.venv/bin/python; } || PY=python3
exec "$PY" -m tools.lease collect "$folder" "$@"
