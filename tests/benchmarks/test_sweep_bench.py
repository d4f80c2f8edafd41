"""`python -m benchmarks.sweep` runs concurrent trials through the real sweep path and reports throughput
and overhead (a smoke test of the tool; figures live in docs/PERFORMANCE.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from run_env import sweep_env


@pytest.mark.slow
def test_tuner_bench_reports_summed_throughput_and_overhead(tmp_path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "benchmarks.sweep", "--trials", "2", "--gpu-per-trial", "0", "--epochs", "2",
         "--dataset", "synthetic", "--preset", "hybrid_m7", "--set", "autoaugment=false", "--set", "widths=[8, 16, 24]",
         "--set", "exit_channels=16", "--set", "synthetic_train_per_class=40", "--checkpoint-every", "1"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=sweep_env(),
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    out = json.loads(res.stdout[res.stdout.index("{"):])
    assert out["trials"] == 2 and len(out["per_trial"]) == 2
    assert out["summed_images_per_second"] == pytest.approx(sum(t["images_per_second"] for t in out["per_trial"]))
    assert out["trial_overhead_share"] > 0 and out["sweep_seconds"] >= out["trials_phase_seconds"] > 0
