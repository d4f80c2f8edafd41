"""The smoke sweep with three trials per worker (resources.trials_per_worker: 3), on a real Ray runtime
against a real MLflow server: every trial is still its own Ray Tune trial (its MLflow child run with
every epoch, its Parquet row, ASHA's decisions), the registered model is there, and the trials were
trained by fewer processes than there are trials."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import FINISHED_SMOKE_TRIALS, REPO, MlflowServer, launch_cmd, sweep_env, write_small_smoke
from mlflow import MlflowClient
from test_sweep_integration import _check_children, _child_runs

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("worker_sweep")]  # the module's sweep runs once
K = 3


@pytest.fixture(scope="session")  # session: under xdist a module fixture is remade when another module's test runs between
def worker_sweep(tmp_path_factory: pytest.TempPathFactory):
    """The smoke sweep of FINISHED_SMOKE_TRIALS trials of 4 epochs (conftest's write_small_smoke; smoke.yaml's 8
    epochs took 204 s of CI, 2026-12-07) with trials_per_worker: 3 and no cap on trials at once (two workers
    on 2 cores)."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    server.start()
    folder = tmp_path_factory.mktemp("worker-sweep")
    spec_file = write_small_smoke(folder, FINISHED_SMOKE_TRIALS, max_concurrent=None)
    spec = yaml.safe_load(spec_file.read_text())
    spec["resources"]["trials_per_worker"] = K
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    res = subprocess.run(launch_cmd("smoke.yaml"), cwd=folder, env=sweep_env(MLFLOW_TRACKING_URI=server.uri),
                         capture_output=True, text=True, timeout=900)
    yield folder, server, res
    server.stop()


def test_each_trial_of_a_worker_is_still_its_own_trial(worker_sweep) -> None:
    from tuner.spec.schema import load_spec
    from tuner.sweep.trials_table import trial_row

    folder, server, res = worker_sweep
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert f"worker(s) of {K} trials each" in res.stdout
    table = pq.read_table(folder / "experiments" / "smoke" / "trials.parquet")
    assert table.num_rows == FINISHED_SMOKE_TRIALS
    rows = table.to_pylist()
    assert {r["status"] for r in rows} <= {"completed", "stopped"} and any(r["status"] == "stopped" for r in rows), \
        "ASHA stopped no trial"
    assert any(r["status"] == "completed" for r in rows)
    # The same columns as a sweep without workers: both are made by trial_row.
    assert table.column_names == list(trial_row(load_spec(folder / "smoke.yaml"), {}, {}, None))
    client = MlflowClient(server.uri)
    parents, children = _child_runs(client, "smoke")
    assert len(parents) == 1 and len(children) == FINISHED_SMOKE_TRIALS
    _check_children(client, children, table)  # every epoch once, statuses, names, parameters
    assert len(client.search_model_versions("name='smoke'")) == 1


def test_fewer_processes_trained_than_there_were_trials(worker_sweep) -> None:
    folder, _, res = worker_sweep
    assert res.returncode == 0
    trainers: dict[str, set[int]] = {}
    for result_file in (folder / "experiments" / "smoke").glob("*/result.json"):
        reports = [json.loads(line) for line in result_file.read_text().splitlines()]
        trainers[result_file.parent.name] = {r["worker_pid"] for r in reports}
    assert len(trainers) == FINISHED_SMOKE_TRIALS and all(len(pids) == 1 for pids in trainers.values()), trainers
    processes = set().union(*trainers.values())
    assert 1 <= len(processes) < FINISHED_SMOKE_TRIALS, processes
    per_process = [sum(pids == {pid} for pids in trainers.values()) for pid in processes]
    assert max(per_process) > 1, "no process trained more than one trial"


def test_a_sweep_searching_what_members_share_is_refused_before_it_starts(tmp_path: Path) -> None:
    spec = yaml.safe_load((REPO / "search_spaces" / "smoke.yaml").read_text())
    spec["resources"]["trials_per_worker"] = 2
    del spec["train"]["batch_size"]
    spec["search"]["batch_size"] = {"type": "choice", "values": [32, 64]}
    (tmp_path / "smoke.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    res = subprocess.run(launch_cmd("smoke.yaml"), cwd=tmp_path, env=sweep_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "resources.trials_per_worker" in res.stderr and "batch_size" in res.stderr
    assert not (tmp_path / "experiments").exists()


def test_more_trials_per_worker_than_its_memory_holds_is_refused_measured(tmp_path: Path) -> None:
    spec = yaml.safe_load((REPO / "search_spaces" / "smoke.yaml").read_text())
    spec["resources"]["trials_per_worker"] = 1_000_000
    (tmp_path / "smoke.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    res = subprocess.run(launch_cmd("smoke.yaml"), cwd=tmp_path, env=sweep_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("tuner.launch: resources.trials_per_worker: 1000000 members need about") and "at most" in last, last
    assert "Traceback" not in res.stderr
    shutil.rmtree(tmp_path / "experiments", ignore_errors=True)
