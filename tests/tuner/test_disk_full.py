"""A sweep whose storage fills up: refused before it starts, stopped resumably while it runs (exit 4,
with the folder and its free space named), and resumed by the same command once space is back with
every trial and metric recorded once. The full file system is a real one: a small tmpfs."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import SPECS, check_nothing_lost, launch_cmd, run_with_fault, sweep_env, trial_results, wait_for

from tuner.exit_codes import ExitCode
from tuner.sweep.disk_space import is_disk_full, shortages, sweep_folders


def test_disk_full_is_recognised_wherever_it_surfaces() -> None:
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError as inner:
            raise RuntimeError("could not save the experiment state") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)
    assert is_disk_full(sqlite3.OperationalError("database or disk is full"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied")) and not is_disk_full(ValueError("x"))


def test_the_folders_watched_are_the_sweeps_local_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNER_CACHE_DIR", str(tmp_path / "cache"))
    folders = sweep_folders(str(tmp_path / "experiments" / "smoke"), f"sqlite:///{tmp_path / 'db' / 'mlflow.db'}")
    assert folders == [tmp_path / "experiments" / "smoke", tmp_path / "db", tmp_path / "cache"]
    assert sweep_folders("s3://bucket/experiments/smoke", "http://127.0.0.1:5000") == [tmp_path / "cache"]
    # One line per file system, for a folder not made yet too (its nearest existing parent counts).
    assert len(shortages(folders, 1e12)) == 1 and shortages(folders, 0) == []


def test_a_sweep_short_of_space_does_not_start(tmp_path: Path) -> None:
    spec = (SPECS / "fault.yaml").read_text().replace("run:\n", "run:\n  min_free_mb: 1.0e+12\n", 1)
    (tmp_path / "fault.yaml").write_text(spec)
    res = subprocess.run(launch_cmd("fault.yaml"), cwd=tmp_path, env=sweep_env(), capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "storage full" in lines[0] and "MB free" in lines[0] and "not started" in lines[0]
    assert str(tmp_path / "experiments" / "fault") in lines[0] and "Traceback" not in res.stderr
    assert not (tmp_path / "experiments").exists()


@pytest.fixture
def small_disk(tmp_path: Path):
    """experiments/ of the sweep's folder on a 200 MB tmpfs (needs root, as CI and this machine have)."""
    mount = tmp_path / "experiments"
    mount.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", str(mount)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield tmp_path
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_sweep_whose_storage_fills_up_stops_and_resumes_when_space_is_back(small_disk: Path) -> None:
    spec = (SPECS / "fault.yaml").read_text().replace("run:\n", "run:\n  min_free_mb: 20\n", 1)
    (small_disk / "fault.yaml").write_text(spec)
    exp, ballast = small_disk / "experiments" / "fault", small_disk / "experiments" / "ballast"

    def fill_the_disk_once_one_trial_is_done(proc) -> None:
        def one_done_one_running():
            rows = trial_results(exp).values()
            return ([r for r in rows if r and r[-1]["status"] == "completed"]
                    and [r for r in rows if r and r[-1]["status"] == "running" and r[-1]["epoch"] >= 1])

        wait_for(one_done_one_running, 300, "one trial done and one running", proc)
        free = shutil.disk_usage(exp).free
        with open(ballast, "wb") as f:  # another user's files: 10 MB left, under the spec's 20
            os.posix_fallocate(f.fileno(), 0, free - 10 * 2**20)

    rc, output = run_with_fault(launch_cmd("fault.yaml"), small_disk, sweep_env(), fill_the_disk_once_one_trial_is_done,
                                log_name="first.log")
    assert rc == ExitCode.STORAGE_FULL, output[-3000:]
    message = [ln for ln in output.splitlines() if ln.startswith("tuner.launch: storage full")]
    assert len(message) == 1 and str(exp) in message[0] and "rerun the same command" in message[0], output[-3000:]
    assert "Traceback" not in output

    ballast.unlink()  # space is back
    res = subprocess.run(launch_cmd("fault.yaml"), cwd=small_disk, env=sweep_env(), capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "resuming sweep fault" in res.stdout
    check_nothing_lost(small_disk, f"sqlite:///{small_disk / 'mlflow.db'}")
