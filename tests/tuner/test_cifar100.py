"""CIFAR-100-LT end to end (issue 30): 100-class data in CIFAR-100's own format (written here: there is
no CIFAR-100 copy on this machine) swept through the whole path: Ray Tune, ASHA at explicit
milestones, MLflow, the registered model and the report with its rung correlation."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from cifar_files import write_cifar100_folder
from conftest import launch_cmd, sweep_env
from mlflow import MlflowClient

from trainables.data.synthetic import make_synthetic

pytestmark = pytest.mark.slow
TRIALS, EPOCHS = 4, 4

# The shipped CIFAR-100 sweep, small: the same preset (its ResLT branches on classes 30-99 and 60-99),
# narrow and short, DRW and the first decay at epoch 2 so that a cut at epoch 2 is warned about.
SPEC = {
    "name": "c100",
    # 30 down to 3 training images per class: no class has the >100 of 'count' groups' many, so the groups
    # are given (thirds of the classes, head first).
    "data": {"dataset": "cifar100", "imbalance_ratio": 10, "val_per_class": 3, "class_groups": "0-29;30-59;60-99"},
    "train": {"preset": "hybrid_m4", "backbone": "resnet20", "widths": [8, 16, 24], "exit_channels": 16, "epochs": EPOCHS,
              "warmup_epochs": 1, "lr_decay_epochs": [2, 3], "drw_start_epoch": 2, "batch_size": 64},
    "search": {"lr": {"type": "loguniform", "low": 0.01, "high": 0.2},
               "reslt_alpha": {"type": "uniform", "low": 0.8, "high": 0.99}},
    "searcher": {"seed": 5},
    "scheduler": {"type": "asha", "milestones": [2, 3], "reduction_factor": 2},
    "resources": {"cpu": 1, "gpu": 0},
    "run": {"num_samples": TRIALS, "max_concurrent": 2, "checkpoint_every": 1},
}


def test_a_cifar100_lt_sweep_runs_through_ray_mlflow_and_the_report(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_cifar100_folder(data, make_synthetic(30, 9, seed=100, num_classes=100))  # 30 .. 3 training images per class
    (tmp_path / "c100.yaml").write_text(yaml.safe_dump({**SPEC, "data": {**SPEC["data"], "data_dir": str(data)}}))
    res = subprocess.run(launch_cmd("c100.yaml"), cwd=tmp_path, env=sweep_env(), capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    warning = next(line for line in res.stdout.splitlines() if line.startswith("tuner: warning:"))
    assert "cut at epoch 2, before DRW starts at epoch 2 and the learning rate first decays at epoch 2" in warning, warning

    table = pq.read_table(tmp_path / "experiments" / "c100" / "trials.parquet").to_pylist()
    assert len(table) == TRIALS and {r["config.dataset"] for r in table} == {"cifar100"}
    assert {r["config.reslt_class_split"] for r in table} == {"seeds"}
    assert {r["status"] for r in table} <= {"completed", "stopped"}
    assert {r["epochs_run"] for r in table if r["status"] == "stopped"} <= {2, 3}  # cut at the milestones only
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for row in table:
        run = client.get_run(row["mlflow_run_id"])
        assert {"val_acc", "many_acc", "medium_acc", "few_acc", "flops_ratio"} <= set(run.data.metrics), run.data.metrics
        steps = [m.step for m in client.get_metric_history(row["mlflow_run_id"], "val_acc")]
        assert steps == list(range(1, row["epochs_run"] + 1))

    import mlflow.pyfunc

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/c100/1")
    images = make_synthetic(1, 1, seed=7, num_classes=100).test_images[:5]
    predicted = model.predict(images)["predicted_class"].tolist()
    assert len(predicted) == 5 and all(0 <= c < 100 for c in predicted)
    assert model.metadata.metadata["class_names"] == [f"pattern{i}" for i in range(100)]

    out = tmp_path / "report"
    rep = subprocess.run([*launch_cmd()[:2], "tuner.report", "c100", "--out", str(out)], cwd=tmp_path, env=sweep_env(),
                         capture_output=True, text=True, timeout=600)
    assert rep.returncode == 0, rep.stdout[-3000:] + rep.stderr[-3000:]
    assert "rung correlation (Spearman's rho" in rep.stdout
    correlations = json.loads((out / "rung_correlation.json").read_text())
    completed = sum(r["status"] == "completed" for r in table)
    assert [c["epoch"] for c in correlations] == [2, 3] and all(c["trials"] == completed for c in correlations)
    assert json.loads(pq.read_schema(out / "report.parquet").metadata[b"rung_correlation"]) == correlations
    parent = next(r for r in client.search_runs([client.get_experiment_by_name("c100").experiment_id])
                  if r.data.tags.get("tuner.role") == "sweep")
    assert parent.data.metrics["rung_trials_epoch_2"] == completed
    print(f"\n{warning}\n" + "\n".join(line for line in rep.stdout.splitlines() if "rung" in line or "epoch " in line))
