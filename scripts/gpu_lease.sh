#!/usr/bin/env bash
# One GPU lease, planned: the benchmark while docs/perf/ has no GPU figure, then the results runs of
# docs/RESULTS.md that fit (100x first), then search_spaces/hybrid.yaml; what it made comes back as
# at most 8 files with a manifest of what finished, what was cut and why (tools/lease/plan.py).
#
#   bash scripts/gpu_lease.sh --plan       here, any machine: what the next lease does, with times
#   bash scripts/gpu_lease.sh --prepare    here: make what it carries (.gpudata/, and .gpuwhl/ when the
#                                          sweep is due; both git-ignored) and print the device call
#   bash scripts/gpu_lease.sh              there, the device call: carry what --prepare printed,
#                                          timeout_s 600; the files land in $OUT
#   bash scripts/gpu_collect.sh FILES_AT   back here: results/, docs/perf/, docs rebuilt; then commit
#
# Other arguments go to `python -m tools.lease run` (or `plan`): --budget SECONDS (default 540, one
# 10-minute command with margin), --rows, --no-sweep, --no-bench, and the quick-check options.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}   # else the project's .venv here, python3 on the GPU machine (which has its own)
[ -n "$PY" ] || { [ -x .venv/bin/python ] && PY=.venv/bin/python; } || PY=python3
case "${1:-}" in
  --plan)
    shift
    exec "$PY" -m tools.lease plan "$@" ;;
  --prepare)
    shift
    src=${TUNER_DATA_DIR:-../shared/data/cifar10}
    # Only the training images of the long-tailed sets (100x, 50x, 10x): 10 MB instead of 18, so that
    # the data and the 48 MB of ray/optuna/mlflow fit the 64 MiB a device call carries together.
    "$PY" -m trainables.data.subset_copy "$src" .gpudata --imbalance 100 50 10 || exit 2
    carry='".gpudata"'
    if "$PY" -m tools.lease plan "$@" | grep -q '^Carry:.*\.gpuwhl'; then
      [ -x .gpuwhl/install ] || ../shared/tools/gpu-wheelhouse || exit 2
      carry='".gpudata", ".gpuwhl"'
    fi
    du -sh .gpudata .gpuwhl 2>/dev/null
    # The device call sends the whole working tree (tracked and untracked-unignored files, with
    # results/partial/'s checkpoints) plus the carried folders, 64 MiB in all.
    tree=$(git ls-files -co --exclude-standard -z | xargs -0 cat 2>/dev/null | wc -c)
    carried=$(du -sb .gpudata $( [ "$carry" = '".gpudata"' ] || echo .gpuwhl) | awk '{s+=$1} END {print s}')
    total=$(( (tree + carried) / 1048576 ))
    echo "travels: $total MiB of 64 (working tree $(( tree / 1048576 )) MiB, carried $(( carried / 1048576 )) MiB)"
    if [ "$total" -ge 64 ]; then
      echo "gpu_lease.sh: over the device call's 64 MiB; run the lease without the sweep (--no-sweep) until fewer runs wait in results/partial/" >&2
      exit 2
    fi
    echo "device run: command 'bash scripts/gpu_lease.sh', carry [$carry], timeout_s 600"
    exit 0 ;;
esac
export TUNER_DATA_DIR=$PWD/.gpudata TUNER_CACHE_DIR=${TUNER_CACHE_DIR:-/tmp/tuner-cache} PYTHONUNBUFFERED=1
if [ -x .gpuwhl/install ]; then
  bash .gpuwhl/install >/dev/null && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
exec "$PY" -m tools.lease run --out "${OUT:-gpu-lease-out}" "$@"
