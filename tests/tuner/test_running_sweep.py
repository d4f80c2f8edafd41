"""A running sweep is readable before it ends (issue 33): trials.parquet is written again, whole, as
trials end, so `python -m tuner.report` works while the driver still runs; the parent run's best value
is in MLflow at the same time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import SMALL_SMOKE_TRIALS, launch_cmd, run_with_fault, sweep_env, wait_for
from mlflow import MlflowClient
from test_sweep_integration import _child_runs


@pytest.mark.slow
def test_the_report_reads_a_running_sweep_and_the_parent_shows_its_best(sweep_dir: Path) -> None:
    table_file = sweep_dir / "experiments" / "smoke" / "trials.parquet"
    seen: dict = {}

    def report_while_it_runs(proc: subprocess.Popen) -> None:
        wait_for(table_file.is_file, 300, "a first ended trial's table", proc)
        seen["rows"] = pq.read_table(table_file).num_rows
        res = subprocess.run([sys.executable, "-m", "tuner.report", "smoke", "--no-mlflow", "--out", str(sweep_dir / "early")],
                             cwd=sweep_dir, env=sweep_env(), capture_output=True, text=True, timeout=300)
        seen.update(rc=res.returncode, out=res.stdout + res.stderr, running=proc.poll() is None)
        parents, _ = _child_runs(MlflowClient(f"sqlite:///{sweep_dir / 'mlflow.db'}"), "smoke")
        seen["parent_best"] = parents[0].data.metrics.get("best_val_acc")

    rc, output = run_with_fault(launch_cmd("smoke.yaml"), sweep_dir, sweep_env(), report_while_it_runs)
    assert rc == 0, output[-3000:]
    assert seen["running"] and 1 <= seen["rows"] < SMALL_SMOKE_TRIALS, seen  # read before the end, with what had ended
    assert seen["rc"] == 0 and "tuner.report: " in seen["out"], seen["out"][-3000:]
    assert seen["parent_best"] is not None and 0 <= seen["parent_best"] <= 1
    assert pq.read_table(table_file).num_rows == SMALL_SMOKE_TRIALS  # the end's table has every trial
