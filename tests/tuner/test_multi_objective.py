"""A two-objective sweep end to end: Optuna's study in Ray's saved searcher state holds both
objectives for every finished trial; ASHA still cuts on val_acc; the report shows the front."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import SPECS, launch_cmd, sweep_env

pytestmark = pytest.mark.slow


def test_val_acc_and_flops_ratio_are_searched_together(tmp_path: Path) -> None:
    shutil.copy(SPECS / "multi.yaml", tmp_path / "multi.yaml")
    res = subprocess.run(launch_cmd("multi.yaml"), cwd=tmp_path, env=sweep_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    exp = tmp_path / "experiments" / "multi"
    table = pq.read_table(exp / "trials.parquet").to_pylist()
    assert len(table) == 4 and all(r["flops_ratio"] > 0 for r in table)

    state_file = sorted(exp.glob("searcher-state-*.pkl"))[-1]
    with open(state_file, "rb") as f:
        state = pickle.load(f)
    study = state["_ot_study"]
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    finished = [t for t in study.trials if t.values is not None]
    assert finished and all(len(t.values) == 2 for t in finished)
    assert type(state["_sampler"]).__name__ == "NSGAIISampler"

    rep = subprocess.run([*launch_cmd()[:2], "tuner.report", "multi", "--no-mlflow"], cwd=tmp_path, env=sweep_env(),
                         capture_output=True, text=True, timeout=300)
    assert rep.returncode == 0, rep.stderr[-2000:]
    rows = pq.read_table(exp / "report.parquet").to_pylist()
    importances = json.loads((exp / "importance.json").read_text())
    for metric in ("val_acc", "flops_ratio"):  # both objectives explained, or the note says why not
        assert importances["importances"].get(metric) or any(n.startswith(metric) for n in importances["notes"]), importances
    front = [r for r in rows if r["on_pareto_front"]]
    # The front compares trials of one fidelity: the completed ones (a stopped trial ran fewer epochs).
    assert front and all(f["status"] == "completed" for f in front)
    assert all(not any(o["val_acc"] > f["val_acc"] and o["flops_ratio"] < f["flops_ratio"] for o in rows
                       if o["status"] == "completed") for f in front)
