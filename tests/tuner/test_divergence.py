"""A diverging trial inside a real sweep: stopped within its first epoch, reported with the worst
objective (never NaN), tagged `diverged` with epoch and step in MLflow, and the sweep goes on."""

from __future__ import annotations

import pickle
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import SPECS, launch_cmd, sweep_env
from mlflow import MlflowClient

pytestmark = pytest.mark.slow


def test_a_diverging_trial_ends_at_once_and_the_sweep_finishes(tmp_path: Path) -> None:
    shutil.copy(SPECS / "diverge.yaml", tmp_path / "diverge.yaml")
    res = subprocess.run(launch_cmd("diverge.yaml"), cwd=tmp_path, env=sweep_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "1 diverged" in res.stdout
    exp = tmp_path / "experiments" / "diverge"
    rows = {r["config.divergence_loss_bound"]: r for r in pq.read_table(exp / "trials.parquet").to_pylist()}
    bad, good = rows[0.001], rows[100000.0]
    assert bad["status"] == "diverged" and bad["epochs_run"] == 1 and "batch loss" in bad["diverged_reason"]
    # The worst values, not NaN: every image at the final exit costs at least what the same model costs trained.
    assert bad["val_acc"] == 0.0 and bad["flops_ratio"] >= good["flops_ratio"] > 0
    assert good["status"] == "completed" and good["epochs_run"] == 2

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(bad["mlflow_run_id"])
    assert run.data.tags["tuner.status"] == "diverged"
    assert run.data.tags["tuner.diverged_epoch"] == "1" and run.data.tags["tuner.diverged_step"] == "0"
    assert run.info.status == "FINISHED"

    with open(sorted(exp.glob("searcher-state-*.pkl"))[-1], "rb") as f:
        study = pickle.load(f)["_ot_study"]
    values = sorted(t.value for t in study.trials if t.value is not None)
    assert len(values) == 2 and values[0] == 0.0  # Optuna learnt from the diverged trial: worst value, not a failure
    versions = client.search_model_versions("name='diverge'")
    assert versions and versions[0].tags["trial_run_id"] == good["mlflow_run_id"]  # never the diverged one
