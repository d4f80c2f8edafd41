"""`python -m benchmarks.training` runs both recipes on the same data and reports comparable figures
(a smoke test of the tool; the figures themselves live in docs/PERFORMANCE.md, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_compares_the_plain_and_fast_recipes() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "benchmarks.training", "--preset", "hybrid_m7", "--device", "cpu", "--epochs", "2",
         "--workers", "1", "--set", "dataset=synthetic", "--set", "synthetic_train_per_class=40", "--set", "autoaugment=false",
         "--set", "widths=8,16,24", "--set", "exit_channels=16"],
        capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    for path in ("plain", "fast"):
        assert out[path]["epoch_seconds"] > 0 and 0 <= out[path]["val_acc"] <= 1
    assert out["speedup_epoch"] == pytest.approx(out["plain"]["epoch_seconds"] / out["fast"]["epoch_seconds"])
    assert out["train_images"] > 0 and out["device"].endswith("threads")


def test_augmentation_bench_times_both_autoaugment_paths() -> None:
    res = subprocess.run([sys.executable, "-m", "benchmarks.augment", "--device", "cpu", "--batch", "16", "--repeats", "1"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    assert set(out["ms_per_batch"]) == {"crop_flip_only", "per_image_autoaugment", "batched_autoaugment"}
    assert all(ms > 0 for ms in out["ms_per_batch"].values()) and out["batch"] == 16
    bad = subprocess.run([sys.executable, "-m", "benchmarks.augment", "--batch", "0"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
