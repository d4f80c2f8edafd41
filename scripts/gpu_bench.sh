#!/usr/bin/env bash
# The whole GPU measurement of docs/PERFORMANCE.md in one script, for a machine with one NVIDIA GPU
# that has PyTorch but not ray/optuna/mlflow (the device tool's machines). Prepare here first:
#   ../shared/tools/gpu-wheelhouse && echo /.gpuwhl/ >> .git/info/exclude
#   mkdir -p .gpudata && cp ../shared/data/cifar10/*.parquet .gpudata/      (18 MB; .gpudata/ is git-ignored)
# then run with carry [".gpuwhl", ".gpudata"]:  bash scripts/gpu_bench.sh   (about 6 minutes)
# Results land in $OUT (or ./gpu-results): one JSON file per measurement, plus nvidia-smi.
set -uo pipefail
OUT=${OUT:-gpu-results}; mkdir -p "$OUT"
export TUNER_DATA_DIR=$PWD/.gpudata TUNER_CACHE_DIR=/tmp/tuner-cache PYTHONPATH=$PWD:/tmp/site:${PYTHONPATH:-}
if [ -x .gpuwhl/install ]; then bash .gpuwhl/install; fi
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" | tee "$OUT/torch.txt"
# 0. AutoAugment on one batch: torchvision per image against the batched path (seconds)
timeout 120 python -m trainables.bench_augment --device cuda --repeats 50 > "$OUT/bench_augment.json" 2> "$OUT/bench_augment.err"
# 1. one trial: plain DataLoader recipe against the fast path, hybrid preset, CIFAR-10-LT-100, 30 epochs
#    (also the accuracy equivalence: both runs' val_acc/test_acc after 30 epochs)
timeout 300 python -m trainables.bench --preset hybrid_m4 --device cuda --epochs 30 --workers 4 \
  --set grad_clip_norm=5.0 > "$OUT/trainables_bench_hybrid_m4.json" 2> "$OUT/trainables_bench.err"
# 2. packed trials: 8 (then 16) trials on one GPU through Ray Tune
timeout 150 python -m tuner.bench --trials 8 --gpu-per-trial 0.125 --cpu-per-trial 1 --epochs 10 --preset hybrid_m4 \
  --set grad_clip_norm=5.0 --checkpoint-every 5 > "$OUT/tuner_bench_8.json" 2> "$OUT/tuner_bench_8.err"
timeout 150 python -m tuner.bench --trials 16 --gpu-per-trial 0.0625 --cpu-per-trial 1 --epochs 10 --preset hybrid_m4 \
  --set grad_clip_norm=5.0 --checkpoint-every 5 > "$OUT/tuner_bench_16.json" 2> "$OUT/tuner_bench_16.err"
ls -la "$OUT"
