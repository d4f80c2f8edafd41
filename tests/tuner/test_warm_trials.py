"""Warm trials: Ray Tune hands one trial process the next trial (reuse_actors), and nothing of one
trial reaches the next: each configuration trained in a reused process gives, epoch for epoch, what
it gives in a fresh process of its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import SPECS, launch_cmd, sweep_env

from tuner.sweep.trials_table import train_config_of

pytestmark = pytest.mark.slow
COMPARED = ("train_loss", "train_acc", "val_acc", "test_acc", "flops_ratio", "grad_norm")


def _fresh_run(config: dict, folder: Path) -> list[dict]:
    """The configuration trained alone by `python -m trainables.train`, one thread as in a trial."""
    path = folder / f"config-{config['seed']}.json"
    path.write_text(json.dumps(config))
    res = subprocess.run([sys.executable, "-m", "trainables.train", "--config", str(path)], capture_output=True, text=True,
                         timeout=600, env={**sweep_env(), "OMP_NUM_THREADS": "1"}, cwd=folder)
    assert res.returncode == 0, res.stderr[-2000:]
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{") and '"epoch"' in line
            and '"summary"' not in line]


def test_trials_in_a_reused_process_equal_their_runs_in_fresh_processes(tmp_path: Path) -> None:
    from ray.tune import ExperimentAnalysis

    shutil.copy(SPECS / "reuse.yaml", tmp_path / "reuse.yaml")
    res = subprocess.run(launch_cmd("reuse.yaml"), cwd=tmp_path, env=sweep_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    exp = tmp_path / "experiments" / "reuse"
    analysis = ExperimentAnalysis(str(exp))
    frames = {t.trial_id: analysis.trial_dataframes[t.trial_id].sort_values("epoch") for t in analysis.trials}
    pids = {int(pid) for df in frames.values() for pid in df["pid"]}
    assert len(frames) == 3 and len(pids) == 1, f"the trials ran in processes {pids}: not one reused process"

    rows = pq.read_table(exp / "trials.parquet").to_pylist()
    assert len({(r["config.lr"], r["config.seed"]) for r in rows}) == 3  # three different configurations
    for row in rows:
        fresh = _fresh_run(train_config_of(row).to_dict(), tmp_path)
        reused = frames[row["trial_id"]].to_dict("records")
        assert [e["epoch"] for e in fresh] == [int(e["epoch"]) for e in reused] == [1, 2, 3]
        for a, b in zip(fresh, reused):
            for key in COMPARED:
                assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), (row["trial_id"], a["epoch"], key, a[key], b[key])
    assert os.path.isdir(exp)
