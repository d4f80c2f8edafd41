"""`python -m tuner.stop` from another process (issue 33): the running driver stops as on SIGTERM (exit
143, every trial keeping its checkpoint) and the command returns once it has; the rerun resumes, and a
trial whose checkpoint was damaged meanwhile starts over without costing the sweep (until 2026-12-07,
test_experiment_folder.py's own Ctrl-C sweep). The same sweep's rerun is then stopped by Ctrl-C and
resumed: the interrupt-and-resume of a sweep with every trial exactly once (until 2026-12-07,
test_sweep_integration.py's own sweep). With no driver running, one line and exit 2."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import SMALL_SMOKE_TRIALS, launch_cmd, run_with_fault, sweep_env, wait_for
from mlflow import MlflowClient
from test_sweep_integration import _check_children, _child_runs, _ray_trials

STOP = [sys.executable, "-m", "tuner.stop"]


@pytest.mark.slow
def test_a_sweep_stopped_by_tuner_stop_then_by_ctrl_c_resumes_each_time_with_every_trial_exactly_once(sweep_dir: Path) -> None:
    """One sweep, three launches: `tuner.stop` at the first trial checkpoint (exit 143); the checkpoints
    damaged; the rerun, whose damaged trials start over, stopped by Ctrl-C once a trial ended in it
    (exit 130); the third finishes it. Until 2026-12-07 the Ctrl-C resume had its own sweep
    (test_sweep_integration.py, 95 s of CI). Then the finished sweep's reruns: nothing runs twice."""
    exp = sweep_dir / "experiments" / "smoke"
    spec = yaml.safe_load((sweep_dir / "smoke.yaml").read_text())
    # FIFO: every trial runs its 4 epochs, so trials are left to resume at each stop. With ASHA from epoch 1 on
    # the small data, the trials of a CI run (2026-12-07) had all ended by the time the rerun's Ctrl-C came.
    spec["scheduler"] = {"type": "fifo"}
    (sweep_dir / "smoke.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
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

    def ctrl_c_once_a_trial_ended(proc: subprocess.Popen) -> None:
        # One, not two: the resumed sweep's trials end fast (ASHA from epoch 1), and after two had ended the
        # rest had ended too before the Ctrl-C (2026-12-07).
        def one_ended():
            text = (sweep_dir / "second.log").read_text()
            return any(" trial " in ln and (" completed at" in ln or " stopped at" in ln) for ln in text.splitlines())

        wait_for(one_ended, 300, "a trial to end", proc)
        proc.send_signal(signal.SIGINT)

    rc, second = run_with_fault(launch_cmd("smoke.yaml"), sweep_dir, sweep_env(), ctrl_c_once_a_trial_ended,
                                log_name="second.log", timeout=120)
    assert "resuming sweep smoke" in second, second[-3000:]
    assert rc == 130, second[-3000:]
    assert "interrupted; every trial keeps its last checkpoint: rerun the same command to resume" in second

    res = subprocess.run(launch_cmd("smoke.yaml"), cwd=sweep_dir, env=sweep_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and "resuming sweep smoke" in res.stdout, res.stdout[-3000:] + res.stderr[-3000:]
    table = pq.read_table(exp / "trials.parquet")
    rows = table.to_pylist()  # the damaged checkpoints' trials started over and ended
    assert len(rows) == SMALL_SMOKE_TRIALS and not [r for r in rows if r["status"] == "failed"], rows
    ids = table.column("trial_id").to_pylist()
    assert len(set(ids)) == SMALL_SMOKE_TRIALS and sorted(_ray_trials(exp)) == sorted(ids)
    client = MlflowClient(f"sqlite:///{sweep_dir / 'mlflow.db'}")
    parents, children = _child_runs(client, "smoke")
    assert len(parents) == 1 and len(children) == SMALL_SMOKE_TRIALS
    _check_children(client, children, table, SMALL_SMOKE_TRIALS)  # every epoch once in MLflow
    print(f"\ntuner.stop returned after {stopped['seconds']:.1f} s")

    # The same command once more: the sweep is done; nothing runs, nothing is registered twice.
    again = subprocess.run(launch_cmd("smoke.yaml"), cwd=sweep_dir, env=sweep_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already finished" in again.stdout
    assert len(client.search_model_versions("name='smoke'")) == 1

    # Its trials table damaged after the end (cut short): the same command remakes it from Ray's saved
    # results, equal to the one the sweep wrote, and still registers nothing.
    table_file = exp / "trials.parquet"
    table_file.write_bytes(table_file.read_bytes()[:100])
    again = subprocess.run(launch_cmd("smoke.yaml"), cwd=sweep_dir, env=sweep_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "remade" in again.stdout and "already finished" in again.stdout, again.stderr[-2000:]
    remade = pq.read_table(table_file)

    def by_trial(t):
        return sorted(t.to_pylist(), key=lambda row: row["trial_id"])
    assert by_trial(remade) == by_trial(table) and remade.schema.metadata == table.schema.metadata
    assert len(client.search_model_versions("name='smoke'")) == 1


def test_with_no_driver_running_it_is_one_line_and_exit_2(sweep_dir: Path) -> None:
    (sweep_dir / "experiments" / "smoke").mkdir(parents=True)
    for target in ("smoke", "nothing-here"):
        res = subprocess.run([*STOP, target], cwd=sweep_dir, env=sweep_env(), capture_output=True, text=True, timeout=120)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("tuner.stop: "), res.stderr
    assert "no driver is running this sweep" in subprocess.run([*STOP, "smoke"], cwd=sweep_dir, env=sweep_env(),
                                                               capture_output=True, text=True, timeout=120).stderr
