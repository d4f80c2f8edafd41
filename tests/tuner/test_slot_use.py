"""Slot use: the share of (wall time x slots) in epochs, in the rest of each trial, and between trials."""

from __future__ import annotations

import pytest

from tuner.sweep.slot_use import describe, slot_use, slots_of
from tuner.trial.trainable import REPORTED_AT, STARTED_AT


def _reports(started: float, epochs: list[tuple[float, float]]) -> list[dict]:
    """(reported at, epoch seconds) per epoch of one attempt that began at `started`."""
    return [{STARTED_AT: started, REPORTED_AT: at, "epoch_seconds": sec} for at, sec in epochs]


def test_two_slots_with_a_gap_between_trials_and_a_retried_trial() -> None:
    # Slot 1: trial a from 0 to 10 (8 s of epochs), then trial b from 13 to 20 (6 s of epochs).
    # Slot 2: trial c from 1 to 6, crashed; its retry from 8 to 20 (5 + 10 s of epochs).
    a = _reports(0.0, [(5.0, 4.0), (10.0, 4.0)])
    b = _reports(13.0, [(20.0, 6.0)])
    c = _reports(1.0, [(6.0, 5.0)]) + _reports(8.0, [(20.0, 10.0)])
    use = slot_use([a, b, c], (0.0, 20.0), 2)
    assert use["slot_seconds"] == 40.0 and use["in_epochs_seconds"] == 29.0
    assert use["in_trial_other_seconds"] == pytest.approx((10 + 7 + 5 + 12) - 29.0)
    assert use["between_trials_seconds"] == pytest.approx(40.0 - 34.0)
    assert use["in_epochs_share"] + use["in_trial_other_share"] + use["between_trials_share"] == pytest.approx(1.0)
    # The last trial began at 13; from then on both slots ran to 20: nothing idle for want of work.
    assert use["nothing_left_seconds"] == 0.0
    assert describe(use) == ("2 slot(s) x 20 s: 72% in epochs, 12% in trials' start-up, reports and finish, "
                             "15% between trials (0% with no trial left to start)")
    # Trial c ends at 14 instead: slot 2 idles 6 s with nothing left to start.
    tail = slot_use([a, b, _reports(1.0, [(6.0, 5.0)]) + _reports(8.0, [(14.0, 4.0)])], (0.0, 20.0), 2)
    assert tail["nothing_left_seconds"] == pytest.approx(6.0)


def test_a_resumed_sweep_counts_only_this_runs_reports() -> None:
    before = _reports(-100.0, [(-90.0, 10.0)])  # an epoch from the run that was interrupted
    after = _reports(2.0, [(10.0, 8.0)])
    use = slot_use([before + after], (0.0, 10.0), 1)
    assert use["in_epochs_seconds"] == 8.0 and use["between_trials_seconds"] == 2.0


def test_slots_are_the_tightest_of_cap_cpus_gpus_and_trials() -> None:
    assert slots_of(None, 24, cpus=2, gpus=0, cpu_per_trial=1, gpu_per_trial=0) == 2
    assert slots_of(None, 24, cpus=16, gpus=1, cpu_per_trial=1, gpu_per_trial=0.125) == 8
    assert slots_of(4, 24, cpus=16, gpus=1, cpu_per_trial=1, gpu_per_trial=0.125) == 4
    assert slots_of(None, 3, cpus=16, gpus=0, cpu_per_trial=1, gpu_per_trial=0) == 3
