"""The experiment folder: one sweep, one driver (a lock that a dead driver does not leave in the way),
and a damaged state file refused with the way out."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SMALL_SMOKE_TRIALS, launch_cmd, sweep_env, wait_for
from mlflow import MlflowClient

from tuner.sweep.experiment import LOCK_FILE, STALE_SECONDS, SWEEP_STATE_FILE, DriverLock, ExperimentError, process_start, read_state


def _lock(exp: Path, **holder) -> None:
    exp.mkdir(parents=True, exist_ok=True)
    (exp / LOCK_FILE).write_text(json.dumps({"started": time.time(), "heartbeat": time.time(), **holder}))


def test_a_running_driver_keeps_the_sweep_and_a_dead_ones_lock_is_taken_over(tmp_path: Path) -> None:
    exp = tmp_path / "smoke"
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _lock(exp, host=socket.gethostname(), pid=driver.pid, process_start=process_start(driver.pid))
        with pytest.raises(ExperimentError, match=f"being run by another driver \\(process {driver.pid} on host"):
            DriverLock(str(exp)).acquire()
    finally:
        driver.kill()
        driver.wait()
    with DriverLock(str(exp)) as lock:  # the driver is gone: its lock does not block the rerun
        assert json.loads((exp / LOCK_FILE).read_text())["pid"] == lock.me["pid"]
        with pytest.raises(ExperimentError, match="wait for it to finish, or stop it"):
            DriverLock(str(exp)).acquire()  # and now ours keeps others out
    assert not (exp / LOCK_FILE).exists()  # released


def test_locks_from_other_hosts_count_until_their_heartbeat_stops(tmp_path: Path) -> None:
    exp = tmp_path / "sweep"
    _lock(exp, host="another-node", pid=4242)
    with pytest.raises(ExperimentError, match="process 4242 on host another-node"):
        DriverLock(str(exp)).acquire()
    _lock(exp, host="another-node", pid=4242, heartbeat=time.time() - STALE_SECONDS - 1)
    DriverLock(str(exp)).acquire()  # stale: that machine's driver is lost


def test_a_reused_pid_or_half_a_lock_does_not_keep_a_sweep_locked(tmp_path: Path) -> None:
    exp = tmp_path / "sweep"
    import os

    _lock(exp, host=socket.gethostname(), pid=os.getpid(), process_start="1")  # our pid, but another process's start
    DriverLock(str(exp)).acquire()
    (exp / LOCK_FILE).write_text('{"host": "')  # a lock cut off mid-write
    DriverLock(str(exp)).acquire()


def test_a_damaged_state_file_is_refused_with_the_way_out(tmp_path: Path) -> None:
    exp = tmp_path / "sweep"
    exp.mkdir()
    for damage in (b"", b"{\"spec_finger", b"\xff\xfe garbage", b"[1, 2]"):
        (exp / SWEEP_STATE_FILE).write_bytes(damage)
        with pytest.raises(ExperimentError, match="is damaged.*--restart.*or remove that file"):
            read_state(str(exp))


@pytest.mark.slow
def test_two_launches_of_one_sweep_give_one_sweep(sweep_dir: Path) -> None:
    env = sweep_env()
    first = subprocess.Popen(launch_cmd("smoke.yaml"), cwd=sweep_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    wait_for(lambda: (sweep_dir / "experiments" / "smoke" / LOCK_FILE).exists(), 120, "the first driver's lock", first)
    second = subprocess.run(launch_cmd("smoke.yaml"), cwd=sweep_dir, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2, second.stdout + second.stderr
    assert f"being run by another driver (process {first.pid} on host" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1 and "Traceback" not in second.stderr
    out, _ = first.communicate(timeout=600)
    assert first.returncode == 0, out[-3000:]

    client = MlflowClient(f"sqlite:///{sweep_dir / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("smoke").experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("tuner.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == SMALL_SMOKE_TRIALS
    assert len(client.search_model_versions("name='smoke'")) == 1
    assert not (sweep_dir / "experiments" / "smoke" / LOCK_FILE).exists()
