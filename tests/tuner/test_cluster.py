"""Multi-node: the smoke sweep on a real two-node Ray cluster on this machine (a head and a second
node joined with `ray start --address`, one CPU each, token auth), and the pre-flight rules for
clusters that span machines."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import REPO, SMALL_SMOKE_TRIALS, launch_cmd, write_small_smoke
from mlflow import MlflowClient

from tuner.spec.schema import load_spec
from tuner.sweep.preflight import cluster_problems

SMOKE = load_spec(REPO / "search_spaces" / "smoke.yaml")
NODE = {"NodeManagerAddress": "10.0.0.2", "Resources": {"CPU": 8.0}}


@pytest.mark.slow
@pytest.mark.xdist_group("ray_address_file")  # `ray start` writes this machine's /tmp/ray/ray_current_cluster
def test_smoke_sweep_runs_on_both_nodes_and_reaches_mlflow_and_parquet(tmp_path: Path, ray_cluster, mlflow_server) -> None:
    write_small_smoke(tmp_path)  # 4 trials of 4 epochs: two at once, one on each node (smoke.yaml's 6 of 8 took 166 s)
    env = {**ray_cluster.env, "MLFLOW_TRACKING_URI": mlflow_server.uri}
    res = subprocess.run(launch_cmd("smoke.yaml", "--address", ray_cluster.address), cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "on 2 node(s), 2 CPUs" in res.stdout
    table = pq.read_table(tmp_path / "experiments" / "smoke" / "trials.parquet").to_pylist()
    assert len(table) == SMALL_SMOKE_TRIALS and len({r["node_id"] for r in table}) == 2, [r["node_id"] for r in table]
    client = MlflowClient(mlflow_server.uri)
    exp_id = client.get_experiment_by_name("smoke").experiment_id
    children = [r for r in client.search_runs([exp_id]) if "mlflow.parentRunId" in r.data.tags]
    assert {r.info.run_id for r in children} == {r["mlflow_run_id"] for r in table}
    assert all(client.get_metric_history(r["mlflow_run_id"], "val_acc") for r in table)


def test_machines_without_shared_storage_or_tracking_server_are_refused() -> None:
    two_hosts = [NODE, {**NODE, "NodeManagerAddress": "10.0.0.3"}]
    problems = cluster_problems(SMOKE, "sqlite:///mlflow.db", "/home/me/experiments/smoke", two_hosts, {"CPU": 16.0},
                                "10.0.0.2", "ext4")
    assert any(p.startswith("run.storage_path") for p in problems) and any(p.startswith("tracking.uri") for p in problems)
    fine = cluster_problems(SMOKE, "http://mlflow:5000", "s3://bucket/experiments/smoke", two_hosts, {"CPU": 16.0}, "10.0.0.2", None)
    assert fine == []
    nfs = cluster_problems(SMOKE, "http://mlflow:5000", "/shared/experiments/smoke", two_hosts, {"CPU": 16.0}, "10.0.0.2", "nfs4")
    assert nfs == []


def test_nodes_on_this_machine_may_share_a_local_folder() -> None:
    same_host = [NODE, {**NODE, "Resources": {"CPU": 1.0}}]
    assert cluster_problems(SMOKE, "sqlite:///mlflow.db", "/tmp/experiments/smoke", same_host, {"CPU": 9.0}, "10.0.0.2", "ext4") == []
