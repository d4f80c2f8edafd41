"""A running sweep is readable before it ends (issue 33): trials.parquet is written again, whole, as
trials end, so `python -m tuner.report` works while the driver still runs; the parent run's best value
is in MLflow at the same time; `python -m tuner.status` from another process says where it stands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import SMALL_SMOKE_TRIALS, launch_cmd, run_with_fault, sweep_env, wait_for
from mlflow import MlflowClient
from test_sweep_integration import _child_runs


def _saved_best(exp: Path) -> bool:
    """Whether the state Ray Tune saved (what tuner.status reads) holds a measured trial yet."""
    from tuner.status import sweep_status

    try:
        return sweep_status(str(exp))["best"] is not None
    except Exception:  # noqa: BLE001 - no state saved yet, or one being written
        return False


@pytest.mark.slow
def test_the_report_reads_a_running_sweep_and_the_parent_shows_its_best(sweep_dir: Path) -> None:
    table_file = sweep_dir / "experiments" / "smoke" / "trials.parquet"
    seen: dict = {}

    def report_while_it_runs(proc: subprocess.Popen) -> None:
        wait_for(table_file.is_file, 300, "a first ended trial's table", proc)
        client = MlflowClient(f"sqlite:///{sweep_dir / 'mlflow.db'}")
        wait_for(lambda: _child_runs(client, "smoke")[0][0].data.metrics.get("best_val_acc") is not None, 120,
                 "the parent run's best so far", proc)  # logged just after the table is written
        wait_for(lambda: _saved_best(sweep_dir / "experiments" / "smoke"), 120, "Ray Tune's saved state with a result", proc)
        seen["rows"] = pq.read_table(table_file).num_rows
        # The driver holds still while the other commands read the sweep (its trials go on), so that what they
        # see is a running sweep on any machine: on a busy one the sweep had finished before tuner.status ran.
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            res = subprocess.run([sys.executable, "-m", "tuner.report", "smoke", "--no-mlflow", "--out", str(sweep_dir / "early")],
                                 cwd=sweep_dir, env=sweep_env(), capture_output=True, text=True, timeout=300)
            seen.update(rc=res.returncode, out=res.stdout + res.stderr, running=proc.poll() is None)
            parents, _ = _child_runs(client, "smoke")
            seen["parent_best"] = parents[0].data.metrics.get("best_val_acc")
            status = subprocess.run([sys.executable, "-m", "tuner.status", "smoke"], cwd=sweep_dir, env=sweep_env(),
                                    capture_output=True, text=True, timeout=120)
            seen.update(status_rc=status.returncode, status=status.stdout + status.stderr)
        finally:
            os.kill(proc.pid, signal.SIGCONT)

    rc, output = run_with_fault(launch_cmd("smoke.yaml"), sweep_dir, sweep_env(), report_while_it_runs)
    assert rc == 0, output[-3000:]
    # Read while the driver ran, with what had ended (on a busy machine that can be every trial: Ray Tune's saved
    # state, which tuner.status reads, may lag the table by several trials; the sweep had still not ended).
    assert seen["running"] and 1 <= seen["rows"] <= SMALL_SMOKE_TRIALS, seen
    assert seen["rc"] == 0 and "tuner.report: " in seen["out"], seen["out"][-3000:]
    assert seen["parent_best"] is not None and 0 <= seen["parent_best"] <= 1
    assert pq.read_table(table_file).num_rows == SMALL_SMOKE_TRIALS  # the end's table has every trial
    # python -m tuner.status from another process: while it ran, and once it finished
    assert seen["status_rc"] == 0, seen["status"]
    lines = seen["status"].splitlines()
    assert lines[0].endswith(": running") and lines[1].startswith("trials: ") and f"of {SMALL_SMOKE_TRIALS} ended" in lines[1]
    assert lines[2].startswith("best so far: t") and "val_acc" in lines[2] and "trial-hours: " in seen["status"]
    done = subprocess.run([sys.executable, "-m", "tuner.status", "smoke"], cwd=sweep_dir, env=sweep_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.splitlines()[0].endswith(": finished"), done.stdout + done.stderr
    assert f"trials: {SMALL_SMOKE_TRIALS} of {SMALL_SMOKE_TRIALS} ended" in done.stdout
    print(f"\nwhile running:\n{seen['status']}\nfinished:\n{done.stdout}")
    missing = subprocess.run([sys.executable, "-m", "tuner.status", "no-such-sweep"], cwd=sweep_dir, env=sweep_env(),
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
