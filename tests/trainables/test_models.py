"""The backbone, heads and exits; every preset builds and takes one training step on the CPU."""

from __future__ import annotations

import pytest
import torch

from trainables.config import ConfigError, TrainConfig
from trainables.data.augment import normalize
from trainables.losses.criterion import Criterion
from trainables.models.heads import NormedLinear
from trainables.models.network import build_model
from trainables.presets import PRESETS, build_preset


def test_resnet32_has_the_reference_size_and_no_projection_shortcuts() -> None:
    model = build_model(TrainConfig())
    assert 0.45e6 < sum(p.numel() for p in model.parameters()) < 0.47e6
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.kernel_size == (3, 3) for c in convs)  # option A: no 1x1 shortcut convolutions
    assert len(convs) == 31  # stem + 3 stages x 5 blocks x 2


def test_exits_attach_at_taps_and_return_one_output_each() -> None:
    cfg = TrainConfig(exit_taps=("stem", "stage1", "stage2.block3"), head="reslt_bn")
    outs = build_model(cfg)(torch.randn(2, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(2, 1, 10)] * 3 + [(2, 3, 10)]
    full = TrainConfig(exit_taps=("stage1",), head="reslt_grouped", widths=(15, 30, 63), exit_channels=63, reslt_heads_at="all")
    assert [o.shape[1] for o in build_model(full)(torch.randn(2, 3, 32, 32))] == [3, 3]


def test_forward_to_exit_matches_the_full_forward() -> None:
    model = build_model(TrainConfig(exit_taps=("stage1", "stage2"))).eval()
    x = torch.randn(3, 3, 32, 32)
    full = model(x)
    for k in range(3):
        partial = model.forward_to_exit(x, k)
        assert len(partial) == k + 1 and torch.allclose(partial[k], full[k])


def test_cosine_classifier_outputs_cosines() -> None:
    out = NormedLinear(64, 10)(torch.randn(5, 64) * 100)
    assert out.abs().max() <= 1.0 + 1e-6


@pytest.mark.parametrize("overrides, message", [
    (dict(exit_taps=("stage3",)), "final exit"),
    (dict(exit_taps=("stage2", "stage1")), "ordered"),
    (dict(exit_taps=("stage4",)), "unknown tap"),
    (dict(exit_taps=("stage1.block9",)), "blocks 0..4"),
    (dict(head="reslt_grouped"), "divisible by 3"),
    (dict(reslt_heads_at="all"), "needs head"),
    (dict(lr_decay_epochs=(180, 160)), "increasing"),
])
def test_impossible_architectures_are_rejected_with_the_field_named(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**overrides).validate()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_and_takes_one_step(name: str) -> None:
    torch.manual_seed(0)
    cfg = build_preset(name, dataset="synthetic").validate()
    model = build_model(cfg)
    counts = [50, 30, 20, 12, 8, 5, 4, 3, 2, 2]
    crit = Criterion(cfg, counts, model.exit_branches)
    crit.set_epoch(cfg.drw_start_epoch)  # the later-phase weights too
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    x = normalize(torch.randint(0, 255, (8, 3, 32, 32), dtype=torch.uint8))
    y = torch.tensor([0, 1, 2, 3, 4, 5, 6, 9])
    before = [p.detach().clone() for p in model.parameters()]
    loss, leave = crit(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and leave.shape == (8,)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert PRESETS[name].source  # every preset cites where it comes from
