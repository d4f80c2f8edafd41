"""Driver-side Ray Tune callback: record in MLflow how trials ended that could not say so themselves.

A trial that completes or diverges tags its own MLflow run. One that ASHA stops is ended from
outside, and one that fails may die before it can log; this callback marks their child runs
'stopped' (MLflow status FINISHED: a result) or 'failed' (FAILED) as soon as Ray reports it.
"""

from __future__ import annotations

from typing import Any

from ray.tune import Callback

from tuner.sweep.trials_table import trial_status
from tuner.tracking import mark_trial_run, outcome_tags
from tuner.tracking.trial_status import ENDED_FROM_OUTSIDE


class MarkEndedTrials(Callback):
    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri

    def _mark(self, trial: Any, error: Any) -> None:
        result = trial.last_result or {}
        run_id = result.get("mlflow_run_id")
        status = trial_status(result, error)
        if run_id and status in ENDED_FROM_OUTSIDE:
            try:
                mark_trial_run(self.tracking_uri, run_id, status, outcome_tags(result), patience=5.0)
            except Exception as exc:  # noqa: BLE001 - finish_sweep reconciles every run again at the end
                print(f"tuner: could not tag MLflow run {run_id} as {status} yet ({type(exc).__name__})")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._mark(trial, None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._mark(trial, trial.error_file or "error")
