"""Everything MLflow, in one package; its public names are re-exported here.

    server        the tracking store: its URI, whether it answers, patient calls (retry)
    trial_run     a trial's child run: TrialLogger (buffered, retrying), its tags, how it ended
    sweep_run     the driver's side: the sweep's parent run and the registered best model
    winner        a model logged and registered so that it can be used as it is (both flavours)
    report_run    the report's files on the parent run, and an ensemble as its own run
    exit_classifier_pyfunc   the pyfunc loader shipped inside every registered model
    trial_status  how a trial ended (completed, stopped, diverged, failed): its tuner.status tag, its
                  MLflow status, and the same word in the trials table and the report

May import: trainables, tuner.spec, and mlflow (inside functions). The rooms above (trial, sweep,
report) hand it plain values; it reads none of their formats.

mlflow itself is imported inside the functions that use it, so that importing this package (a Ray
trial does) stays cheap.
"""

from tuner.tracking.server import (
    PATIENCE_SECONDS,
    TrackingStoreDamaged,
    TrackingUnreachable,
    check_reachable,
    prepare_store,
    resolve_tracking_uri,
    retry,
    tracking_client,
)
from tuner.tracking.trial_run import (
    MLFLOW_STATUS,
    STATUS_TAG,
    SWEEP_TAG,
    TRIAL_TAG,
    UNTRAINED_EXITS_TAG,
    TrialLogger,
    TrialTracking,
    close_run,
    mark_trial_run,
    numeric_metrics,
    outcome_tags,
    send_missing_epochs,
)

__all__ = [
    "MLFLOW_STATUS", "PATIENCE_SECONDS", "STATUS_TAG", "SWEEP_TAG", "TRIAL_TAG", "UNTRAINED_EXITS_TAG",
    "TrackingStoreDamaged", "TrackingUnreachable",
    "TrialLogger", "TrialTracking", "check_reachable", "close_run", "mark_trial_run", "numeric_metrics", "outcome_tags",
    "prepare_store", "send_missing_epochs",
    "resolve_tracking_uri", "retry", "tracking_client",
]
