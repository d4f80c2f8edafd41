"""The training loop on tiny synthetic data: reports, divergence, collapse, checkpoint and resume."""

from __future__ import annotations

import io
import math

import pytest
import torch

from trainables.config import TrainConfig
from trainables.loop import train

TINY = dict(dataset="synthetic", synthetic_train_per_class=30, synthetic_test_per_class=20, imbalance_ratio=10,
            epochs=2, batch_size=32, warmup_epochs=1, widths=(8, 16, 32), threshold_grid=(0.3, 0.6))


def _run(**overrides) -> tuple[list[dict], dict, list]:
    reports, states = [], []

    def report(metrics: dict, state) -> None:
        reports.append(metrics)
        states.append(state)

    summary = train(TrainConfig(**{**TINY, **overrides}), report)
    return reports, summary, states


def test_reports_every_epoch_with_the_shared_metric_names() -> None:
    reports, summary, _ = _run(exit_taps=("stage1",))
    assert [r["epoch"] for r in reports] == [1, 2]
    for r in reports:
        for key in ("val_acc", "test_acc", "many_acc", "medium_acc", "few_acc", "flops_ratio", "train_loss", "lr", "grad_norm", "status"):
            assert key in r, key
        assert all(math.isfinite(v) for v in (r["val_acc"], r["train_loss"], r["flops_ratio"]))
        assert len(r["class_acc"]) == 10 and len(r["exit_fractions"]) == 2
    assert [r["status"] for r in reports] == ["running", "completed"]
    # the curve: the grid (0.3, 0.6) and the run's own threshold (0.5), in order
    assert summary["status"] == "completed" and [p["threshold"] for p in summary["threshold_curve"]] == [0.3, 0.5, 0.6]
    assert summary["inference_threshold_used"] == 0.5
    assert summary["selected_by_val"]["epoch"] in (1, 2)


def test_a_loss_above_the_bound_ends_the_run_as_diverged_within_the_epoch() -> None:
    reports, summary, _ = _run(divergence_loss_bound=0.5, exit_taps=("stage1",))
    assert len(reports) == 1 and reports[0]["status"] == "diverged"
    assert reports[0]["diverged_step"] == 0 and reports[0]["diverged_epoch"] == 1
    assert reports[0]["val_acc"] == 0.0 and math.isfinite(reports[0]["train_loss"])
    assert reports[0]["flops_ratio"] == summary["exit_flops"][-1] / summary["reference_flops"]  # the worst this model can cost
    assert summary["status"] == "diverged" and "batch loss" in summary["diverged_reason"]


def test_a_nan_loss_is_divergence_not_a_crash(monkeypatch) -> None:
    from trainables.losses.criterion import Criterion

    real_forward, calls = Criterion.forward, []

    def nan_on_third_step(self, *args, **kwargs):
        loss, leave = real_forward(self, *args, **kwargs)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 3 else loss), leave

    monkeypatch.setattr(Criterion, "forward", nan_on_third_step)
    reports, summary, _ = _run(epochs=3)
    assert summary["status"] == "diverged" and "nan" in summary["diverged_reason"]
    assert reports[-1]["diverged_step"] == 2
    assert all(math.isfinite(v) for r in reports for v in (r["val_acc"], r["train_loss"], r["flops_ratio"]))


def test_accuracy_stuck_at_chance_is_a_collapse() -> None:
    # lr so small the network never leaves its initial single-class guess.
    reports, summary, _ = _run(lr=1e-9, warmup_epochs=0, epochs=4, collapse_patience=2, crop_padding=0)
    assert summary["status"] == "diverged" and "collapse" in summary["diverged_reason"]
    assert reports[-1]["epoch"] == 2


def test_resume_from_a_checkpoint_continues_exactly() -> None:
    straight, _, _ = _run(epochs=3)
    saved = io.BytesIO()

    def save_after_first_epoch(metrics: dict, state) -> None:
        if metrics["epoch"] == 1:
            torch.save(state.checkpoint(), saved)

    train(TrainConfig(**{**TINY, "epochs": 3}), save_after_first_epoch)
    saved.seek(0)
    ckpt = torch.load(saved, weights_only=True)  # checkpoints hold tensors and plain values only
    resumed = []
    train(TrainConfig(**{**TINY, "epochs": 3}), lambda m, s: resumed.append(m), resume=ckpt)
    assert [r["epoch"] for r in resumed] == [2, 3]
    for a, b in zip(straight[1:], resumed):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_acc"] == pytest.approx(b["val_acc"], abs=1e-6)


# Operators that, on a GPU, make the host wait for the device.
READ_BACKS = {"aten::item", "aten::_local_scalar_dense", "aten::is_nonzero", "aten::nonzero", "aten::bincount",
              "aten::unique", "aten::_unique2", "aten::masked_select", "aten::index_put_"}


def _read_backs(**overrides) -> int:
    from torch.profiler import ProfilerActivity, profile

    config = TrainConfig(**{**TINY, "epochs": 1, "warmup_epochs": 0, "divergence_check_every": 1000,
                            "autoaugment": True, "mixup_alpha": 1.0, "exit_taps": ("stage1",), **overrides})
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train(config)
    return sum(1 for e in prof.events() if e.name in READ_BACKS)


def test_training_steps_never_wait_for_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """Host reads happen per epoch (statistics, evaluation), never per step: more steps, same count."""
    import functools

    import trainables.data.autoaugment as autoaugment

    # AutoAugment as on a GPU (masks over the whole batch); on a CPU it indexes the chosen images. (augment.py
    # imports it when a run asks for it, from the module.)
    monkeypatch.setattr(autoaugment, "BatchAutoAugment", functools.partial(autoaugment.BatchAutoAugment, whole_batch=True))
    few_steps, many_steps = _read_backs(batch_size=64), _read_backs(batch_size=8)
    assert few_steps == many_steps
