"""Driver-side Ray Tune callback: a running sweep's results are readable before it ends.

Each time a trial ends (completes, diverges, is stopped by ASHA, fails), trials.parquet is written
again, whole (a temporary file, then a rename: tuner/sweep/trials_table.py), with one row per trial
that has ended so far, so that `python -m tuner.report NAME` works on a running or stopped sweep;
and when the best value of the objective changes, the sweep's MLflow parent run gets it at once
(best_val_acc and the rest, as finish_parent_run logs them at the end), so the MLflow UI shows the
sweep's best while it runs. The table at the sweep's end is still the one finish_sweep writes.

What to write where is set by the launcher for this process (`watch`), not stored in the callback:
Ray Tune pickles callbacks with the experiment, and a resumed sweep gets that old copy.
"""

from __future__ import annotations

from typing import Any

from ray.tune import Callback

from trainables.names import COST, OBJECTIVE, TEST_METRIC
from tuner.spec.schema import SweepSpec
from tuner.sweep.trials_table import ranked, trial_row, trials_table, write_table

_watched: dict[str, Any] = {"spec": None, "experiment": None, "tracking": None}


def watch(spec: SweepSpec, experiment: str, tracking: Any) -> None:
    """The sweep whose table and parent run this driver keeps current (launcher, before fit)."""
    _watched.update(spec=spec, experiment=experiment, tracking=tracking)


class RefreshTrialsTable(Callback):
    def __init__(self) -> None:
        self._best: float | None = None

    def _refresh(self, trials: list, ending: Any, error: Any) -> None:
        spec, exp = _watched["spec"], _watched["experiment"]
        if spec is None:
            return
        # Ray Tune calls back before it sets the ending trial's status: that one is taken as it ends.
        ended = [t for t in trials if t.status in ("TERMINATED", "ERROR") and t is not ending]
        rows = [trial_row(spec, t.last_result or {}, t.config or {}, t.error_file if t.status == "ERROR" else None)
                for t in ended] + [trial_row(spec, ending.last_result or {}, ending.config or {}, error)]
        for what, refresh in (("the trials table", lambda: write_table(trials_table(spec, rows), exp)),
                              ("the sweep's best on its MLflow parent run", lambda: self._update_parent(rows))):
            try:
                refresh()
            except Exception as exc:  # noqa: BLE001 - a view of the sweep so far: the sweep goes on, the end writes it again
                print(f"tuner: could not refresh {what} yet ({type(exc).__name__}: {str(exc)[:120]})", flush=True)

    def _update_parent(self, rows: list[dict[str, Any]]) -> None:
        spec, tracking = _watched["spec"], _watched["tracking"]
        best = ranked(rows, spec.objective.metric, spec.objective.mode)
        if tracking is None or not best or best[0][OBJECTIVE] == self._best:
            return
        import time

        from mlflow.entities import Metric

        from tuner.tracking import retry, tracking_client

        now = int(time.time() * 1000)
        metrics = [Metric(f"best_{key}", float(best[0][key]), now, 0) for key in (OBJECTIVE, TEST_METRIC, COST)
                   if isinstance(best[0].get(key), (int, float))]
        # One request and one try, not retry's patience: this runs inside Ray Tune's loop, and while it waited
        # for an MLflow server that was down, every trial waited with it (the soak, 2026-12-07: 5 minutes). A
        # best that could not be sent is sent at the next trial's end; the sweep's end sends it patiently.
        retry(lambda: tracking_client(tracking.uri).log_batch(tracking.parent_run_id, metrics=metrics), patience=0)
        self._best = best[0][OBJECTIVE]

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._refresh(trials, trial, None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._refresh(trials, trial, trial.error_file or "error")
