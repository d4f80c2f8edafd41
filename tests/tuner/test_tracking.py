"""TrialLogger against a real MLflow store: whole epochs per batch, an outage queues instead of
losing, a restarted trial re-sends only what MLflow lacks, and a reopened run never repeats a step."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

import tuner.tracking as tracking
from tuner.tracking import TrialLogger, TrialTracking


@pytest.fixture
def store(tmp_path: Path) -> TrialTracking:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("t")
    parent = client.create_run(exp).info.run_id
    return TrialTracking(uri, exp, parent, "t")


def _steps(store: TrialTracking, run_id: str, key: str = "val_acc") -> list[int]:
    return [m.step for m in MlflowClient(store.uri).get_metric_history(run_id, key)]


def _epoch(step: int) -> dict:
    return {"epoch": step, "val_acc": 0.1 * step, "train_loss": 1.0 / step, "status": "running"}


def test_an_outage_queues_epochs_and_a_restart_sends_exactly_the_missing_ones(store, monkeypatch) -> None:
    log = TrialLogger(store, "trial1", "trial1")
    log.log_epoch(_epoch(1), 1)
    log.log_epoch(_epoch(2), 2)
    assert _steps(store, log.run_id) == [1, 2] and log.unsent() == []

    monkeypatch.setattr(tracking.server, "PATIENCE_SECONDS", 1.0)
    good_client = log.client
    log.client = MlflowClient("http://127.0.0.1:9")  # nothing listens there: every call fails at once
    log.log_epoch(_epoch(3), 3)
    log.log_epoch(_epoch(4), 4)  # still backing off: queued without a try
    unsent = log.unsent()
    assert [step for step, _ in unsent] == [3, 4]
    assert _steps(store, log.run_id) == [1, 2]

    # The process dies; its checkpoint held `unsent`. Epoch 3 happened to reach MLflow before that.
    good_client.log_batch(log.run_id, metrics=log.pending[0][1])
    restarted = TrialLogger(store, "trial1", "trial1", unsent)
    assert restarted.run_id == log.run_id
    assert _steps(store, log.run_id) == [1, 2, 3, 4]  # 3 not sent twice, 4 not lost
    restarted.log_epoch(_epoch(4), 4)  # the epoch re-run after the restart is not logged again
    restarted.log_epoch(_epoch(5), 5)
    restarted.finish("completed", artifacts={"final.json": {"ok": True}})
    run = MlflowClient(store.uri).get_run(log.run_id)
    assert _steps(store, log.run_id) == [1, 2, 3, 4, 5]
    assert run.data.tags["tuner.status"] == "completed" and run.info.status == "FINISHED"


def test_finish_raises_when_mlflow_stays_down(store, monkeypatch) -> None:
    monkeypatch.setattr(tracking.server, "PATIENCE_SECONDS", 1.0)
    log = TrialLogger(store, "trial2", "trial2")
    log.client = MlflowClient("http://127.0.0.1:9")
    log.log_epoch(_epoch(1), 1)
    with pytest.raises(tracking.TrackingUnreachable, match="not sent"):
        log.finish("completed")
    assert [step for step, _ in log.unsent()] == [1]  # still there for the checkpoint


def test_batches_never_split_an_epoch(store) -> None:
    log = TrialLogger(store, "trial3", "trial3")
    log.client, real = None, log.client
    sent: list[list[int]] = []

    class Recorder:
        def log_batch(self, run_id, metrics=()):
            sent.append(sorted({m.step for m in metrics}))
            real.log_batch(run_id, metrics=metrics)

    big = {f"class_acc_{i}": 0.5 for i in range(400)}
    for step in (1, 2, 3):
        log.pending.append((step, [Metric(k, v, 0, step) for k, v in big.items()]))
    log.client = Recorder()
    assert log.flush(patience=1.0)
    assert sent == [[1, 2], [3]]  # 800 values fit in one batch of at most 900; the third epoch goes whole in the next


def test_epochs_a_stopped_trial_still_had_queued_are_sent_from_ray_tunes_results(store) -> None:
    """ASHA stops a trial from outside while MLflow is down: its queued epochs die with its process,
    and the sweep's end sends them from Ray Tune's results, each epoch once."""
    from tuner.trial.trainable import REPORTED_AT, STARTED_AT, logged_epochs

    log = TrialLogger(store, "trial1", "trial1")
    log.log_epoch(_epoch(1), 1)

    def ray_report(step: int, at: float) -> dict:  # what Ray Tune's results table holds for one report
        return {**_epoch(step), "training_iteration": step, "timestamp": int(at), "pid": 4242, "done": False,
                "time_this_iter_s": 1.5, "config/lr": 0.1, "trial_id": "trial1", STARTED_AT: 1.0e9, REPORTED_AT: at}

    now = time.time()
    reports = [ray_report(1, now + 1), ray_report(2, now + 2), ray_report(2, now + 3), ray_report(3, now + 4)]
    assert tracking.send_missing_epochs(store.uri, log.run_id, logged_epochs(reports)) == [2, 3]
    assert _steps(store, log.run_id) == [1, 2, 3] and _steps(store, log.run_id, "train_loss") == [1, 2, 3]
    held = MlflowClient(store.uri).get_run(log.run_id).data.metrics
    assert not {"training_iteration", "pid", "time_this_iter_s", "config/lr", STARTED_AT, REPORTED_AT} & set(held)
    last = MlflowClient(store.uri).get_metric_history(log.run_id, "val_acc")[-1]
    assert last.timestamp == int((now + 4) * 1000)  # when the trial reported it, not when it was sent
    assert tracking.send_missing_epochs(store.uri, log.run_id, logged_epochs(reports)) == []


def test_outcome_tags_name_untrained_exits_and_divergence() -> None:
    from tuner.tracking import UNTRAINED_EXITS_TAG, outcome_tags

    tags = outcome_tags({"epoch": 7, "status": "running", "untrained_exits": "0,2"})
    assert tags == {"tuner.last_epoch": "7", UNTRAINED_EXITS_TAG: "0,2"}
    assert UNTRAINED_EXITS_TAG not in outcome_tags({"epoch": 7, "status": "completed", "untrained_exits": ""})
    diverged = outcome_tags({"epoch": 3, "status": "diverged", "diverged_reason": "nan", "diverged_epoch": 3, "diverged_step": 9})
    assert diverged["tuner.diverged_step"] == "9" and diverged["diverged_reason"] == "nan"


RACE = """
import sys, time
from mlflow import MlflowClient
import mlflow.store.tracking.sqlalchemy_store  # imported before the start, so that they really start together
from tuner.tracking import prepare_store
uri, start = sys.argv[1], float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
prepare_store(uri)
MlflowClient(uri).search_experiments(max_results=1)
"""


@pytest.mark.slow
def test_a_new_sqlite_store_used_first_by_four_processes_at_once_is_made_once(tmp_path: Path) -> None:
    """Without the lock, 9 of 12 such processes failed here ('table ... already exists', 2026-12-01)."""
    import os
    import subprocess
    import sys
    import time

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    start = time.time() + 8
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [subprocess.Popen([sys.executable, "-c", RACE, uri, str(start)], stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], "\n".join(e[-1500:] for e in errors)


def test_a_store_left_mid_transaction_by_a_killed_process_is_not_damaged(tmp_path) -> None:
    """A SIGKILL mid-write (the driver-kill fault test, CI 2026-12-06) leaves a hot journal: the next open
    rolls it back, which a read-only check cannot do ('attempt to write a readonly database')."""
    import sqlite3
    import subprocess
    import sys

    from tuner.tracking.server import sqlite_damage

    db = tmp_path / "mlflow.db"
    writer = ("import os, sqlite3, sys\n"
              "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
              "db.execute('CREATE TABLE t (x TEXT)'); db.execute(\"INSERT INTO t VALUES ('kept')\")\n"
              "db.execute('PRAGMA cache_size=1'); db.execute('BEGIN')\n"
              "for i in range(2000):\n    db.execute('INSERT INTO t VALUES (?)', ('x' * 500,))\n"
              "os.kill(os.getpid(), 9)\n")
    subprocess.run([sys.executable, "-c", writer, str(db)], timeout=60)
    assert (tmp_path / "mlflow.db-journal").is_file()  # hot: its writer died holding the transaction
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as ro:
        try:
            ro.execute("PRAGMA quick_check(1)").fetchone()
            read_only_failed = False
        except sqlite3.OperationalError as exc:
            read_only_failed = "readonly" in str(exc)
    assert read_only_failed  # the old check's verdict
    assert sqlite_damage(db) is None
    assert sqlite3.connect(db).execute("SELECT x FROM t").fetchall() == [("kept",)]  # rolled back, nothing lost


def test_the_sweeps_live_best_does_not_hold_ray_tune_while_mlflow_is_down(store) -> None:
    """The driver's live-table callback runs inside Ray Tune's loop, which every trial's report waits on:
    with MLflow down it tries once and goes on (in the soak of 2026-12-07 every trial waited 5 minutes on
    it), and the best it could not send is sent at the next trial's end."""
    from types import SimpleNamespace

    from tuner.spec.schema import load_spec
    from tuner.sweep import live_table

    spec = load_spec(Path(__file__).resolve().parents[2] / "search_spaces" / "smoke.yaml")
    down = SimpleNamespace(uri="http://127.0.0.1:9", parent_run_id=store.parent_run_id)  # nothing listens there
    rows = [{"status": "completed", "val_acc": 0.5, "test_acc": 0.4, "flops_ratio": 0.2}]
    callback = live_table.RefreshTrialsTable()
    try:
        live_table.watch(spec, "unused", down)
        started = time.time()
        with pytest.raises(Exception):  # noqa: B017 - whatever MLflow's client raises for a refused connection
            callback._update_parent(rows)
        assert time.time() - started < 15  # one try, not server.PATIENCE_SECONDS (300 s)
        live_table.watch(spec, "unused", SimpleNamespace(uri=store.uri, parent_run_id=store.parent_run_id))
        callback._update_parent(rows)  # the next trial's end: the same best, sent now
    finally:
        live_table.watch(None, None, None)
    assert MlflowClient(store.uri).get_run(store.parent_run_id).data.metrics["best_val_acc"] == 0.5
