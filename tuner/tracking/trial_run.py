"""A trial's MLflow run: one nested child run per trial under the sweep's parent run, logged from the
trial process.

`TrialLogger` is what a trial uses. It buffers metrics and sends them in batches with retries, so a
tracking server that restarts, or an SQLite file locked by a concurrent trial, delays metrics
instead of losing them. It finds its child run by the tag `tuner.trial_id`, so a retried or
resumed trial continues the same run, and it skips epochs the run already holds: no duplicated
steps. Run status tags (`tuner.status`): completed, stopped (by ASHA), diverged, failed; a run
also says its last epoch, why it diverged, and which early exits did not train in its last epoch
(`tuner.untrained_exits`: their loss was paid by fewer than 1% of the samples).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from trainables.names import COMPLETED, DIVERGED
from tuner.tracking import server
from tuner.tracking.server import TrackingUnreachable, retry, tracking_client
from tuner.tracking.trial_status import FAILED, STOPPED

STATUS_TAG = "tuner.status"
TRIAL_TAG = "tuner.trial_id"
SWEEP_TAG = "tuner.sweep"
UNTRAINED_EXITS_TAG = "tuner.untrained_exits"
# A trial the scheduler stopped, or one that diverged and reported its worst values, is a result:
# MLflow's FINISHED (its tuner.status tag says which). Only a crash is MLflow's FAILED; KILLED,
# which the UI draws as a red cross beside failures, is not used.
MLFLOW_STATUS = {COMPLETED: "FINISHED", DIVERGED: "FINISHED", STOPPED: "FINISHED", FAILED: "FAILED"}


def outcome_tags(metrics: dict[str, Any]) -> dict[str, str]:
    """Tags that say how a trial ended, from its last flat metrics (a Ray result, or a checkpoint's copy)."""
    tags = {"tuner.last_epoch": str(metrics.get("epoch"))}
    if metrics.get("status") == DIVERGED:
        tags.update({"diverged_reason": str(metrics.get("diverged_reason")),
                     "tuner.diverged_epoch": str(metrics.get("diverged_epoch")),
                     "tuner.diverged_step": str(metrics.get("diverged_step"))})
    if metrics.get("untrained_exits"):
        tags[UNTRAINED_EXITS_TAG] = str(metrics["untrained_exits"])
    return tags


def numeric_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a flat metrics dict (strings and None are not MLflow metrics)."""
    import math

    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


@dataclass
class TrialTracking:
    """What a trial process needs to log: plain values, so Ray can ship it to any node."""

    uri: str
    experiment_id: str
    parent_run_id: str
    sweep_name: str


class TrialLogger:
    """Buffered, retrying logging of one trial's child run.

    Metrics are queued per epoch and sent in batches that never split an epoch, so the run's
    `epoch` metric tells exactly which epochs MLflow holds. A failed send keeps the queue and backs
    off for a few seconds (training goes on); `unsent()` goes into every checkpoint, and a trial
    restarted from that checkpoint re-queues what MLflow does not have yet.
    """

    BACKOFF_SECONDS = 10.0

    def __init__(self, tracking: TrialTracking, trial_id: str, trial_name: str, unsent: list | None = None):
        self.tracking, self.trial_id, self.trial_name = tracking, trial_id, trial_name
        self.client = tracking_client(tracking.uri)
        self.pending: list[tuple[int, list]] = []  # (step, [Metric, ...]) in epoch order
        self._next_try = 0.0
        self.run_id, self.logged_through = retry(self._find_or_create_run)
        self._requeue(unsent or [])

    def _find_or_create_run(self) -> tuple[str, int]:
        runs = self.client.search_runs(
            [self.tracking.experiment_id],
            filter_string=f"tags.`{TRIAL_TAG}` = '{self.trial_id}' and tags.`mlflow.parentRunId` = '{self.tracking.parent_run_id}'",
            max_results=1,
        )
        if runs:
            run = runs[0]
            history = self.client.get_metric_history(run.info.run_id, "epoch")
            if run.info.status != "RUNNING":
                self.client.update_run(run.info.run_id, status="RUNNING")
            return run.info.run_id, int(max((m.step for m in history), default=0))
        run = self.client.create_run(
            self.tracking.experiment_id,
            run_name=self.trial_name,
            tags={"mlflow.parentRunId": self.tracking.parent_run_id, TRIAL_TAG: self.trial_id,
                  SWEEP_TAG: self.tracking.sweep_name, STATUS_TAG: "running"},
        )
        return run.info.run_id, 0

    def _requeue(self, unsent: list) -> None:
        from mlflow.entities import Metric

        for step, items in unsent:
            if step > self.logged_through:  # MLflow has every epoch up to logged_through, in full
                self.pending.append((step, [Metric(k, v, ts, step) for k, v, ts in items]))
        if self.pending:
            self.logged_through = self.pending[-1][0]
            self.flush(patience=5.0)

    def unsent(self) -> list:
        """The queued epochs as plain data, for the checkpoint."""
        return [[step, [[m.key, m.value, m.timestamp] for m in items]] for step, items in self.pending]

    def log_params(self, params: dict[str, Any]) -> None:
        """Every resolved config value; a resumed run already has them and is left alone."""
        from mlflow.entities import Param

        run = retry(lambda: self.client.get_run(self.run_id))
        if run.data.params:
            return
        items = [Param(k, (json.dumps(v) if isinstance(v, (list, tuple, dict)) else str(v))[:6000])
                 for k, v in sorted(params.items())]
        for start in range(0, len(items), 100):
            retry(lambda chunk=items[start:start + 100]: self.client.log_batch(self.run_id, params=chunk))

    def log_epoch(self, metrics: dict[str, Any], step: int) -> None:
        """Queue one epoch's numbers (skipped when the run already holds this step) and try to send."""
        from mlflow.entities import Metric

        if step <= self.logged_through:
            return
        now = int(time.time() * 1000)
        self.pending.append((step, [Metric(k, v, now, step) for k, v in numeric_metrics(metrics).items()]))
        self.logged_through = step
        self.flush()

    def flush(self, patience: float = 0.0) -> bool:
        """Send queued epochs, whole epochs per batch; True when nothing is left.

        With no patience this is one quick try, skipped while backing off after a failure.
        """
        if patience == 0.0 and time.time() < self._next_try:
            return False
        while self.pending:
            batch, count = first_whole_epochs(self.pending)
            try:
                retry(lambda batch=batch: self.client.log_batch(self.run_id, metrics=batch), patience)
            except Exception:  # noqa: BLE001 - kept in the queue; the next flush tries again
                self._next_try = time.time() + self.BACKOFF_SECONDS
                return False
            del self.pending[:count]
        return True

    def finish(self, status: str, tags: dict[str, str] | None = None, artifacts: dict[str, Any] | None = None) -> None:
        """Patiently: send every queued metric and the artifacts, tag the outcome, close the run.

        Raises (after server.PATIENCE_SECONDS) when MLflow stays unreachable; the trial then fails, Ray retries it
        from its last checkpoint, and the retry sends what this one could not.
        """
        if not self.flush(patience=server.PATIENCE_SECONDS):
            raise TrackingUnreachable(f"MLflow at {self.tracking.uri}: {sum(len(i) for _, i in self.pending)} metric values not sent")
        for name, obj in (artifacts or {}).items():
            retry(lambda n=name, o=obj: self.client.log_dict(self.run_id, o, n))
        close_run(self.client, self.run_id, status, tags)


def first_whole_epochs(epochs: list[tuple[int, list]], most: int = 900) -> tuple[list, int]:
    """(metrics, how many epochs): the first epochs of a queue that fit one log_batch (MLflow takes
    1000 values a call), never splitting an epoch, so the run's `epoch` history says which it holds."""
    batch, count = [], 0
    while count < len(epochs) and (not batch or len(batch) + len(epochs[count][1]) <= most):
        batch.extend(epochs[count][1])
        count += 1
    return batch, count


def send_missing_epochs(uri: str, run_id: str, epochs: list[tuple[int, dict[str, Any], float]]) -> list[int]:
    """Driver side, once a sweep's trials are done: log the epochs Ray Tune holds for a trial that its
    MLflow run lacks; the epochs sent.

    `epochs`: (epoch, the metrics the trial logged, when it reported them) from Ray Tune's results.
    A trial that ASHA stops while the tracking server is down is ended from outside with its last
    epochs still queued in its process (a trial that ends by itself waits for the server instead):
    without this they were lost (the chaos soak found a run with no metrics at all).
    """
    from mlflow.entities import Metric

    client = tracking_client(uri)
    held = {m.step for m in retry(lambda: client.get_metric_history(run_id, "epoch"))}
    queue = [(step, [Metric(k, v, int(at * 1000), step) for k, v in numeric_metrics(metrics).items()])
             for step, metrics, at in sorted(epochs, key=lambda e: e[0]) if step not in held]
    sent = [step for step, _ in queue]
    while queue:
        batch, count = first_whole_epochs(queue)
        retry(lambda batch=batch: client.log_batch(run_id, metrics=batch))
        del queue[:count]
    return sent


def close_run(client, run_id: str, status: str, tags: dict[str, str] | None, patience: float | None = None) -> None:
    """Tag a trial run with how it ended and give it the matching MLflow status."""
    from mlflow.entities import RunTag

    all_tags = [RunTag(k, str(v)) for k, v in {STATUS_TAG: status, **(tags or {})}.items()]
    retry(lambda: client.log_batch(run_id, tags=all_tags), patience)
    retry(lambda: client.set_terminated(run_id, MLFLOW_STATUS.get(status, "FINISHED")), patience)


def mark_trial_run(uri: str, run_id: str, status: str, tags: dict[str, str] | None = None,
                   patience: float | None = None) -> None:
    """Driver side: record how a trial ended (ASHA stops and failures end a trial from outside)."""
    close_run(tracking_client(uri), run_id, status, tags, patience)
