"""Trials trained data-parallel by Ray Train workers (resources.train_workers, issue 32), on CPUs with
gloo: a sweep of two trials of two workers each, one worker SIGKILLed mid-trial; and the requests that
are refused before anything starts. The math of the split is tests/trainables/test_data_parallel.py's."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SPECS, actor_processes, check_nothing_lost, launch_cmd, run_with_fault, sweep_env, trial_results, wait_for
from mlflow import MlflowClient

from tuner.spec.schema import SpecError, load_spec, parse_spec
from tuner.sweep.preflight import cluster_problems

NODE = {"NodeManagerAddress": "10.0.0.2", "Resources": {"CPU": 8.0, "GPU": 4.0}}


def train_worker_processes() -> list:
    return actor_processes("RayTrainWorker")


@pytest.mark.slow
def test_two_trials_of_two_workers_each_survive_a_killed_worker(tmp_path: Path) -> None:
    """The sweep runs end to end (a trial is one MLflow run with train_workers 2, one row, the winner
    registered), and a train worker SIGKILLed mid-trial costs its trial a restart from its checkpoint,
    with every epoch once in MLflow."""
    shutil.copy(SPECS / "fault_group.yaml", tmp_path / "fault.yaml")
    exp = tmp_path / "experiments" / "fault"
    killed: list[int] = []

    def kill_a_train_worker_past_epoch_2(proc) -> None:
        def trial_past_epoch_2():
            running = [rows for rows in trial_results(exp).values()
                       if rows and rows[-1]["epoch"] >= 2 and rows[-1]["status"] == "running"]
            return running and train_worker_processes()

        workers = wait_for(trial_past_epoch_2, 300, "a trial past epoch 2 and its train workers", proc)
        workers[0].send_signal(signal.SIGKILL)
        killed.append(workers[0].pid)

    rc, output = run_with_fault(launch_cmd("fault.yaml"), tmp_path, sweep_env(), kill_a_train_worker_past_epoch_2)
    assert rc == 0, output[-3000:]
    assert killed
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    figures = check_nothing_lost(tmp_path, uri)  # every trial completed once, every epoch once in MLflow
    assert figures["ray_retries"] >= 1
    client = MlflowClient(uri)
    exp_id = client.get_experiment_by_name("fault").experiment_id
    trials = [r for r in client.search_runs([exp_id]) if "mlflow.parentRunId" in r.data.tags]
    assert [r.data.params["train_workers"] for r in trials] == ["2", "2"]
    versions = client.search_model_versions("name='fault'")  # the winner, registered from rank 0's checkpoint
    assert len(versions) == 1 and versions[0].tags["trial_run_id"] in {r.info.run_id for r in trials}


def _smoke(**resources) -> dict:
    spec = yaml.safe_load((REPO / "search_spaces" / "smoke.yaml").read_text())
    spec["resources"].update(resources)
    return spec


@pytest.mark.parametrize("resources, message", [
    ({"train_workers": 2, "trials_per_worker": 2}, "use one of them"),
    ({"train_workers": 2, "gpu": 0.5}, "each train worker holds whole GPUs"),
    ({"train_workers": 128}, "at least one image for each"),  # smoke.yaml's batch is 64
])
def test_requests_a_group_cannot_serve_are_refused(resources: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(_smoke(**resources), "spec.yaml")


def test_groups_no_placement_can_give_are_refused(tmp_path: Path) -> None:
    def problems(nodes: int, **resources) -> list[str]:
        """What refuses the smoke sweep with `resources` on `nodes` nodes of 8 CPUs and 4 GPUs."""
        (tmp_path / "s.yaml").write_text(yaml.safe_dump(_smoke(**resources)))
        hosts = [{**NODE, "NodeManagerAddress": f"10.0.0.{i}"} for i in range(nodes)]
        return cluster_problems(load_spec(tmp_path / "s.yaml"), "http://mlflow:5000", "s3://b/x", hosts,
                                {"CPU": 8.0 * nodes, "GPU": 4.0 * nodes}, "10.0.0.0", None)

    assert problems(2, train_workers=8, gpu=1) == []  # 8 GPUs over two nodes of 4
    assert problems(2, train_workers=2, gpu=4) == []
    assert "need 16 GPUs" in problems(2, train_workers=16, gpu=1)[0]
    assert "need 10 GPUs (5 on one node), but the cluster has 16 (at most 4 on a node)" in problems(4, train_workers=2, gpu=5)[0]
    assert "need 20 CPUs, but the cluster has 16" in problems(2, train_workers=10, cpu=2)[0]


@pytest.mark.slow
def test_a_group_larger_than_this_machine_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(_smoke(train_workers=8)))
    res = subprocess.run(launch_cmd("s.yaml"), cwd=tmp_path, env=sweep_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    assert "resources.train_workers: 8 workers of 1 CPUs each need 8 CPUs" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "experiments" / "s" / "trials.parquet").exists()
