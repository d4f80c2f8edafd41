"""A sweep's trials as Ray Tune saved them: each one's last checkpoint and val_acc history, the best
trial's threshold study, and the ensemble of the top trials.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from trainables.names import OBJECTIVE
from tuner.report.leaderboard import finite
from tuner.sweep.trials_table import config_of, train_config_of
from tuner.trial.trainable import CHECKPOINT_FILE


class ReportError(RuntimeError):
    """What the report cannot do, in one line (exit 2)."""


class SweepTrials:
    """A sweep's trials through Ray Tune's public ExperimentAnalysis: each one's last checkpoint and
    its per-epoch val_acc or any other metric (after a retry, the later value of an epoch wins)."""

    def __init__(self, exp: Path):
        from ray.tune import ExperimentAnalysis

        self.analysis = ExperimentAnalysis(str(exp))
        self.by_id = {t.trial_id: t for t in self.analysis.trials}

    def last_checkpoint(self, trial_id: str) -> Path | None:
        trial = self.by_id.get(trial_id)
        checkpoint = self.analysis.get_last_checkpoint(trial) if trial is not None else None
        return Path(checkpoint.path) / CHECKPOINT_FILE if checkpoint is not None else None

    def history(self, trial_id: str, metric: str = OBJECTIVE) -> list[tuple[int, float]]:
        frame = self.analysis.trial_dataframes.get(trial_id)
        if frame is None or frame.empty or not {"epoch", metric} <= set(frame.columns):
            return []
        by_epoch = {int(e): float(v) for e, v in zip(frame["epoch"], frame[metric]) if finite(v) and finite(e)}
        return sorted(by_epoch.items())


def threshold_study(trials: SweepTrials, best: dict[str, Any]) -> tuple[list[dict], Any] | None:
    """(curve, data): the best trial's saved model on its validation/test images over a grid of thresholds."""
    from trainables.data.sources import DataNotFoundError
    from trainables.evaluate import evaluate
    from trainables.flops import exit_flops, image_shape, reference_for
    from trainables.loop import load_run_data
    from tuner.tracking.winner import build_served

    state = trials.last_checkpoint(best["trial_id"])
    if state is None:
        return None
    served, config = build_served(config_of(best), state)
    try:
        data = load_run_data(config)
    except DataNotFoundError as exc:
        print(f"tuner.report: threshold curve skipped: {exc}", file=sys.stderr)
        return None
    grid = tuple(round(0.02 * i, 2) for i in range(1, 51))
    device = next(served.model.parameters()).device
    result = evaluate(served.model, (data.eval_images("val", 256, device), data.labels("val")),
                      (data.eval_images("test", 256, device), data.labels("test")), data.groups,
                      (served.threshold,), exit_flops(served.model, image_shape(config)), reference_for(config, data.num_classes),
                      config.exit_confidence_scale, grid, batch_size=256)
    return result.get("threshold_curve", []), data


def build_ensemble(trials: SweepTrials, members: list[dict[str, Any]], data) -> tuple[Any, dict[str, Any]]:
    """The top trials' models averaged, and its metrics on the same validation and test images."""
    from trainables.flops import exit_flops, reference_flops
    from trainables.inference import ExitEnsemble, evaluate_ensemble
    from tuner.tracking.winner import build_served

    if train_config_of(members[0]).streamed:
        raise ReportError("--ensemble: an ensemble of an image-file set's trials is not built yet (its evaluation would "
                          "stream every member's images again); leave out --ensemble")
    served = []
    for m in members:
        state = trials.last_checkpoint(m["trial_id"])
        if state is None:
            raise ReportError(f"trial {m['trial_id']} has no checkpoint in {trials.analysis.experiment_path}")
        served.append(build_served(config_of(m), state)[0])
    ensemble = ExitEnsemble(served, data.class_names)
    metrics = evaluate_ensemble(ensemble, (data.val_images, data.val_labels), (data.test_images, data.test_labels), data.groups,
                                [exit_flops(m.model) for m in served], reference_flops(data.num_classes))
    return ensemble, metrics
