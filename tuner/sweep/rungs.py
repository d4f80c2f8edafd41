"""Where ASHA cuts a sweep, set by epoch: Ray Tune's ASHA on the spec's rungs, and the start-up
warning when a cut ranks trials before the long-tail phase of their schedule.

Ray Tune's ASHA places its rungs geometrically (grace_period x reduction_factor^k). A DRW recipe
changes what its accuracy means at one epoch: before the re-weighting and the first learning-rate
decay (epoch 160 of 200 in LDAM-DRW and its followers), tail accuracy barely exists, so a cut
there ranks trials on a different task. `scheduler.milestones` puts the cuts where the user
wants them; the report's rung correlation (tuner/report/rung_correlation.py) says afterwards how
well each cut's ranking predicted the final one.
"""

from __future__ import annotations

import json
from typing import Any

from ray.tune.schedulers import ASHAScheduler

from trainables.config import TrainConfig
from tuner.spec.schema import SweepSpec


class RungASHA(ASHAScheduler):
    """Ray Tune's ASHA (one bracket; a trial below the rung's top 1/reduction_factor stops) with its
    rungs at the given epochs instead of grace_period x reduction_factor^k."""

    def __init__(self, rungs: tuple[int, ...], **asha: object):
        super().__init__(grace_period=rungs[0], brackets=1, **asha)
        # Ray's bracket keeps its rungs latest first, each with the values recorded there.
        self._brackets[0]._rungs = [(rung, {}) for rung in sorted(rungs, reverse=True)]

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        """A resumed (or grown) sweep gets a new scheduler from Ray Tune, its rungs empty: each restored
        trial's reported epochs are recorded again, so the trials still to come are cut against every
        trial that reached a rung, not only those that report after the resume."""
        super().on_trial_add(tune_controller, trial)
        bracket = self._trial_info[trial.trial_id]
        for result in reported_results(trial):
            if self._time_attr in result and result.get(self._metric) is not None:
                bracket.on_result(trial, result[self._time_attr], result[self._metric] * self._metric_op)


def reported_results(trial: Any) -> list[dict[str, Any]]:
    """What a trial reported so far (its result.json in the sweep's storage); none for a new trial."""
    storage = getattr(trial, "storage", None)
    if storage is None or not getattr(storage, "trial_dir_name", None):  # a new trial: no folder yet, nothing reported
        return []
    try:
        with storage.storage_filesystem.open_input_stream(f"{storage.trial_fs_path}/result.json") as stream:
            lines = stream.read().decode().splitlines()
    except OSError:  # not reported yet (FileNotFoundError among them)
        return []
    results = []
    for line in lines:
        try:
            results.append(json.loads(line))
        except ValueError:  # a line cut short when a driver died mid-write: the epochs before it still count
            continue
    return results


def long_tail_phase(config: TrainConfig) -> dict[str, int]:
    """The epochs where the schedule's long-tail phase begins: DRW's re-weighting and the first learning-rate decay."""
    events = {}
    if config.class_weighting != "none" and config.drw_start_epoch > 0:
        events["DRW starts"] = config.drw_start_epoch
    if config.lr_decay_epochs:
        events["the learning rate first decays"] = config.lr_decay_epochs[0]
    return events


def early_cut_warning(spec: SweepSpec) -> str | None:
    """One line when an ASHA rung ranks trials on epochs before DRW starts or the learning rate first
    decays (epoch indices are 0-based as in LDAM-DRW: a decay at 160 acts from the 161st epoch, so a cut
    at epoch 160 has seen none of it); None when every cut comes after both, or there are none."""
    rungs = spec.scheduler.rungs(spec.max_t)
    events = long_tail_phase(spec.base_config)
    early = [r for r in rungs if any(r <= e for e in events.values())]
    if not early:
        return None
    when = " and ".join(f"{what} at epoch {epoch}" for what, epoch in events.items())
    source = "scheduler.milestones" if spec.scheduler.milestones else "ASHA's geometric rungs"
    return (f"tuner: warning: {source} cut at epoch{'s' if len(early) > 1 else ''} {', '.join(map(str, early))}, before "
            f"{when}: they rank trials on accuracy from before the schedule's last phase; scheduler.milestones sets the cuts "
            "(docs/SPEC.md, 'Rungs and the DRW schedule'), and the report's rung correlation says how well they predicted")
