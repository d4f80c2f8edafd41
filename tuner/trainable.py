"""The Ray Tune function trainable: trainables' loop with `report` bound to Ray Tune and MLflow.

Per epoch it reports the flat metrics to Ray Tune (the scheduler and searcher read `val_acc`,
`flops_ratio` and `epoch`), logs them to the trial's MLflow child run (step = epoch), and every
`checkpoint_every` epochs, and at the end, attaches a checkpoint (`state.pt`, loadable with
torch.load(weights_only=True)). A restarted trial (a retry after a crash, a resumed sweep)
continues from its latest checkpoint and its MLflow run.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ray import tune

from trainables.config import TrainConfig, with_overrides
from trainables.loop import TrainingState, train
from tuner.space import resolve_trial_config
from tuner.tracking import TrialLogger, TrialTracking

STATE_FILE = "state.pt"
META_FILE = "meta.json"


@dataclass
class TrialSettings:
    base: dict[str, Any]  # the fixed TrainConfig values, as plain data
    tracking: TrialTracking
    checkpoint_every: int
    cpus: float
    gpu_fraction: float


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


def _limit_resources(settings: TrialSettings) -> None:
    torch.set_num_threads(max(1, int(settings.cpus)))
    if torch.cuda.is_available() and 0 < settings.gpu_fraction < 1:
        # Fractional GPUs are not isolated: each trial bounds its own memory.
        torch.cuda.set_per_process_memory_fraction(settings.gpu_fraction)


def _load_checkpoint() -> dict | None:
    """The latest checkpoint of this trial (after a retry or a resumed sweep), or None."""
    ckpt = tune.get_checkpoint()
    if ckpt is None:
        return None
    with ckpt.as_directory() as folder:
        return torch.load(Path(folder) / STATE_FILE, weights_only=True, map_location="cpu")


def run_trial(sampled: dict[str, Any], settings: TrialSettings) -> None:
    """Ray Tune entry point: `sampled` holds this trial's searched values."""
    _limit_resources(settings)
    base = with_overrides(TrainConfig(), settings.base)
    config = resolve_trial_config(base, sampled)
    ctx = tune.get_context()
    resume = _load_checkpoint()
    logger = TrialLogger(settings.tracking, ctx.get_trial_id(), ctx.get_trial_name())
    logger.log_params({**config.to_dict(), "sampled": sampled})

    def report(metrics: dict[str, Any], state: TrainingState) -> None:
        curve = metrics.get("threshold_curve")
        flat = {**flat_metrics({k: v for k, v in metrics.items() if k != "threshold_curve"}), "mlflow_run_id": logger.run_id}
        logger.log_epoch(flat, step=metrics["epoch"])
        done = metrics["status"] != "running"
        if done:
            # Close the MLflow run before the last tune.report: a scheduler may stop the trial
            # the moment it sees the final epoch, and nothing after that call would run.
            if curve:
                logger.log_json(curve, "threshold_curve.json")
            logger.log_json({k: v for k, v in metrics.items() if k != "threshold_curve"}, "final_metrics.json")
            reason = metrics.get("diverged_reason")
            logger.finish(metrics["status"], {"diverged_reason": reason} if reason else {})
        if done or metrics["epoch"] % settings.checkpoint_every == 0:
            with tempfile.TemporaryDirectory() as folder:
                torch.save(state.checkpoint(), Path(folder) / STATE_FILE)
                (Path(folder) / META_FILE).write_text(json.dumps({"epoch": metrics["epoch"], "mlflow_run_id": logger.run_id}))
                tune.report(flat, checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report(flat)

    train(config, report, resume=resume)
