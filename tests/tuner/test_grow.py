"""Growing a sweep (issue 33): a sweep interrupted by SIGTERM resumed with a larger num_samples and a changed
max_concurrent, then the finished sweep grown again with --num-samples; a smaller num_samples than
the trials it made is refused. Every trial runs once, the new trials continue the same Optuna study,
and the trials that ended are neither retrained nor logged again (MLflow, a real server)."""

from __future__ import annotations

import pickle
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import MlflowServer, launch_cmd, run_with_fault, sweep_env, wait_for, write_small_smoke
from mlflow import MlflowClient
from test_sweep_integration import _check_children, _child_runs


def test_what_may_change_on_a_resume_is_what_does_not_change_a_trials_result() -> None:
    import dataclasses

    from tuner.spec.schema import load_spec
    from tuner.sweep.experiment import spec_fingerprint

    spec = load_spec(Path(__file__).resolve().parents[2] / "search_spaces" / "smoke.yaml")
    grown = dataclasses.replace(spec, run=dataclasses.replace(spec.run, num_samples=40, max_concurrent=1, max_failures=5),
                                resources=dataclasses.replace(spec.resources, cpu=2.0, trials_per_worker=2))
    assert spec_fingerprint(grown) == spec_fingerprint(spec)
    assert spec_fingerprint(grown, legacy=True) != spec_fingerprint(spec, legacy=True)  # the old one held them
    other_scheduler = dataclasses.replace(spec, scheduler=dataclasses.replace(spec.scheduler, reduction_factor=3))
    assert spec_fingerprint(other_scheduler) != spec_fingerprint(spec)


def _study_params(exp: Path) -> list[dict]:
    """The parameters of every trial in the Optuna study the sweep's searcher saved, in order."""
    newest = sorted(exp.glob("searcher-state-*.pkl"))[-1]
    return [t.params for t in pickle.loads(newest.read_bytes())["_ot_study"].trials]


def _results(exp: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in exp.glob("*/result.json")}


@pytest.mark.slow
def test_a_sweep_grows_when_interrupted_and_when_finished_without_running_a_trial_twice(tmp_path: Path) -> None:
    (tmp_path / "mlflow-server").mkdir()
    server = MlflowServer(tmp_path / "mlflow-server")
    server.start()
    try:
        env = sweep_env(MLFLOW_TRACKING_URI=server.uri)
        spec_file = write_small_smoke(tmp_path, trials=2)
        exp = tmp_path / "experiments" / "smoke"

        def stop_at_the_first_checkpoint(proc: subprocess.Popen) -> None:
            wait_for(lambda: list(exp.glob("*/checkpoint_*")), 300, "a first trial checkpoint", proc)
            proc.terminate()

        # SIGTERM (docker stop, Kubernetes, SLURM) stops the sweep as Ctrl-C does: one line, no Ray abort or
        # traceback (test_edges.py's own SIGTERM sweep until 2026-12-07; the resume below is its rerun).
        rc, first = run_with_fault(launch_cmd("smoke.yaml"), tmp_path, env, stop_at_the_first_checkpoint, log_name="first.log")
        assert rc == 143, first[-3000:]
        assert "stopped by SIGTERM; every trial keeps its last checkpoint: rerun the same command to resume" in first
        assert "SIGTERM received" not in first and "PC: @" not in first and "Traceback" not in first, first[-3000:]

        res = subprocess.run(launch_cmd("smoke.yaml", "--num-samples", "1"), cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == 2 and "has made 2 trials already" in res.stderr, res.stdout[-2000:] + res.stderr[-2000:]
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr

        # The interrupted sweep, resumed with 3 trials, one at a time: the run section may change.
        spec = yaml.safe_load(spec_file.read_text())
        spec["run"].update(num_samples=3, max_concurrent=1)
        spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
        res = subprocess.run(launch_cmd("smoke.yaml"), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0 and "resuming sweep smoke: 3 trials" in res.stdout, res.stdout[-3000:] + res.stderr[-3000:]
        before = pq.read_table(exp / "trials.parquet").to_pylist()
        assert len(before) == 3
        results_before, study_before = _results(exp), _study_params(exp)
        assert len(study_before) == 3

        # The finished sweep, grown by one trial from the command line.
        res = subprocess.run(launch_cmd("smoke.yaml", "--num-samples", "4"), cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=600)
        assert res.returncode == 0 and "growing sweep smoke from 3 to 4 trials" in res.stdout, \
            res.stdout[-3000:] + res.stderr[-3000:]
        table = pq.read_table(exp / "trials.parquet")
        after = table.to_pylist()
        assert len(after) == 4
        by_id = {r["trial_id"]: r for r in after}
        for row in before:  # neither retrained nor changed
            assert {k: by_id[row["trial_id"]][k] for k in ("status", "epochs_run", "val_acc", "mlflow_run_id")} == \
                {k: row[k] for k in ("status", "epochs_run", "val_acc", "mlflow_run_id")}
        results_after = _results(exp)
        assert all(results_after[folder] == data for folder, data in results_before.items())  # no epoch ran again
        study_after = _study_params(exp)
        assert study_after[:3] == study_before and len(study_after) == 4  # the same study, one trial more

        client = MlflowClient(server.uri)
        parents, children = _child_runs(client, "smoke")
        assert len(parents) == 1 and len(children) == 4
        _check_children(client, children, table, trials=4)  # every epoch of every trial once
        versions = client.search_model_versions("name='smoke'")
        assert len({v.tags["trial_run_id"] for v in versions}) == len(versions) >= 1  # a winner is registered once
    finally:
        server.stop()
