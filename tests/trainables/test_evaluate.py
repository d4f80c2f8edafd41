"""Inference exits at a threshold, the threshold chosen on the validation split, the accuracy/FLOPs curve
from one pass, FLOP counting against one reference."""

from __future__ import annotations

import torch

from trainables.config import TrainConfig
from trainables.evaluate import ExitPredictions, class_accuracy, evaluate, select_threshold, split_metrics
from trainables.flops import exit_flops, reference_flops
from trainables.models.network import build_model


def test_exit_index_is_the_first_confident_exit() -> None:
    # 3 exits, 4 samples, 2 classes; top probabilities per exit:
    conf = torch.tensor([[0.9, 0.6, 0.5, 0.55], [0.5, 0.8, 0.6, 0.55], [0.5, 0.5, 0.7, 0.55]])
    probs = torch.stack([conf, 1 - conf], dim=2)  # class 0 holds the top probability
    preds = ExitPredictions(probs)
    assert preds.exit_index(0.7).tolist() == [0, 1, 2, 2]
    assert preds.exit_index(0.55).tolist() == [0, 0, 1, 2]  # strictly greater than s
    assert preds.exit_index(1.0).tolist() == [2, 2, 2, 2]


def test_no_exit_model_costs_exactly_the_reference_resnet32() -> None:
    assert exit_flops(build_model(TrainConfig())) == [reference_flops(10)]


def test_narrowed_backbones_divide_by_the_standard_resnet32_too() -> None:
    # The seeds' hybrids narrow the backbone (16/32/48, 15/30/63): against LDAM-DRW's ResNet-32 they
    # cost less than 1 (0.861 and 0.908); divided by themselves, as before, both would be exactly 1.
    narrow = exit_flops(build_model(TrainConfig(widths=(16, 32, 48))))[0] / reference_flops(10)
    full_power = exit_flops(build_model(TrainConfig(widths=(15, 30, 63))))[0] / reference_flops(10)
    assert 0.85 < narrow < 0.87 and 0.90 < full_power < 0.92


def test_exit_costs_increase_and_the_ratio_falls_with_the_threshold() -> None:
    torch.manual_seed(0)
    cfg = TrainConfig(exit_taps=("stage1", "stage2"))
    model = build_model(cfg)
    costs, base = exit_flops(model), reference_flops(10)
    assert costs == sorted(costs) and costs[0] < 0.5 * base
    images = torch.randint(0, 255, (64, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (64,))
    from trainables.evaluate import predict_exits

    preds = predict_exits(model, images)
    ratios = [split_metrics(preds, labels, s, costs, base)["flops_ratio"] for s in (0.0, 0.1, 0.2, 0.5, 1.0)]
    assert all(r > 0 for r in ratios) and ratios == sorted(ratios)
    assert ratios[0] == costs[0] / base <= 1.0  # everyone leaves at the first exit
    assert ratios[-1] == costs[-1] / base  # nobody leaves early: backbone plus every exit head


def test_curve_comes_from_one_pass_and_agrees_with_the_point_metrics() -> None:
    torch.manual_seed(1)
    cfg = TrainConfig(exit_taps=("stage1",))
    model = build_model(cfg)
    x = torch.randint(0, 255, (40, 3, 32, 32), dtype=torch.uint8)
    y = torch.arange(40) % 10
    costs, base = exit_flops(model), reference_flops(10)
    groups = {"many": [0, 1, 2], "medium": [3, 4, 5], "few": [6, 7, 8, 9]}
    out = evaluate(model, (x, y), (x, y), groups, (0.15,), costs, base, curve_thresholds=(0.1, 0.15, 0.9))
    assert out["inference_threshold_used"] == 0.15
    point = [p for p in out["threshold_curve"] if p["threshold"] == 0.15][0]
    assert point["val_acc"] == out["val_acc"] and point["flops_ratio"] == out["flops_ratio"]
    assert len(out["class_acc"]) == 10 and sum(out["exit_fractions"]) == 1.0


def test_class_accuracy() -> None:
    acc = class_accuracy(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 3)
    assert acc.tolist() == [1.0, 1.0, 0.5]


def _two_exit_predictions() -> tuple[ExitPredictions, torch.Tensor]:
    # 4 samples, 2 exits, 2 classes. Early-exit confidences 0.9, 0.7, 0.6, 0.55 (class 0 on top);
    # the final exit is right on every sample, the early exit only on samples 0 and 1.
    early = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.6, 0.4], [0.55, 0.45]])
    final = torch.tensor([[0.8, 0.2], [0.8, 0.2], [0.2, 0.8], [0.2, 0.8]])
    return ExitPredictions(torch.stack([early, final])), torch.tensor([0, 0, 1, 1])


def test_the_threshold_with_the_best_validation_accuracy_is_selected() -> None:
    preds, labels = _two_exit_predictions()
    costs, base = [10, 100], 100
    # s = 0.5: everyone leaves early (acc 0.5); 0.65: samples 2, 3 go on (acc 1.0, 55 FLOPs);
    # 0.8: only sample 0 leaves early (acc 1.0, 77.5 FLOPs): a tie in accuracy goes to fewer FLOPs.
    s, val = select_threshold(preds, labels, (0.5, 0.8, 0.65), costs, base)
    assert s == 0.65 and val["acc"] == 1.0 and val["flops_ratio"] == 0.55
    assert select_threshold(preds, labels, (0.5,), costs, base)[0] == 0.5  # one candidate: that one


def test_the_test_images_never_choose_the_threshold() -> None:
    preds, labels = _two_exit_predictions()
    model_out = preds.probs
    wrong_test_labels = 1 - labels  # a test split on which the early exit would look best

    class Fixed(torch.nn.Module):  # a model whose outputs are the probabilities above
        def __init__(self) -> None:
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return [torch.log(model_out[k])[:, None, :] for k in range(2)]

    x = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    out = evaluate(Fixed(), (x, labels), (x, wrong_test_labels), {"all": [0, 1]}, (0.5, 0.65, 0.8), [10, 100], 100,
                   curve_thresholds=(0.5, 0.65))
    assert out["inference_threshold_used"] == 0.65 and out["val_acc"] == 1.0 and out["test_acc"] == 0.0
    assert out["flops_ratio"] == 0.55
