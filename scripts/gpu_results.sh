#!/usr/bin/env bash
# Issue 8 on the device machine: the 200-epoch rows of docs/RESULTS.md, as many as fit in one
# session, resumable across sessions (runs already finished in results/ are skipped).
# Needs only what the device image has (PyTorch, torchvision, numpy, pyarrow). Prepare here:
#   mkdir -p .gpudata && cp ../shared/data/cifar10/*.parquet .gpudata/     (18 MB; git-ignored)
# Run there with carry [".gpudata"] and timeout_s 600:
#   bash scripts/gpu_results.sh 100 480      (imbalance ratios, then seconds of training to spend)
# Back here: copy the new run files and rebuild the tables, then commit both:
#   cp FILES_AT/results/*.jsonl results/ && python -m tuner.results_tables results --out docs/RESULTS.md
# The sweep rows: run search_spaces/hybrid.yaml (needs the wheelhouse, see scripts/gpu_bench.sh), then
#   python -m tuner.reproduce --from-sweep hybrid --seeds 1 2 --device cuda
set -uo pipefail
OUT=${OUT:-gpu-results}; mkdir -p "$OUT/results"
IMBALANCES=${1:-100}; BUDGET=${2:-480}
PARALLEL=${PARALLEL:-8}; SEEDS=${SEEDS:-0}
FAST=${FAST:---set channels_last=true --set compile=reduce-overhead}
export TUNER_DATA_DIR=$PWD/.gpudata TUNER_CACHE_DIR=/tmp/tuner-cache
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name())" | tee "$OUT/torch.txt"
# shellcheck disable=SC2086  # word splitting of the lists is wanted
python3 -m tuner.reproduce --imbalance $IMBALANCES --seeds $SEEDS --device cuda --parallel "$PARALLEL" \
  --time-budget "$BUDGET" $FAST 2>&1 | tee "$OUT/reproduce.log"
cp results/*.jsonl "$OUT/results/" 2>/dev/null || true
cp results/*.err "$OUT/results/" 2>/dev/null || true
ls -la "$OUT/results"
