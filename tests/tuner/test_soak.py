"""A chaos soak, as Ray's own chaos tests do: the smoke sweep with 10 trials on smaller data, a random
trial process SIGKILLed at a look every 2 s (among those whose trial reported an epoch since it was
last killed; at most 8 kills), and, after the first 2 kills, the MLflow server stopped while a trial
trains (an epoch reported while it is down) and restarted. It must finish with 10 trial runs, each with
every epoch once (those of the outage too), one parent run and one model version. The figures (kills
survived, retries used, the most retries one trial needed, wall time) are printed for
docs/RELIABILITY.md. This is also the suite's test of an MLflow server restarted mid-sweep
(test_faults.py had its own until 2026-12-07)."""

from __future__ import annotations

import json
import random
import shutil
import signal
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO, SMALL_SMOKE_PER_CLASS, launch_cmd, run_with_fault, sweep_env, trial_processes, trial_results, wait_for
from mlflow import MlflowClient
from test_sweep_integration import _child_runs

pytestmark = pytest.mark.slow
# A kill every 10 s on 2 trial slots: each trial process lives about 20 s, a restart costs seconds of
# imports, and an unlucky trial is killed many times. With the defaults (a checkpoint every 2 epochs,
# 2 retries) trials run out of retries: with a checkpoint every 2 epochs, 2 of 24 failed with even 10
# retries (2026-12-01).
# What such a rate needs: a checkpoint every epoch and retries to match (the figures say how many).
# 8 trials (24 until 2026-12-06), a look every 5 s: only a trial that reported an epoch since it was
# last killed is killed (at most once an epoch), so the looks set how soon after its epoch, not how
# often. At one look every 10 s a fresh-clone CI run of the 8 trials (2026-12-06) met only 4 kill
# chances (the sweep took about 170 s, 20 of them with MLflow down) and failed its "at least 5 kills".
# The bug the 24-trial soak found (a process killed in its reset) has its own deterministic test
# (test_reset_death.py). Not fewer trials or images: 6 trials of 120 .. 12 images a class ended in 58 s
# with 2 kills (2026-12-07).
# Since 2026-12-07: 10 trials on the small smoke's data (120 .. 12 images a class, not smoke.yaml's 200 .. 20), a
# look every 2 s, and at most MAX_KILLS kills. Each kill costs its trial a new process's start-up: uncapped,
# that run had 17 kills in 148 s (8 trials with looks every 5 s: 9 in 146 s, and 327 s in a fresh-clone CI
# run). 8 trials with looks every 2 s had only 5 kills on a busy machine.
TRIALS, KILL_EVERY, MAX_FAILURES, MAX_KILLS = 10, 2.0, 50, 8
# The outage after the first kills, not before: on those short epochs the sweep ended 20 s after an outage
# taken first (3 kills, 2026-12-07).
KILLS_BEFORE_OUTAGE = 2
OUTAGE_EPOCHS = 1  # epochs reported while MLflow is down: their metrics must reach it afterwards
ASHA_RUNGS, LAST_EPOCH = (2, 4), 8  # smoke.yaml's ASHA (grace period 2, reduction factor 2) decides at 2 and 4


def test_a_sweep_under_repeated_kills_and_a_tracking_restart_loses_nothing(tmp_path: Path, mlflow_server) -> None:
    spec = yaml.safe_load((REPO / "search_spaces" / "smoke.yaml").read_text())
    spec["run"].update(max_failures=MAX_FAILURES, checkpoint_every=1)  # the defaults are for occasional faults
    spec["data"]["synthetic_train_per_class"] = SMALL_SMOKE_PER_CLASS
    (tmp_path / "smoke.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    exp = tmp_path / "experiments" / "smoke"
    rng = random.Random(0)
    kills: list[float] = []
    restarted: list[float] = []
    outage: dict[str, int] = {}  # how long MLflow was down, and the epochs the trials reported meanwhile

    def reported_epochs() -> int:
        return sum(len(rows) for rows in trial_results(exp).values()) if exp.exists() else 0

    killed_pids: set[int] = set()  # the trial processes killed so far

    def chaos(proc) -> None:
        started = time.time()
        while proc.poll() is None:
            time.sleep(KILL_EVERY)
            # Only a trial that reported an epoch (a checkpoint: checkpoint_every 1) since it was last killed: on a
            # busy machine a restarted process may need more than one kill interval to get there, and killing it
            # again before it does would test the machine's speed, not the sweep. Since: its last row came from a
            # process not killed (Ray's `pid` of each result), not "more rows than when it was killed": a trial can
            # report between this look and the kill, and that row, from the dead process, then looked like progress
            # of a restarted one (a run of 2026-12-07 took the outage then, when both trials were restarting, each
            # waiting for MLflow to reopen its run, and waited 300 s for an epoch).
            results = trial_results(exp) if exp.exists() else {}
            progressed = [f for f, rows in results.items() if rows and rows[-1]["status"] == "running"
                          and rows[-1]["pid"] not in killed_pids]
            if len(kills) >= KILLS_BEFORE_OUTAGE and not restarted and any(
                    results[f][-1]["epoch"] not in ASHA_RUNGS and results[f][-1]["epoch"] + 1 < LAST_EPOCH for f in progressed):
                # Down while a trial that trains (its MLflow run made: one that starts meanwhile waits for MLflow)
                # reports its next epoch, and for at least one kill interval; then back. Its last epoch is not one
                # of ASHA's rungs, so ASHA has not stopped it there: it reports the next. Nor is the next its last: a
                # trial closes its MLflow run before its last report, and so waits for MLflow there (a CI run of
                # 2026-12-07, where the outage came after kills, waited 300 s for it). No kill meanwhile.
                before, down_at = reported_epochs(), time.time()
                mlflow_server.stop()
                time.sleep(KILL_EVERY)
                wait_for(lambda before=before: reported_epochs() >= before + OUTAGE_EPOCHS, 300, "an epoch reported while MLflow is down",
                         proc)
                outage.update(seconds=round(time.time() - down_at), epochs=reported_epochs() - before)
                mlflow_server.start()
                restarted.append(time.time() - started)
                continue
            victims = [(f, p) for f in progressed for p in trial_processes(exp, f)] if len(kills) < MAX_KILLS else []
            if victims:
                folder, victim = rng.choice(victims)
                try:
                    victim.send_signal(signal.SIGKILL)
                    kills.append(time.time() - started)
                    killed_pids.add(victim.pid)
                except psutil.NoSuchProcess:
                    pass

    t0 = time.time()
    rc, output = run_with_fault(launch_cmd("smoke.yaml", "--num-samples", str(TRIALS)), tmp_path,
                                sweep_env(MLFLOW_TRACKING_URI=mlflow_server.uri), chaos, timeout=1800)
    wall = time.time() - t0
    assert rc == 0, output[-4000:]
    assert restarted and len(kills) >= 5, (kills, restarted)
    assert "lost its process" in output  # each kill is named as it happens (test_faults.py's trial kill is this test's)

    table = pq.read_table(exp / "trials.parquet").to_pylist()
    assert len(table) == TRIALS == len({r["trial_id"] for r in table})
    assert {r["status"] for r in table} <= {"completed", "stopped"}, [(r["trial_id"], r["status"], r["error"]) for r in table]
    client = MlflowClient(mlflow_server.uri)
    parents, children = _child_runs(client, "smoke")
    assert len(parents) == 1 and len(children) == TRIALS
    by_run = {r["mlflow_run_id"]: r for r in table}
    assert sorted(by_run) == sorted(c.info.run_id for c in children)
    for child in children:
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val_acc")]
        assert steps == list(range(1, by_run[child.info.run_id]["epochs_run"] + 1)), f"missing or duplicated epochs: {steps}"
    assert len(client.search_model_versions("name='smoke'")) == 1

    from ray.tune import ExperimentAnalysis

    failures = [t.num_failures for t in ExperimentAnalysis(str(exp)).trials]
    figures = {"trials": TRIALS, "kills": len(kills), "mlflow_restarts": len(restarted), "ray_retries": sum(failures),
               "most_retries_of_one_trial": max(failures), "max_failures": MAX_FAILURES, "wall_seconds": round(wall),
               "mlflow_down_seconds": outage["seconds"], "epochs_while_mlflow_down": outage["epochs"],
               "trials_lost": 0, "epochs_lost_or_duplicated": 0}
    print(f"\nsoak figures: {json.dumps(figures)}")
    (tmp_path / "soak.json").write_text(json.dumps(figures))
    shutil.rmtree(exp, ignore_errors=True)
