"""Each loss against an independent formula, the class weights against the published numbers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from trainables.config import TrainConfig
from trainables.data.long_tail import long_tailed_counts
from trainables.losses.class_weights import class_weights, weights_for_epoch
from trainables.losses.criterion import Criterion
from trainables.losses.elf import exit_loss_mask, first_exit
from trainables.losses.per_sample import cross_entropy, focal, ldam, ldam_margins
from trainables.losses.reslt import reslt_per_sample, simulated_reslt_per_sample

C10_LT100 = long_tailed_counts(5000, 10, 100)


def test_ldam_with_zero_margin_and_unit_scale_is_cross_entropy() -> None:
    torch.manual_seed(0)
    z, y = torch.randn(16, 10), torch.randint(0, 10, (16,))
    assert torch.allclose(ldam(z, y, torch.zeros(10), s=1.0), F.cross_entropy(z, y, reduction="none"), atol=1e-6)


def test_ldam_matches_its_formula_written_out() -> None:
    torch.manual_seed(1)
    z, y = torch.rand(8, 10) * 2 - 1, torch.randint(0, 10, (8,))
    m, s = ldam_margins(C10_LT100), 30.0
    expected = []
    for i in range(8):
        logits = [s * (z[i, j].item() - (m[y[i]].item() if j == y[i] else 0.0)) for j in range(10)]
        log_norm = math.log(sum(math.exp(v) for v in logits))
        expected.append(log_norm - logits[y[i]])
    assert torch.allclose(ldam(z, y, m, s), torch.tensor(expected), atol=1e-4)


def test_ldam_margins_match_the_reference_for_cifar10_lt_100() -> None:
    published = [0.158, 0.180, 0.204, 0.232, 0.264, 0.300, 0.341, 0.387, 0.441, 0.500]
    assert ldam_margins(C10_LT100, 0.5).tolist() == pytest.approx(published, abs=1e-3)  # published to 3 places


def test_effective_number_weights_match_the_published_drw_weights() -> None:
    published = [0.051, 0.077, 0.121, 0.195, 0.319, 0.525, 0.868, 1.443, 2.409, 3.993]
    w = class_weights("effective_number", C10_LT100, 0.9999)
    assert w.tolist() == pytest.approx(published, abs=5e-4)
    assert w.sum().item() == pytest.approx(10.0)


@pytest.mark.parametrize("kind, raw", [("inverse", lambda n: 1 / n), ("inverse_sqrt", lambda n: n**-0.5)])
def test_inverse_weights_are_normalised_powers_of_the_counts(kind, raw) -> None:
    w = class_weights(kind, C10_LT100)
    r = torch.tensor([raw(float(n)) for n in C10_LT100])
    assert torch.allclose(w, r / r.sum() * 10, rtol=1e-5)


def test_drw_switches_weights_on_at_the_start_epoch() -> None:
    before = weights_for_epoch("effective_number", C10_LT100, 0.9999, 160, 159)
    after = weights_for_epoch("effective_number", C10_LT100, 0.9999, 160, 160)
    assert torch.equal(before, torch.ones(10))
    assert torch.allclose(after, class_weights("effective_number", C10_LT100, 0.9999))
    crit = Criterion(TrainConfig(class_weighting="effective_number"), C10_LT100, (1,))
    crit.set_epoch(159)
    assert torch.equal(crit.weights, torch.ones(10))
    crit.set_epoch(160)
    assert crit.weights[9] > 3.9


def test_single_exit_weighted_loss_is_pytorchs_weighted_cross_entropy() -> None:
    torch.manual_seed(2)
    cfg = TrainConfig(class_weighting="effective_number", drw_start_epoch=0)
    crit = Criterion(cfg, C10_LT100, (1,))
    crit.set_epoch(0)
    z, y = torch.randn(32, 10), torch.randint(0, 10, (32,))
    loss, _ = crit([z.unsqueeze(1)], y)
    assert loss.item() == pytest.approx(F.cross_entropy(z, y, weight=crit.weights).item(), rel=1e-5)


def test_focal_reduces_to_cross_entropy_at_gamma_zero_and_downweights_easy_samples() -> None:
    torch.manual_seed(3)
    z, y = torch.randn(16, 10), torch.randint(0, 10, (16,))
    ce = F.cross_entropy(z, y, reduction="none")
    assert torch.allclose(focal(z, y, 0.0), ce)
    p = torch.softmax(z, 1)[torch.arange(16), y]
    assert torch.allclose(focal(z, y, 2.0), (1 - p) ** 2 * ce, atol=1e-6)


def test_label_smoothing_is_the_smoothed_target_cross_entropy() -> None:
    torch.manual_seed(4)
    z, y = torch.randn(4, 10), torch.randint(0, 10, (4,))
    target = torch.full((4, 10), 0.1 / 10) + 0.9 * F.one_hot(y, 10)
    expected = -(target * torch.log_softmax(z, 1)).sum(1)
    assert torch.allclose(cross_entropy(z, y, 0.1), expected, atol=1e-6)


def test_reslt_loss_matches_the_released_formula() -> None:
    """alpha * (sum of masked branch CEs / number of included pairs) + (1 - alpha) * mean fusion CE."""
    torch.manual_seed(5)
    b = torch.randn(12, 3, 10)
    y = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 9])
    alpha, med, tail = 0.95, 2, 4
    ce = lambda z, t: F.cross_entropy(z, t, reduction="sum")  # noqa: E731
    mask_m, mask_t = y >= med, y >= tail
    branch_sum = ce(b[:, 0], y) + ce(b[mask_m, 1], y[mask_m]) + ce(b[mask_t, 2], y[mask_t])
    pairs = len(y) + mask_m.sum() + mask_t.sum()
    released = alpha * branch_sum / pairs + (1 - alpha) * F.cross_entropy(b.sum(1), y)
    ours = reslt_per_sample(b, y, lambda z, t: F.cross_entropy(z, t, reduction="none"), alpha, med, tail).mean()
    assert ours.item() == pytest.approx(released.item(), rel=1e-5)


def test_simulated_reslt_loss_counts_medium_twice_and_tail_three_times() -> None:
    z = torch.zeros(3, 10)
    y = torch.tensor([0, 3, 7])  # head, medium, tail with groups starting at 2 and 4
    base = lambda z, t: torch.ones(len(t))  # noqa: E731
    assert simulated_reslt_per_sample(z, y, base, 2, 4).tolist() == [1.0, 2.0, 3.0]


def _logits_for(classes_and_probs: list[tuple[int, float]], num_classes: int = 4) -> torch.Tensor:
    """Logits whose softmax puts probability p on class c and spreads the rest evenly."""
    rows = []
    for c, p in classes_and_probs:
        probs = torch.full((num_classes,), (1 - p) / (num_classes - 1))
        probs[c] = p
        rows.append(probs.log())
    return torch.stack(rows)


def test_exit_criterion_needs_a_correct_and_confident_prediction() -> None:
    y = torch.tensor([0, 1, 2, 3])
    exit0 = _logits_for([(0, 0.95), (1, 0.5), (0, 0.95), (3, 0.2)])  # right+sure, right+unsure, wrong+sure, unsure
    exit1 = _logits_for([(0, 0.95), (1, 0.95), (1, 0.95), (3, 0.3)])
    final = _logits_for([(0, 0.5)] * 4)
    leave = first_exit([exit0, exit1, final], y, threshold=0.9)
    assert leave.tolist() == [0, 1, 2, 2]


def test_accumulative_and_routed_masks() -> None:
    leave = torch.tensor([0, 1, 2])
    assert exit_loss_mask(leave, 3, "accumulative").T.tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    assert exit_loss_mask(leave, 3, "routed").T.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]


@pytest.mark.parametrize("aggregation", ["accumulative", "routed"])
def test_elf_batch_loss_sums_the_paid_exit_losses(aggregation: str) -> None:
    y = torch.tensor([0, 1, 2])
    outs = [_logits_for([(0, 0.95), (0, 0.9), (0, 0.9)], 4), _logits_for([(1, 0.5), (1, 0.95), (0, 0.9)], 4),
            _logits_for([(2, 0.6)] * 3, 4)]
    cfg = TrainConfig(exit_aggregation=aggregation, train_exit_threshold=0.9, class_weighting="none",
                      exit_taps=("stage1", "stage2"))
    crit = Criterion(cfg, [10, 5, 2, 1], (1, 1, 1))
    loss, leave = crit([o.unsqueeze(1) for o in outs], y)
    assert leave.tolist() == [0, 1, 2]
    per_exit = torch.stack([F.cross_entropy(o, y, reduction="none") for o in outs])  # (K, B)
    paid = {"accumulative": per_exit[0, 0] + per_exit[0, 1] + per_exit[1, 1] + per_exit[:, 2].sum(),
            "routed": per_exit[0, 0] + per_exit[1, 1] + per_exit[2, 2]}
    assert loss.item() == pytest.approx((paid[aggregation] / 3).item(), rel=1e-5)


def test_mixup_loss_is_the_lam_weighted_mix_of_both_label_losses() -> None:
    torch.manual_seed(6)
    crit = Criterion(TrainConfig(), C10_LT100, (1,))
    z, ya, yb = torch.randn(8, 1, 10), torch.randint(0, 10, (8,)), torch.randint(0, 10, (8,))
    mixed, _ = crit([z], ya, yb, 0.3)
    expected = 0.3 * F.cross_entropy(z[:, 0], ya) + 0.7 * F.cross_entropy(z[:, 0], yb)
    assert mixed.item() == pytest.approx(expected.item(), rel=1e-5)
    alone, _ = crit([z], ya, yb, 1.0)
    assert alone.item() == pytest.approx(F.cross_entropy(z[:, 0], ya).item(), rel=1e-6)
