"""The driver's side of MLflow: the sweep's parent run and the registered best model.

The parent run holds the spec file (artifact), the git commit, the search space and the fixed
values; at the end, the Parquet table of all trials and the best trial's summary. Its run id is
kept in the experiment folder, so a resumed sweep keeps its parent run.

The best trial's final checkpoint is logged with mlflow.pytorch under the trial's own child run,
wrapped so that it takes uint8 images (N, 32, 32, 3) and returns class probabilities at the
chosen inference threshold, and registered under the spec's model name with its config and
metrics as version tags.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from trainables.names import COST, OBJECTIVE
from tuner.spec.schema import SweepSpec
from tuner.tracking import STATUS_TAG, SWEEP_TAG, TRIAL_TAG, TrialTracking, retry, tracking_client
from tuner.tracking.trial_status import FORGOTTEN

WINNER_RUN_TAG = "trial_run_id"  # a registered version's tag: the trial run it was made from

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def git_commit() -> str:
    """The project's commit, with '+dirty' when the working tree has changes; 'unknown' outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def search_space_summary(spec: SweepSpec) -> list[dict[str, Any]]:
    return [{k: (list(v) if isinstance(v, tuple) else v) for k, v in p.__dict__.items() if v not in (None, (), {}, False)}
            for p in spec.search]


def start_parent_run(uri: str, spec: SweepSpec, existing_run_id: str | None) -> TrialTracking:
    """Create (or reopen) the sweep's parent run; what trials need to nest under it."""
    client = tracking_client(uri)

    def experiment_id() -> str:
        exp = client.get_experiment_by_name(spec.mlflow_experiment)
        return exp.experiment_id if exp else client.create_experiment(spec.mlflow_experiment)

    exp_id = retry(experiment_id)
    if existing_run_id:
        retry(lambda: client.update_run(existing_run_id, status="RUNNING"))
        return TrialTracking(uri, exp_id, existing_run_id, spec.name)
    run = retry(lambda: client.create_run(exp_id, run_name=f"sweep:{spec.name}", tags={
        SWEEP_TAG: spec.name, "tuner.role": "sweep", "tuner.spec_file": spec.path, "tuner.git_commit": git_commit(),
        "mlflow.note.content": spec.description or f"Sweep {spec.name} from {spec.path}",
    }))
    run_id = run.info.run_id
    from mlflow.entities import Param

    params = [Param("spec_file", spec.path), Param("preset", str(spec.preset)), Param("num_samples", str(spec.run.num_samples)),
              Param("objective", ",".join(f"{m}:{d}" for m, d in zip(spec.objective.metrics, spec.objective.modes))),
              Param("sampler", spec.searcher.sampler), Param("scheduler", spec.scheduler.kind)]
    params += [Param(f"fixed.{k}", str(v)[:6000]) for k, v in sorted(spec.fixed.items())]
    retry(lambda: client.log_batch(run_id, params=params))
    retry(lambda: client.log_text(run_id, spec.text, Path(spec.path).name))
    retry(lambda: client.log_dict(run_id, search_space_summary(spec), "search_space.json"))
    return TrialTracking(uri, exp_id, run_id, spec.name)


def retire_forgotten_trial_runs(tracking: TrialTracking, trial_ids: set[str]) -> list[str]:
    """Delete (MLflow's soft delete) the parent's child runs of trials the sweep does not have, tagged
    tuner.status = forgotten: a trial started moments before its driver died, after Ray Tune last saved
    its state, is unknown to the resumed sweep, which ran its configuration again under another trial.
    Its run ids; `mlflow gc` removes them for good, the UI's deleted view still shows them."""
    client = tracking_client(tracking.uri)
    runs = retry(lambda: client.search_runs(
        [tracking.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{tracking.parent_run_id}'", max_results=5000))
    forgotten = [r.info.run_id for r in runs if r.data.tags.get(TRIAL_TAG) and r.data.tags[TRIAL_TAG] not in trial_ids]
    for run_id in forgotten:
        retry(lambda run_id=run_id: client.set_tag(run_id, STATUS_TAG, FORGOTTEN))
        retry(lambda run_id=run_id: client.delete_run(run_id))
    return forgotten


def finish_parent_run(tracking: TrialTracking, table_path: Path, summary: dict[str, Any]) -> None:
    client = tracking_client(tracking.uri)
    run_id = tracking.parent_run_id
    retry(lambda: client.log_artifact(run_id, str(table_path)))
    retry(lambda: client.log_dict(run_id, summary, "sweep_summary.json"))
    best = summary.get("best") or {}
    for key in (OBJECTIVE, "test_acc", COST):
        if isinstance(best.get(key), (int, float)):
            retry(lambda k=key: client.log_metric(run_id, f"best_{k}", float(best[k])))
    if best:  # the parent's row in the UI names its best trial, and its description says what it reached
        retry(lambda: client.set_tag(run_id, "tuner.best_trial", str(best.get("trial_name") or best.get("trial_id"))))
        retry(lambda: client.set_tag(run_id, "tuner.best_trial_run_id", str(best.get("mlflow_run_id"))))
        described = retry(lambda: client.get_run(run_id)).data.tags.get("mlflow.note.content", "").split("\n\nBest: ")[0]
        retry(lambda: client.set_tag(run_id, "mlflow.note.content", (
            f"{described}\n\nBest: {best.get('trial_name') or best.get('trial_id')} ({best.get('status')}, "
            f"{best.get('epochs_run')} epochs), {OBJECTIVE} {best.get(OBJECTIVE)}, test_acc {best.get('test_acc')}, "
            f"{COST} {best.get(COST)}; {summary['trials']} trials.")))
    retry(lambda: client.set_terminated(run_id, "FINISHED"))


def register_best_model(
    tracking: TrialTracking, spec: SweepSpec, config_dict: dict[str, Any], state_path: Path,
    child_run_id: str, metrics: dict[str, Any],
) -> dict[str, Any]:
    """Log the best trial's checkpoint as the sweep's winner and register it (see tuner/tracking/winner.py);
    a winner registered before (a grown sweep whose best trial did not change) is not registered again."""
    from tuner.tracking.winner import build_served, log_and_register, preprocessing, version_tags, winner_metadata

    earlier = registered_version_of(tracking, spec.model_name, child_run_id)
    if earlier is not None:
        return earlier

    served, config = build_served(config_dict, state_path)
    metadata = winner_metadata(config.to_dict(), metrics, served.class_names, served.threshold, preprocessing(config))
    tags = version_tags(spec.name, config.to_dict(), metrics, {
        "kind": "single", "inference_exit_threshold": str(served.threshold), WINNER_RUN_TAG: child_run_id})
    return log_and_register(tracking, child_run_id, served, len(served.class_names) or config.num_classes, spec.model_name,
                            metadata, tags)


def registered_version_of(tracking: TrialTracking, model_name: str, child_run_id: str) -> dict[str, Any] | None:
    """The registered version of `model_name` made from trial run `child_run_id` (its trial_run_id tag), if any."""
    from tuner.tracking.winner import version_record

    client = tracking_client(tracking.uri)
    versions = retry(lambda: client.search_model_versions(f"name='{model_name}'"))
    for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
        if (v.tags or {}).get(WINNER_RUN_TAG) == child_run_id:
            return version_record(model_name, v.version, child_run_id)
    return None
