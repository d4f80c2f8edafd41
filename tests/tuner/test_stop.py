"""`python -m tuner.stop` from another process (issue 33): the running driver stops as on SIGTERM (exit
143, every trial keeping its checkpoint) and the command returns once it has; the rerun resumes, and a
trial whose checkpoint was damaged meanwhile starts over without costing the sweep (until 2026-12-07,
test_experiment_folder.py's own Ctrl-C sweep). With no driver running, one line and exit 2."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import SMALL_SMOKE_TRIALS, launch_cmd, run_with_fault, sweep_env, wait_for
from mlflow import MlflowClient
from test_sweep_integration import _child_runs

STOP = [sys.executable, "-m", "tuner.stop"]


@pytest.mark.slow
def test_a_stop_from_another_process_stops_the_driver_which_resumes_on_rerun_past_a_damaged_checkpoint(sweep_dir: Path) -> None:
    exp = sweep_dir / "experiments" / "smoke"
    stopped: dict = {}

    def stop_at_the_first_checkpoint(proc: subprocess.Popen) -> None:
        wait_for(lambda: list(exp.glob("*/checkpoint_*")), 300, "a first trial checkpoint", proc)
        started = time.time()
        res = subprocess.run([*STOP, "smoke"], cwd=sweep_dir, env=sweep_env(), capture_output=True, text=True, timeout=180)
        stopped.update(rc=res.returncode, out=res.stdout + res.stderr, seconds=time.time() - started)

    rc, first = run_with_fault(launch_cmd("smoke.yaml"), sweep_dir, sweep_env(), stop_at_the_first_checkpoint, log_name="first.log")
    assert stopped["rc"] == 0 and "tuner.stop: stopped" in stopped["out"], stopped
    assert stopped["seconds"] < 60, stopped  # what the command promises on the smoke sweep
    assert rc == 143, first[-3000:]
    assert "stopped by tuner.stop from" in first and "rerun the same command to resume" in first and "Traceback" not in first
    damaged = list(exp.glob("*/checkpoint_*/state.pt"))
    for state in damaged:
        state.write_bytes(state.read_bytes()[:100])  # cut short, as a full disk or a lost machine leaves it
    assert damaged
    res = subprocess.run(launch_cmd("smoke.yaml"), cwd=sweep_dir, env=sweep_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and "resuming sweep smoke" in res.stdout, res.stdout[-3000:] + res.stderr[-3000:]
    parents, children = _child_runs(MlflowClient(f"sqlite:///{sweep_dir / 'mlflow.db'}"), "smoke")
    assert len(parents) == 1 and len(children) == SMALL_SMOKE_TRIALS
    rows = pq.read_table(exp / "trials.parquet").to_pylist()  # the damaged checkpoint's trial started over and ended
    assert len(rows) == SMALL_SMOKE_TRIALS and not [r for r in rows if r["status"] == "failed"], rows
    print(f"\ntuner.stop returned after {stopped['seconds']:.1f} s")


def test_with_no_driver_running_it_is_one_line_and_exit_2(sweep_dir: Path) -> None:
    (sweep_dir / "experiments" / "smoke").mkdir(parents=True)
    for target in ("smoke", "nothing-here"):
        res = subprocess.run([*STOP, target], cwd=sweep_dir, env=sweep_env(), capture_output=True, text=True, timeout=120)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("tuner.stop: "), res.stderr
    assert "no driver is running this sweep" in subprocess.run([*STOP, "smoke"], cwd=sweep_dir, env=sweep_env(),
                                                               capture_output=True, text=True, timeout=120).stderr
