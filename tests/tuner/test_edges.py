"""The edges a real deployment meets, each with the real thing: a cluster address nothing answers (a
closed port) or something else answers, two sweeps that first use one new SQLite MLflow store at the
same moment, and a storage path that cannot be written. Each ends with one line and its exit code, and
the rerun loses nothing. SIGTERM to a running driver (docker stop, Kubernetes) is test_grow.py's first
step; SIGTERM during start-up is test_sigterm.py's."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import free_port, launch_cmd, sweep_env, write_small_smoke
from mlflow import MlflowClient
from test_sweep_integration import _child_runs

pytestmark = pytest.mark.slow


def _one_line_failure(res: subprocess.CompletedProcess, code: int = 2) -> str:
    assert res.returncode == code, res.stdout[-2000:] + res.stderr[-2000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr[-3000:]
    return lines[0]


def test_an_address_nothing_answers_at_ends_in_seconds_with_one_line(sweep_dir: Path) -> None:
    port = free_port()  # closed: nothing listens there
    started = time.time()
    res = subprocess.run(launch_cmd("smoke.yaml", "--address", f"127.0.0.1:{port}"), cwd=sweep_dir, env=sweep_env(),
                         capture_output=True, text=True, timeout=120)
    seconds = time.time() - started
    line = _one_line_failure(res)
    assert line.startswith(f"tuner.launch: --address 127.0.0.1:{port}: nothing answered at 127.0.0.1:{port} for 20 s")
    assert "connection refused" in line and "ray status" in line
    print(f"refused after {seconds:.1f} s")  # 20 s of tries; the timeout above is the verdict: Ray alone waits minutes
    assert not (sweep_dir / "experiments").exists()


def test_an_address_where_something_else_answers_ends_with_one_line(sweep_dir: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: [accepted.append(listener.accept()) for _ in range(64)], daemon=True).start()
    try:
        started = time.time()
        res = subprocess.run(launch_cmd("smoke.yaml", "--address", f"127.0.0.1:{port}"), cwd=sweep_dir, env=sweep_env(),
                             capture_output=True, text=True, timeout=180)
        seconds = time.time() - started
    finally:
        listener.close()
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-3000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"tuner.launch: --address 127.0.0.1:{port}: it answers, but no Ray cluster joined within 30 s"), last
    print(f"ended after {seconds:.1f} s")  # the watchdog's 30 s; the timeout above is the verdict: ray.init alone waits for ever


def test_two_sweeps_that_first_use_one_new_sqlite_store_at_once_both_finish(tmp_path: Path) -> None:
    store = tmp_path / "shared" / "mlflow.db"
    store.parent.mkdir()
    procs = []
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        spec_file = write_small_smoke(folder, trials=2, epochs=2)
        spec_file.write_text(spec_file.read_text().replace("name: smoke", f"name: {name}", 1))
        procs.append(subprocess.Popen(launch_cmd("smoke.yaml"), cwd=folder, env=sweep_env(MLFLOW_TRACKING_URI=f"sqlite:///{store}"),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, out[-2000:] + err[-3000:]
        assert "Traceback" not in err, err[-3000:]
    client = MlflowClient(f"sqlite:///{store}")
    for name in ("first", "second"):
        parents, children = _child_runs(client, name)
        assert len(parents) == 1 and len(children) == 2, name
        assert len(client.search_model_versions(f"name='{name}'")) == 1


def test_a_storage_path_that_cannot_be_written_is_named_as_such(sweep_dir: Path) -> None:
    res = subprocess.run(launch_cmd("smoke.yaml", "--storage-path", "/proc/tuner-experiments"), cwd=sweep_dir, env=sweep_env(),
                         capture_output=True, text=True, timeout=120)
    line = _one_line_failure(res)
    assert line.startswith("tuner.launch: cannot write /proc/tuner-experiments/smoke") and "storage full" not in line, line
    assert "--storage-path" in line
