"""End to end: the smoke sweep on a real Ray runtime against a real MLflow server, and its report. The
interrupt (Ctrl-C) and resume of a sweep is test_stop.py's, with tuner.stop's, on one sweep."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from conftest import FINISHED_SMOKE_TRIALS, launch_cmd, sweep_env
from mlflow import MlflowClient
from PIL import Image

pytestmark = pytest.mark.slow


def _child_runs(client: MlflowClient, experiment: str) -> tuple[list, list]:
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=500)
    parents = [r for r in runs if r.data.tags.get("tuner.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") in {p.info.run_id for p in parents}]
    return parents, children


def _check_children(client: MlflowClient, children: list, table, trials: int = FINISHED_SMOKE_TRIALS) -> None:
    rows = {r["mlflow_run_id"]: r for r in table.to_pylist()}
    assert sorted(rows) == sorted(c.info.run_id for c in children)
    assert len({c.data.tags["tuner.trial_id"] for c in children}) == trials
    for child in children:
        row = rows[child.info.run_id]
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val_acc")]
        assert steps == list(range(1, row["epochs_run"] + 1)), f"duplicated or missing epochs: {steps}"
        assert child.data.tags["tuner.status"] == row["status"]
        assert child.data.tags.get("tuner.untrained_exits", "") == (row["untrained_exits"] or "")  # early exits that did not train
        assert child.data.params["lr"] == str(row["config.lr"])
        # Named by index and searched values (tuner/trial/names.py), the same name as the table's.
        assert child.info.run_name == row["trial_name"], (child.info.run_name, row["trial_name"])
        assert re.fullmatch(r"t\d\d lr=\S+ alpha=\S+ t=\S+ s=\S+", row["trial_name"]), row["trial_name"]
        assert f"lr={row['config.lr']:.3g} " in row["trial_name"]
        expected = {"completed": "FINISHED", "diverged": "FINISHED", "stopped": "FINISHED", "failed": "FAILED"}[row["status"]]
        assert client.get_run(child.info.run_id).info.status == expected


def _ray_trials(experiment_path: Path) -> list[str]:
    from ray.tune import ExperimentAnalysis

    return [t.trial_id for t in ExperimentAnalysis(str(experiment_path)).trials]


@pytest.mark.xdist_group("finished_smoke")
def test_smoke_sweep_against_a_real_mlflow_server(finished_smoke) -> None:
    sweep_dir, mlflow_server, res, seconds = finished_smoke
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "Traceback" not in res.stdout + res.stderr
    print(f"smoke sweep wall time: {seconds:.1f} s")

    table = pq.read_table(sweep_dir / "experiments" / "smoke" / "trials.parquet")
    assert table.num_rows == FINISHED_SMOKE_TRIALS and len(set(table.column("trial_id").to_pylist())) == FINISHED_SMOKE_TRIALS
    statuses = table.column("status").to_pylist()
    assert "stopped" in statuses and "completed" in statuses
    for col in ("val_acc", "test_acc", "flops_ratio", "epochs_run", "wall_seconds", "config.lr", "config.reslt_alpha"):
        assert col in table.column_names
    assert sorted(_ray_trials(sweep_dir / "experiments" / "smoke")) == sorted(table.column("trial_id").to_pylist())

    client = MlflowClient(mlflow_server.uri)
    parents, children = _child_runs(client, "smoke")
    assert len(parents) == 1 and len(children) == FINISHED_SMOKE_TRIALS
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
    assert versions[0].tags["kind"] == "single"
    probs = model(torch.from_numpy(images))
    assert probs.shape == (10, 10) and torch.allclose(probs.sum(1), torch.ones(10), atol=1e-5)
    own = predict_exits(model.model, torch.from_numpy(images).permute(0, 3, 1, 2), scale=model.confidence_scale)
    _, expected = ExitPredictions(own.probs).at_threshold(best["config.inference_exit_threshold"])
    assert torch.allclose(probs, expected, atol=1e-6)
    assert np.isclose(model.threshold, best["config.inference_exit_threshold"])


@pytest.mark.xdist_group("finished_smoke")
def test_report_on_the_finished_sweep(finished_smoke) -> None:
    """Leaderboard order, Parquet columns, valid PNGs, MLflow artifacts, ensemble, and the registered
    pyfunc model predicting what the training code computes for the same checkpoint."""
    sweep_dir, mlflow_server, res, _ = finished_smoke
    assert res.returncode == 0
    out = sweep_dir / "report"
    rep = subprocess.run([*launch_cmd()[:2], "tuner.report", "smoke", "--top", "3", "--out", str(out), "--ensemble", "2"],
                         cwd=sweep_dir, env=sweep_env(MLFLOW_TRACKING_URI=mlflow_server.uri), capture_output=True, text=True,
                         timeout=600)
    assert rep.returncode == 0, rep.stdout[-3000:] + rep.stderr[-3000:]

    table = pq.read_table(out / "report.parquet").to_pylist()
    ranked = [r for r in table if r["rank"] is not None]
    assert [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1))
    assert [r["val_acc"] for r in ranked] == sorted((r["val_acc"] for r in ranked), reverse=True)
    assert all(r["status"] in ("completed", "stopped") for r in ranked)
    for col in ("rank", "on_pareto_front", "param.lr", "param.reslt_alpha", "config.lr", "val_acc", "flops_ratio"):
        assert col in table[0]
    assert any(r["on_pareto_front"] for r in table)
    board = rep.stdout.splitlines()
    assert board[0].split()[:3] == ["rank", "trial", "lr"] and board[2].split()[1] == ranked[0]["trial_id"]

    importances = json.loads(pq.read_schema(out / "report.parquet").metadata[b"importances"])
    assert set(importances["importances"]["val_acc"]["fanova"]) == {"lr", "reslt_alpha", "train_exit_threshold",
                                                                    "inference_exit_threshold"}
    assert f"importance for val_acc (fANOVA; {importances['fidelity']}):" in rep.stdout
    assert json.loads((out / "importance.json").read_text()) == importances

    pngs = ["accuracy_vs_flops.png", "learning_curves.png", "group_accuracy.png", "threshold_curve.png",
            "param_importance.png", "param_slices.png", "parallel_coordinates.png"]
    for name in pngs:
        with Image.open(out / name) as img:
            img.verify()
            assert img.format == "PNG" and img.size[0] >= 600
    curve = json.loads((out / "threshold_curve.json").read_text())
    assert len(curve) >= 20 and [p["flops_ratio"] for p in curve] == sorted(p["flops_ratio"] for p in curve)
    ensemble = json.loads((out / "ensemble.json").read_text())
    assert ensemble["members"] == 2 and 0 <= ensemble["test_acc"] <= 1

    client = MlflowClient(mlflow_server.uri)
    parents, _ = _child_runs(client, "smoke")
    logged = {a.path for a in client.list_artifacts(parents[0].info.run_id, "report")}
    assert {f"report/{n}" for n in [*pngs, "report.parquet", "leaderboard.txt", "ensemble.json", "importance.json"]} <= logged
    exp_id = client.get_experiment_by_name("smoke").experiment_id
    assert len([r for r in client.search_runs([exp_id]) if r.data.tags.get("tuner.role") == "ensemble"]) == 1

    # The registered winner through mlflow.pyfunc: class, confidence and exit for 10 real test images,
    # the same as the training code's evaluation of the same checkpoint.
    import mlflow
    import mlflow.pyfunc

    from trainables.data.datasets import load_long_tailed
    from trainables.evaluate import ExitPredictions, predict_exits
    from tuner.report.sweep_trials import SweepTrials
    from tuner.sweep.trials_table import train_config_of
    from tuner.tracking.winner import build_served

    best = ranked[0]
    config = train_config_of(best)
    data = load_long_tailed(config)
    images = data.test_images[::max(1, len(data.test_labels) // 10)][:10]
    mlflow.set_tracking_uri(mlflow_server.uri)
    winner = mlflow.pyfunc.load_model("models:/smoke/1")
    got = winner.predict(images.permute(0, 2, 3, 1).numpy())
    assert list(got.columns) == ["predicted_class", "class_name", "confidence", "exit"] and len(got) == 10
    served, _ = build_served({k[7:]: v for k, v in best.items() if k.startswith("config.")},
                             SweepTrials(sweep_dir / "experiments" / "smoke").last_checkpoint(best["trial_id"]))
    preds = predict_exits(served.model, images, scale=config.exit_confidence_scale)
    exit_idx, probs = ExitPredictions(preds.probs).at_threshold(config.inference_exit_threshold)
    assert got["predicted_class"].tolist() == probs.argmax(1).tolist()
    assert got["exit"].tolist() == exit_idx.tolist()
    assert np.allclose(got["confidence"].to_numpy(), probs.max(1).values.numpy(), atol=1e-6)
    assert got["class_name"].tolist() == [data.class_names[i] for i in probs.argmax(1).tolist()]
    meta = winner.metadata.metadata
    assert meta["inference_exit_threshold"] == config.inference_exit_threshold and meta["class_names"] == data.class_names
