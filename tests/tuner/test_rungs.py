"""ASHA's cuts by epoch (issue 30): the rungs a spec gives, explicit milestones honoured by Ray Tune's
ASHA, the start-up warning about cuts before the long-tail phase, and the report's rung correlation."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from ray.tune.schedulers import TrialScheduler

from tuner.report.rung_correlation import lines, mlflow_metrics, rung_correlations
from tuner.spec.schema import SpecError, load_spec, parse_spec
from tuner.sweep.rungs import RungASHA, early_cut_warning

SPECS = Path(__file__).resolve().parents[2] / "search_spaces"


def _spec(scheduler: dict, **train):
    raw = {"name": "t", "data": {"dataset": "synthetic"},
           "train": {"preset": "hybrid_m4", "epochs": 200, **train},
           "search": {"lr": {"type": "loguniform", "low": 0.01, "high": 0.2}}, "scheduler": scheduler}
    return parse_spec(raw, "spec.yaml")


def test_geometric_rungs_are_ray_tunes_and_milestones_replace_them() -> None:
    assert _spec({"type": "asha", "grace_period": 20, "reduction_factor": 3}).scheduler.rungs(200) == (20, 60, 180)
    assert _spec({"type": "asha", "grace_period": 10, "reduction_factor": 1.5}).scheduler.rungs(40) == (10, 15, 23, 34)
    assert _spec({"type": "asha", "milestones": [170, 190]}).scheduler.rungs(200) == (170, 190)
    assert _spec({"type": "fifo"}).scheduler.rungs(200) == ()


@pytest.mark.parametrize("milestones, message", [
    ([190, 170], "must be increasing"),
    ([170, 200], "200 is not below max_t/epochs"),
    ([0, 170], "must be >= 1"),
])
def test_bad_milestones_are_refused_naming_the_key(milestones: list, message: str) -> None:
    with pytest.raises(SpecError, match=f"scheduler.milestones.*{message}"):
        _spec({"type": "asha", "milestones": milestones})
    with pytest.raises(SpecError, match="give milestones or grace_period, not both"):
        _spec({"type": "asha", "milestones": [170], "grace_period": 20})


def test_asha_cuts_at_the_milestones_and_nowhere_else() -> None:
    """Milestones 3 and 7 (geometric rungs from 3 by 2 would be 3 and 6): a trial below the first
    trial at epoch 6 goes on, at epoch 7 it stops."""
    asha = RungASHA((3, 7), time_attr="epoch", metric="val_acc", mode="max", max_t=10, reduction_factor=2)
    good, bad = SimpleNamespace(trial_id="good"), SimpleNamespace(trial_id="bad")
    for trial in (good, bad):
        asha.on_trial_add(None, trial)
    decide = lambda trial, epoch, acc: asha.on_trial_result(None, trial, {"epoch": epoch, "val_acc": acc})  # noqa: E731
    assert [decide(good, e, 0.9) for e in range(1, 8)] == [TrialScheduler.CONTINUE] * 7
    assert decide(bad, 3, 0.95) == TrialScheduler.CONTINUE  # the better one at the first cut
    assert [decide(bad, e, 0.5) for e in (4, 5, 6)] == [TrialScheduler.CONTINUE] * 3
    assert decide(bad, 7, 0.5) == TrialScheduler.STOP


def test_a_resumed_sweeps_new_scheduler_records_what_its_restored_trials_reported(tmp_path: Path) -> None:
    """Ray Tune gives a resumed or grown sweep a new scheduler: without the restored trials' epochs in
    its rungs, a new trial below all of them would go on at the first cut."""
    import json

    import pyarrow.fs

    folder = tmp_path / "trial_a"
    folder.mkdir()
    lines = [json.dumps({"epoch": e, "val_acc": 0.8 + e / 100}) for e in (1, 2, 3)]
    (folder / "result.json").write_text("\n".join(lines) + '\n{"epoch": 4, "val_')  # the last line cut short
    storage = SimpleNamespace(storage_filesystem=pyarrow.fs.LocalFileSystem(), trial_fs_path=str(folder), trial_dir_name="trial_a")
    restored = SimpleNamespace(trial_id="a", storage=storage)
    new = SimpleNamespace(trial_id="b", storage=SimpleNamespace(storage_filesystem=storage.storage_filesystem,
                                                                trial_dir_name=None))  # Ray's raises if its path is read
    asha = RungASHA((1, 3), time_attr="epoch", metric="val_acc", mode="max", max_t=10, reduction_factor=2)
    for trial in (restored, new):
        asha.on_trial_add(None, trial)
    assert {epoch: dict(recorded) for epoch, recorded in asha._brackets[0]._rungs} == {3: {"a": 0.8 + 3 / 100}, 1: {"a": 0.8 + 1 / 100}}
    assert asha.on_trial_result(None, new, {"epoch": 1, "val_acc": 0.5}) == TrialScheduler.STOP


def test_a_cut_before_drw_or_the_first_decay_is_named_at_start() -> None:
    hybrid = load_spec(SPECS / "hybrid.yaml")
    assert hybrid.scheduler.milestones == (170,) and early_cut_warning(hybrid) is None  # the shipped DRW sweep follows the advice
    line = early_cut_warning(_spec({"type": "asha", "grace_period": 20, "reduction_factor": 3}))
    assert line.startswith("tuner: warning: ASHA's geometric rungs cut at epochs 20, 60, before DRW starts at epoch 160 "
                           "and the learning rate first decays at epoch 160"), line
    assert "180" not in line.split(":")[2]  # the cut at 180 comes after both
    explicit = early_cut_warning(_spec({"type": "asha", "milestones": [100, 170]}))
    assert explicit.startswith("tuner: warning: scheduler.milestones cut at epoch 100, before DRW starts at epoch 160")
    assert early_cut_warning(_spec({"type": "asha", "milestones": [161]})) is None  # one epoch of DRW seen
    assert early_cut_warning(_spec({"type": "asha", "milestones": [160]})) is not None  # DRW from 0-based epoch 160: not yet
    assert early_cut_warning(_spec({"type": "fifo"})) is None


def _rows_and_history(finals: dict[str, float], at_rung: dict[int, dict[str, float]], stopped: dict[str, float] = ()):
    rows = [{"trial_id": t, "status": "completed", "val_acc": v} for t, v in finals.items()]
    rows += [{"trial_id": t, "status": "stopped", "val_acc": v} for t, v in dict(stopped).items()]
    history = lambda trial_id, metric: [(epoch, values[trial_id]) for epoch, values in at_rung.items()  # noqa: E731
                                        if trial_id in values]
    return rows, history


def test_each_rungs_ranking_is_compared_with_the_final_one_over_the_finished_trials() -> None:
    finals = {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6}
    at_rung = {20: {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4, "x": 0.99},  # exactly reversed; x was stopped later
               60: {"a": 0.5, "b": 0.4, "c": 0.3, "d": 0.2, "x": 0.1},  # the final order
               180: {"a": 0.5, "b": 0.5, "c": 0.5, "d": 0.5}}  # all tied: rho says nothing
    rows, history = _rows_and_history(finals, at_rung, stopped={"x": 0.2})
    result = rung_correlations(rows, [20, 60, 180], history, "val_acc")
    assert [(c.epoch, c.trials, c.spearman) for c in result] == [(20, 4, -1.0), (60, 4, 1.0), (180, 4, None)]
    text = lines(result, "val_acc")
    assert text[0].startswith("rung correlation (Spearman's rho") and text[1:] == [
        "  epoch 20: -1.00 (4 trials)", "  epoch 60: +1.00 (4 trials)", "  epoch 180: - (4 trials)"]
    assert mlflow_metrics(result) == {"rung_trials_epoch_20": 4.0, "rung_spearman_epoch_20": -1.0, "rung_trials_epoch_60": 4.0,
                                      "rung_spearman_epoch_60": 1.0, "rung_trials_epoch_180": 4.0}


def test_two_finished_trials_give_no_correlation() -> None:
    rows, history = _rows_and_history({"a": 0.9, "b": 0.8}, {2: {"a": 0.3, "b": 0.1}})
    assert [(c.trials, c.spearman) for c in rung_correlations(rows, [2], history, "val_acc")] == [(2, None)]
