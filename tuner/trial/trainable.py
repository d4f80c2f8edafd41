"""The Ray Tune function trainable: trainables' loop with `report` bound to Ray Tune and MLflow.

It trains here, or, when the sweep has per-device workers (resources.trials_per_worker > 1), on one
of them (tuner/trial/worker.py), reporting the epochs the worker trains for it, or, with
resources.train_workers > 1, on a group of Ray Train workers (tuner/trial/train_group.py), reporting
the epochs their rank 0 hands it. Either way, per
epoch it reports the flat metrics to Ray Tune (the scheduler and searcher read `val_acc`,
`flops_ratio` and `epoch`), logs them to the trial's MLflow child run (step = epoch), and every
`checkpoint_every` epochs, and at the end, attaches a checkpoint (`state.pt`, loadable with
torch.load(weights_only=True)). A restarted trial (a retry after a crash, a resumed sweep)
continues from its latest checkpoint and its MLflow run.
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune
from ray.tune.result import AUTO_RESULT_KEYS

from trainables.config import TrainConfig
from trainables.loop import train
from tuner.spec.space import searched_values, trial_config
from tuner.tracking import TrialLogger, TrialTracking, outcome_tags

CHECKPOINT_FILE = "state.pt"
META_FILE = "meta.json"
# Every report carries when this attempt's function began and when the report was made (Ray's own
# `timestamp` is whole seconds): the sweep's slot-use figures are made of them (tuner/sweep/slot_use.py).
STARTED_AT, REPORTED_AT = "trial_started_at", "reported_at"


@dataclass
class TrialSettings:
    base: TrainConfig  # the spec's fixed values (a trial's config is made from it only when its Ray config lacks one)
    tracking: TrialTracking
    checkpoint_every: int
    cpus: float
    gpu_fraction: float
    workers: list[str] | None = None  # the sweep's per-device workers (tuner/trial/worker.py); None: train here
    train_workers: int = 1  # > 1: a group of Ray Train workers trains the trial data-parallel (train_group.py)
    storage: str = ""  # where the group's Ray Train run keeps its few files (the trial's folder when empty)


def checkpoint_due(metrics: dict[str, Any], every: int) -> bool:
    """Whether the epoch of `metrics` gets a checkpoint: every `every` epochs, and the run's last."""
    return metrics["status"] != "running" or metrics["epoch"] % every == 0


def flat_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Lists become numbered scalars (class_acc_3, exit_fraction_1), None values are dropped."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            stem = key[:-1] if key.endswith("fractions") else key  # exit_fractions -> exit_fraction_k
            out.update({f"{stem}_{i}": v for i, v in enumerate(value)})
        else:
            out[key] = value
    return out


def logged_epochs(reports: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any], float]]:
    """(epoch, the metrics this trial logged to MLflow for it, when it was reported), each epoch once,
    from a trial's Ray Tune results (a retry reports some epochs again: the last report counts).
    What Ray Tune adds to a report, and the timing keys, are not MLflow metrics."""
    not_logged = {*AUTO_RESULT_KEYS, "done", "trial_id", STARTED_AT, REPORTED_AT}
    epochs: dict[int, tuple[dict[str, Any], float]] = {}
    for report in reports:
        epoch = report.get("epoch")
        if epoch is None or epoch != epoch:  # a row without an epoch (NaN in Ray's table)
            continue
        metrics = {k: v for k, v in report.items() if k not in not_logged and not k.startswith("config/")}
        epochs[int(epoch)] = (metrics, float(report.get(REPORTED_AT) or report.get("timestamp") or time.time()))
    return [(epoch, metrics, at) for epoch, (metrics, at) in sorted(epochs.items())]


def _limit_resources(settings: TrialSettings) -> None:
    torch.set_num_threads(max(1, int(settings.cpus)))
    if torch.cuda.is_available() and 0 < settings.gpu_fraction < 1:
        # Fractional GPUs are not isolated: each trial bounds its own memory.
        torch.cuda.set_per_process_memory_fraction(settings.gpu_fraction)


def _load_checkpoint() -> tuple[dict | None, dict]:
    """(training state, meta) of this trial's latest checkpoint (after a retry or a resumed sweep)."""
    ckpt = tune.get_checkpoint()
    if ckpt is None:
        return None, {}
    try:
        with ckpt.as_directory() as folder:
            state = torch.load(Path(folder) / CHECKPOINT_FILE, weights_only=True, map_location="cpu")
            meta = json.loads((Path(folder) / META_FILE).read_text())
        if not isinstance(meta, dict) or not isinstance(state, dict):
            raise ValueError("not a trial checkpoint")
    except Exception as exc:  # noqa: BLE001 - a damaged checkpoint costs this trial its progress, not the sweep
        print(f"tuner: trial checkpoint {ckpt.path} is damaged ({type(exc).__name__}); the trial starts over", flush=True)
        return None, {}
    return state, meta


def run_trial(ray_config: dict[str, Any], settings: TrialSettings) -> None:
    """Ray Tune entry point: `ray_config` holds this trial's searched values and its TrainConfig, made and
    checked on the driver (tuner/spec/space.py)."""
    started = time.time()
    config = trial_config(ray_config, settings.base)
    ctx = tune.get_context()
    resume, meta = _load_checkpoint()
    logger = TrialLogger(settings.tracking, ctx.get_trial_id(), ctx.get_trial_name(), meta.get("unsent"))
    logger.log_params({**config.to_dict(), "sampled": searched_values(ray_config), "train_workers": settings.train_workers})
    node_id = ray.get_runtime_context().get_node_id()  # which Ray node ran it (shown in the Parquet table)
    if meta.get("status", "running") != "running":
        # The trial had ended (its last checkpoint says so) but the sweep's state did not record it,
        # e.g. the driver died right after: report the end again instead of training on.
        logger.finish(meta["status"], outcome_tags(meta["metrics"]))
        tune.report(meta["metrics"])
        return

    def report(metrics: dict[str, Any], checkpoint: Callable[[], dict]) -> None:
        curve = metrics.get("threshold_curve")
        epoch_metrics = {k: v for k, v in metrics.items() if k not in ("threshold_curve", "untrained_exits")}
        if "untrained_exits" in metrics:  # a list of exit indices: a count for MLflow, the indices for the tag
            epoch_metrics["untrained_exit_count"] = len(metrics["untrained_exits"])
            epoch_metrics["untrained_exits"] = ",".join(map(str, metrics["untrained_exits"]))
        flat = {"node_id": node_id, **flat_metrics(epoch_metrics), "mlflow_run_id": logger.run_id,
                "trial_name": ctx.get_trial_name()}  # a worker's metrics name its own node: where the trial trained
        logger.log_epoch(flat, step=metrics["epoch"])
        done = metrics["status"] != "running"
        if done:
            # Close the MLflow run before the last tune.report: a scheduler may stop the trial
            # the moment it sees the final epoch, and nothing after that call would run.
            artifacts = {"final_metrics.json": epoch_metrics}
            if curve:
                artifacts["threshold_curve.json"] = curve
            logger.finish(metrics["status"], outcome_tags(epoch_metrics), artifacts)
        timing = {STARTED_AT: started, REPORTED_AT: time.time()}  # not MLflow metrics
        if checkpoint_due(metrics, settings.checkpoint_every):
            with tempfile.TemporaryDirectory() as folder:
                torch.save(checkpoint(), Path(folder) / CHECKPOINT_FILE)
                (Path(folder) / META_FILE).write_text(json.dumps(
                    {"epoch": metrics["epoch"], "status": metrics["status"], "metrics": flat, "unsent": logger.unsent()}))
                tune.report({**flat, **timing}, checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report({**flat, **timing})

    if settings.train_workers > 1:
        from tuner.trial.train_group import train_on_group

        train_on_group(config, resume, settings.train_workers, settings.cpus, settings.gpu_fraction,
                       settings.storage or ctx.get_trial_dir(),
                       functools.partial(checkpoint_due, every=settings.checkpoint_every), report)
    elif settings.workers:
        from tuner.trial.worker import train_on_worker

        train_on_worker(settings.workers, ctx.get_trial_id(), config, resume, settings.checkpoint_every, report)
    else:
        _limit_resources(settings)
        train(config, lambda metrics, state: report(metrics, state.checkpoint), resume=resume)
