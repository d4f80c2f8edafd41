"""The report's MLflow side: its files on the sweep's parent run, and the ensemble as its own run.

Artifacts go under `report/` of the parent run, so the MLflow UI shows the plots beside the
sweep. An ensemble becomes a child run (tag tuner.role = ensemble) with its metrics and members,
and is registered under the sweep's model name when its val_acc beats the best single trial's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainables.names import OBJECTIVE
from tuner.tracking import STATUS_TAG, SWEEP_TAG, TrialTracking, retry, tracking_client


def log_report(uri: str, parent_run_id: str, sweep: str, files: list[Path], ensemble_info: dict[str, Any] | None,
               ensemble: Any, best_single_val_acc: float | None, member_configs: list[dict[str, Any]],
               metrics: dict[str, float] | None = None) -> dict[str, Any] | None:
    """Log the report's files and `metrics` on the parent run; for an ensemble (built from `member_configs`),
    its run, and its registration when it beats `best_single_val_acc`. The registered version, or None."""
    client = tracking_client(uri)
    for f in files:
        retry(lambda f=f: client.log_artifact(parent_run_id, str(f), "report"))
    for key, value in (metrics or {}).items():
        retry(lambda k=key, v=value: client.log_metric(parent_run_id, k, v))
    if ensemble_info is None:
        return None
    parent = retry(lambda: client.get_run(parent_run_id))
    exp_id = parent.info.experiment_id
    run = retry(lambda: client.create_run(exp_id, run_name=f"ensemble-top{ensemble_info['members']}", tags={
        "mlflow.parentRunId": parent_run_id, "tuner.role": "ensemble", SWEEP_TAG: sweep,
        "tuner.members": ",".join(ensemble_info["member_trials"]), STATUS_TAG: "completed"}))
    run_id = run.info.run_id
    for key, value in ensemble_info.items():
        if isinstance(value, (int, float)):
            retry(lambda k=key, v=value: client.log_metric(run_id, k, float(v)))
    retry(lambda: client.set_terminated(run_id, "FINISHED"))
    if best_single_val_acc is not None and ensemble_info[OBJECTIVE] <= best_single_val_acc:
        return None
    from tuner.tracking.winner import log_and_register, version_tags, winner_metadata

    tracking = TrialTracking(uri, exp_id, parent_run_id, sweep)
    metrics = {k: v for k, v in ensemble_info.items() if isinstance(v, (int, float))}
    metadata = winner_metadata({"ensemble_of": member_configs}, metrics, ensemble.class_names, None)
    tags = version_tags(sweep, {"ensemble_of": ensemble_info["member_trials"]}, metrics,
                        {"kind": "ensemble", "members": ",".join(ensemble_info["member_trials"]), "ensemble_run_id": run_id})
    return log_and_register(tracking, run_id, ensemble, len(ensemble.class_names), sweep, metadata, tags)
