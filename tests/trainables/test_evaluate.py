"""Inference exits at a threshold, the accuracy/FLOPs curve from one pass, FLOP counting."""

from __future__ import annotations

import torch

from trainables.config import TrainConfig
from trainables.evaluate import ExitPredictions, class_accuracy, evaluate, split_metrics
from trainables.flops import backbone_flops, exit_flops
from trainables.models.network import build_model


def test_exit_index_is_the_first_confident_exit() -> None:
    # 3 exits, 4 samples, 2 classes; top probabilities per exit:
    conf = torch.tensor([[0.9, 0.6, 0.5, 0.55], [0.5, 0.8, 0.6, 0.55], [0.5, 0.5, 0.7, 0.55]])
    probs = torch.stack([conf, 1 - conf], dim=2)  # class 0 holds the top probability
    preds = ExitPredictions(probs)
    assert preds.exit_index(0.7).tolist() == [0, 1, 2, 2]
    assert preds.exit_index(0.55).tolist() == [0, 0, 1, 2]  # strictly greater than s
    assert preds.exit_index(1.0).tolist() == [2, 2, 2, 2]


def test_no_exit_model_costs_exactly_the_backbone() -> None:
    cfg = TrainConfig()
    assert exit_flops(build_model(cfg)) == [backbone_flops(cfg, 10)]


def test_exit_costs_increase_and_the_ratio_falls_with_the_threshold() -> None:
    torch.manual_seed(0)
    cfg = TrainConfig(exit_taps=("stage1", "stage2"))
    model = build_model(cfg)
    costs, base = exit_flops(model), backbone_flops(cfg, 10)
    assert costs == sorted(costs) and costs[0] < 0.5 * base
    images = torch.randint(0, 255, (64, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (64,))
    from trainables.evaluate import predict_exits

    preds = predict_exits(model, images)
    ratios = [split_metrics(preds, labels, s, costs, base)["flops_ratio"] for s in (0.0, 0.1, 0.2, 0.5, 1.0)]
    assert all(0 < r for r in ratios) and ratios == sorted(ratios)
    assert ratios[0] == costs[0] / base <= 1.0  # everyone leaves at the first exit
    assert ratios[-1] == costs[-1] / base  # nobody leaves early: backbone plus every exit head


def test_curve_comes_from_one_pass_and_agrees_with_the_point_metrics() -> None:
    torch.manual_seed(1)
    cfg = TrainConfig(exit_taps=("stage1",))
    model = build_model(cfg)
    x = torch.randint(0, 255, (40, 3, 32, 32), dtype=torch.uint8)
    y = torch.arange(40) % 10
    costs, base = exit_flops(model), backbone_flops(cfg, 10)
    groups = {"many": [0, 1, 2], "medium": [3, 4, 5], "few": [6, 7, 8, 9]}
    out = evaluate(model, (x, y), (x, y), groups, 0.15, costs, base, curve_thresholds=(0.1, 0.15, 0.9))
    point = [p for p in out["threshold_curve"] if p["threshold"] == 0.15][0]
    assert point["val_acc"] == out["val_acc"] and point["flops_ratio"] == out["flops_ratio"]
    assert len(out["class_acc"]) == 10 and sum(out["exit_fractions"]) == 1.0


def test_class_accuracy() -> None:
    acc = class_accuracy(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 3)
    assert acc.tolist() == [1.0, 1.0, 0.5]
