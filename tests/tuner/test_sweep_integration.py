"""End to end: the smoke sweep on a real Ray runtime against a real MLflow server; interrupt and resume."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from conftest import launch_cmd, sweep_env
from mlflow import MlflowClient

pytestmark = pytest.mark.slow
NUM_SAMPLES = 6  # smoke.yaml


def _child_runs(client: MlflowClient, experiment: str) -> tuple[list, list]:
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=500)
    parents = [r for r in runs if r.data.tags.get("tuner.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") in {p.info.run_id for p in parents}]
    return parents, children


def _check_children(client: MlflowClient, children: list, table) -> None:
    rows = {r["mlflow_run_id"]: r for r in table.to_pylist()}
    assert sorted(rows) == sorted(c.info.run_id for c in children)
    assert len({c.data.tags["tuner.trial_id"] for c in children}) == NUM_SAMPLES
    for child in children:
        row = rows[child.info.run_id]
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val_acc")]
        assert steps == list(range(1, row["epochs_run"] + 1)), f"duplicated or missing epochs: {steps}"
        assert child.data.tags["tuner.status"] == row["status"]
        assert child.data.params["lr"] == str(row["config.lr"])
        expected = {"completed": "FINISHED", "diverged": "FINISHED", "stopped": "KILLED", "failed": "FAILED"}[row["status"]]
        assert client.get_run(child.info.run_id).info.status == expected


def _ray_trials(experiment_path: Path) -> list[str]:
    from ray.tune import ExperimentAnalysis

    return [t.trial_id for t in ExperimentAnalysis(str(experiment_path)).trials]


def test_smoke_sweep_against_a_real_mlflow_server(sweep_dir: Path, mlflow_server) -> None:
    started = time.time()
    res = subprocess.run(launch_cmd("smoke.yaml"), cwd=sweep_dir, env=sweep_env(MLFLOW_TRACKING_URI=mlflow_server.uri),
                         capture_output=True, text=True, timeout=600)
    seconds = time.time() - started
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "Traceback" not in res.stdout + res.stderr
    print(f"smoke sweep wall time: {seconds:.1f} s")

    table = pq.read_table(sweep_dir / "experiments" / "smoke" / "trials.parquet")
    assert table.num_rows == NUM_SAMPLES and len(set(table.column("trial_id").to_pylist())) == NUM_SAMPLES
    statuses = table.column("status").to_pylist()
    assert "stopped" in statuses and "completed" in statuses
    for col in ("val_acc", "test_acc", "flops_ratio", "epochs_run", "wall_seconds", "config.lr", "config.reslt_alpha"):
        assert col in table.column_names
    assert sorted(_ray_trials(sweep_dir / "experiments" / "smoke")) == sorted(table.column("trial_id").to_pylist())

    client = MlflowClient(mlflow_server.uri)
    parents, children = _child_runs(client, "smoke")
    assert len(parents) == 1 and len(children) == NUM_SAMPLES
    parent = parents[0]
    assert parent.data.tags["tuner.git_commit"] != "" and parent.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"smoke.yaml", "trials.parquet", "sweep_summary.json", "search_space.json"} <= artifacts
    _check_children(client, children, table)

    # The registered best model loads with mlflow.pytorch and predicts what the training code computes.
    import mlflow.pytorch

    from trainables.data.synthetic import make_synthetic
    from trainables.evaluate import ExitPredictions, predict_exits

    versions = client.search_model_versions("name='smoke'")
    assert len(versions) == 1
    best = max(table.to_pylist(), key=lambda r: r["val_acc"] if r["status"] in ("completed", "stopped") else -1)
    assert versions[0].tags["trial_run_id"] == best["mlflow_run_id"]
    mlflow.set_tracking_uri(mlflow_server.uri)
    model = mlflow.pytorch.load_model("models:/smoke/1")
    images = make_synthetic(10, 10).test_images[::10]  # one per class, uint8 (10, 32, 32, 3)
    probs = model(torch.from_numpy(images))
    assert probs.shape == (10, 10) and torch.allclose(probs.sum(1), torch.ones(10), atol=1e-5)
    own = predict_exits(model.model, torch.from_numpy(images).permute(0, 3, 1, 2), scale=model.confidence_scale)
    _, expected = ExitPredictions(own.probs).at_threshold(best["config.inference_exit_threshold"])
    assert torch.allclose(probs, expected, atol=1e-6)
    assert np.isclose(model.threshold, best["config.inference_exit_threshold"])


def test_interrupted_sweep_resumes_with_every_trial_exactly_once(sweep_dir: Path) -> None:
    """Ctrl-C after two trials ended; the same command again finishes the sweep (default SQLite tracking)."""
    log = sweep_dir / "first.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(launch_cmd("smoke.yaml"), cwd=sweep_dir, env=sweep_env(), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            ended = [line for line in log.read_text().splitlines() if " trial " in line and (" completed at" in line or " stopped at" in line)]
            if len(ended) >= 2:
                break
            time.sleep(0.5)
        assert proc.poll() is None, log.read_text()[-3000:]
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=120)
    first = log.read_text()
    assert rc == 130, first[-3000:]
    assert "interrupted; rerun the same command to resume" in first

    res = subprocess.run(launch_cmd("smoke.yaml"), cwd=sweep_dir, env=sweep_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "resuming sweep smoke" in res.stdout

    table = pq.read_table(sweep_dir / "experiments" / "smoke" / "trials.parquet")
    ids = table.column("trial_id").to_pylist()
    assert len(ids) == NUM_SAMPLES == len(set(ids))
    assert sorted(_ray_trials(sweep_dir / "experiments" / "smoke")) == sorted(ids)
    client = MlflowClient(f"sqlite:///{sweep_dir / 'mlflow.db'}")
    parents, children = _child_runs(client, "smoke")
    assert len(parents) == 1 and len(children) == NUM_SAMPLES
    _check_children(client, children, table)
