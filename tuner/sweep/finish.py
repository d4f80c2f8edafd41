"""What happens when a sweep's trials are done: the Parquet table, MLflow statuses, the registered
best model, the parent run's summary, and a short report on the terminal.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from trainables.names import RESULT_METRICS
from tuner.spec.schema import SweepSpec
from tuner.sweep.experiment import TABLE_FILE
from tuner.sweep.slot_use import describe as describe_slot_use
from tuner.sweep.slot_use import slot_use
from tuner.sweep.trials_table import config_of, ranked, trial_row, trials_table, write_table
from tuner.tracking import TrialTracking, mark_trial_run, outcome_tags, send_missing_epochs
from tuner.tracking.sweep_run import finish_parent_run, register_best_model, retire_forgotten_trial_runs
from tuner.tracking.trial_status import ENDED_FROM_OUTSIDE, TRIAL_STATUSES
from tuner.tracking.ui_link import ui_lines
from tuner.trial.trainable import CHECKPOINT_FILE, logged_epochs


def write_trials_table(spec: SweepSpec, results: list[Any], exp: str) -> tuple[list[dict[str, Any]], Any, str]:
    """(rows, table, where it went): trials.parquet of the trials Ray reports, also for a sweep cut short."""
    rows = [trial_row(spec, r.metrics or {}, r.config or {}, r.error) for r in results]
    table = trials_table(spec, rows)
    return rows, table, write_table(table, exp)


def remake_trials_table(spec: SweepSpec, exp: str) -> str:
    """trials.parquet of a finished sweep again, from the results Ray Tune saved (nothing runs, nothing
    is registered again); where it went."""
    from ray.tune import ExperimentAnalysis, ResultGrid

    return write_trials_table(spec, list(ResultGrid(ExperimentAnalysis(exp))), exp)[2]


def _send_missing_epochs(tracking: TrialTracking, rows: list[dict[str, Any]], reports: list[list[dict]]) -> None:
    """Every epoch Ray Tune holds, in MLflow too: a trial stopped from outside while the tracking server
    was down still had some queued (tuner/tracking/trial_run.py, send_missing_epochs)."""
    sent = {row["trial_id"]: send_missing_epochs(tracking.uri, row["mlflow_run_id"], logged_epochs(trial_reports))
            for row, trial_reports in zip(rows, reports) if row["mlflow_run_id"]}
    late = {trial: epochs for trial, epochs in sent.items() if epochs}
    if late:
        print(f"tuner: sent {sum(map(len, late.values()))} epoch(s) of {len(late)} trial(s) that MLflow lacked "
              f"(they ended while it was unreachable): " + ", ".join(f"{t} {e}" for t, e in sorted(late.items())))


def no_checkpoint_to_register(spec: SweepSpec, best: dict[str, Any]) -> str:
    """Why no model is registered when the best trial has no checkpoint: ASHA stopped it before its first one
    (a trial that ends by itself always checkpoints its last epoch), and the way out."""
    return (f"no model registered: the best trial {best.get('trial_name') or best['trial_id']} was stopped at epoch "
            f"{best['epochs_run']}, before its first checkpoint (run.checkpoint_every {spec.run.checkpoint_every}); "
            f"retrain it with python -m tuner.reproduce --from-sweep {spec.name}, or checkpoint more often")


def finish_sweep(spec: SweepSpec, grid: Any, tracking: TrialTracking, exp: str, seconds: float, slots: int) -> dict[str, Any]:
    """`seconds`: how long the sweep's trials ran in this command (Tune's fit), on `slots` trial slots."""
    now = time.time()
    results = list(grid)
    reports = [[] if r.metrics_dataframe is None else r.metrics_dataframe.to_dict("records") for r in results]
    use = slot_use(reports, (now - seconds, now), slots)
    rows, table, table_path = write_trials_table(spec, results, exp)
    _send_missing_epochs(tracking, rows, reports)
    for row in rows:  # the callback marks runs live; this makes sure, e.g. after a driver restart
        if row["mlflow_run_id"] and row["status"] in ENDED_FROM_OUTSIDE:
            mark_trial_run(tracking.uri, row["mlflow_run_id"], row["status"],
                           outcome_tags({"epoch": row["epochs_run"], "untrained_exits": row["untrained_exits"]}))
    forgotten = retire_forgotten_trial_runs(tracking, {r["trial_id"] for r in rows})
    if forgotten:
        print(f"tuner: deleted {len(forgotten)} MLflow run(s) of trials that a driver started just before it died and "
              f"that Ray Tune's saved state did not hold (tag tuner.status = forgotten): {', '.join(forgotten)}")
    counts = {s: sum(r["status"] == s for r in rows) for s in TRIAL_STATUSES}
    leaders = ranked(rows, spec.objective.metric, spec.objective.mode)
    best = leaders[0] if leaders else None
    registered = unregistered = None
    if best is not None and spec.tracking.register_model:
        result = next(r for r in results if (r.metrics or {}).get("trial_id") == best["trial_id"])
        if result.checkpoint is None:
            unregistered = no_checkpoint_to_register(spec, best)
        else:
            with result.checkpoint.as_directory() as folder:
                config = config_of(best)
                metrics = {k: best[k] for k in (*RESULT_METRICS, "epochs_run")
                           if best.get(k) is not None}
                registered = register_best_model(tracking, spec, config, Path(folder) / CHECKPOINT_FILE, best["mlflow_run_id"], metrics)
    summary = {
        "sweep": spec.name, "trials": len(rows), **counts, "wall_seconds": round(seconds, 1),
        "table": table_path, "best": best and {k: v for k, v in best.items() if not k.startswith("config.")},
        "registered_model": registered, "not_registered": unregistered, "slot_use": use,
    }
    with tempfile.TemporaryDirectory() as tmp:  # MLflow logs local files; the folder may be on s3://
        local_table = Path(tmp) / TABLE_FILE
        pq.write_table(table, local_table)
        finish_parent_run(tracking, local_table, summary)
    _print_summary(spec, summary, best, tracking)
    return summary


def _print_summary(spec: SweepSpec, summary: dict[str, Any], best: dict[str, Any] | None, tracking: TrialTracking) -> None:
    m = spec.objective.metric
    print(f"tuner: sweep {spec.name} finished: {summary['trials']} trials ({summary['completed']} completed, "
          f"{summary['stopped']} stopped early, {summary['diverged']} diverged, {summary['failed']} failed) "
          f"in {summary['wall_seconds']:.0f} s")
    print(f"tuner: trial slots: {describe_slot_use(summary['slot_use'])}")
    if best:
        searched = ", ".join(f"{p.name}={best.get('config.' + p.name)!r}" for p in spec.search)
        print(f"tuner: best trial {best.get('trial_name') or best['trial_id']} ({best['trial_id']}, {best['status']}, "
              f"{best['epochs_run']} epochs): {m} {best[m]:.4f}, test_acc {best.get('test_acc') or 0:.4f}, "
              f"flops_ratio {best.get('flops_ratio') or 0:.3f}; {searched}")
    print(f"tuner: all trials: {summary['table']}")
    if summary["registered_model"]:
        r = summary["registered_model"]
        print(f"tuner: registered model {r['registered_model']} version {r['version']} ({r['model_uri']})")
    elif summary["not_registered"]:
        print(f"tuner: {summary['not_registered']}")
    print(f"tuner: MLflow experiment '{spec.mlflow_experiment}', parent run {tracking.parent_run_id}")
    for line in ui_lines(tracking.uri, tracking.experiment_id, tracking.parent_run_id, m, spec.objective.mode):
        print(f"tuner: {line}")
