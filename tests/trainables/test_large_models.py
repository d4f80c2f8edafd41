"""The ELF paper's headline models (issue 31): ResNet-50 and DenseNet-169 from torchvision by name, with
an exit before each residual stage or dense block and the final one (five), their FLOPs counted by
torch's counter against the plain backbone at the image size, and a training step taken."""

from __future__ import annotations

import pytest
import torch

from trainables.config import ConfigError
from trainables.flops import exit_flops, reference_flops
from trainables.losses.criterion import Criterion
from trainables.models.network import build_model, build_plain
from trainables.presets import PRESETS, build_preset
from trainables.step import TrainStep

# torchvision's published multiply-adds at 224x224 with 1,000 classes (its model cards: 4.09 and 3.36
# GMACs); torch's FlopCounterMode counts two FLOPs per multiply-add.
PUBLISHED_GFLOPS = {"resnet50": 2 * 4.09, "densenet169": 2 * 3.36}


@pytest.mark.slow
@pytest.mark.parametrize("backbone", list(PUBLISHED_GFLOPS))
def test_the_plain_backbone_costs_what_torchvision_publishes(backbone: str) -> None:
    with torch.random.fork_rng(devices=[]):
        plain = build_plain(backbone, 1000)
    assert reference_flops(1000, backbone, 224) / 1e9 == pytest.approx(PUBLISHED_GFLOPS[backbone], rel=0.02)
    assert plain.num_exits == 1


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["r50_elf_ldam_drw", "d169_elf_ldam_drw"])
def test_elf_models_have_five_exits_cost_less_early_and_train_a_step(preset: str) -> None:
    config = build_preset(preset, image_size=64, batch_size=4, device="cpu")
    torch.manual_seed(0)
    model = build_model(config, num_classes=10)
    assert model.num_exits == 5 and model.exit_branches == (1, 1, 1, 1, 1)
    costs = exit_flops(model, (3, 64, 64))
    base = reference_flops(10, config.backbone, 64)
    assert costs == sorted(costs) and costs[0] < 0.2 * base  # leaving after the stem costs a sliver of the network
    assert base < costs[-1] < 1.3 * base  # the whole network plus the four exits' heads
    outs = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 1, 10)] * 5
    criterion = Criterion(config, [40, 20, 10, 5, 5, 4, 3, 3, 2, 2], model.exit_branches)
    step = TrainStep(model, criterion, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), config, torch.device("cpu"))
    before = [p.detach().clone() for p in model.backbone.parameters()]  # every sample's loss reaches the stem
    loss, leave, *_ = step(torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 2, 3]))
    assert torch.isfinite(loss) and leave.shape == (4,)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.backbone.parameters()))


def test_every_large_preset_names_a_torchvision_backbone_and_its_tables() -> None:
    large = {n: p for n, p in PRESETS.items() if n.startswith(("r50_", "d169_"))}
    assert {n.split("_", 1)[1] for n in large} == {"ce", "ce_drw", "ldam_drw", "elf_ce_drw", "elf_ldam_drw"}
    for name, preset in large.items():
        config = build_preset(name)
        assert config.backbone in ("resnet50", "densenet169") and config.dataset == "imagenet_lt"
        assert (config.epochs, config.lr, config.lr_decay_epochs, config.weight_decay, config.warmup_epochs) == \
            (100, 0.1, (60, 80), 2e-4, 5), name
        assert "Tables 1" in preset.source
        if "drw" in name:
            assert config.drw_start_epoch == 60 and config.class_weighting == "effective_number"


def test_a_grouped_reslt_head_or_autoaugment_is_refused_on_what_cannot_take_it() -> None:
    with pytest.raises(ConfigError, match="'reslt_grouped' needs a CIFAR ResNet"):
        build_preset("r50_ce", head="reslt_grouped").validate()
    with pytest.raises(ConfigError, match="autoaugment: the CIFAR-10 policy"):
        build_preset("r50_ce", autoaugment=True).validate()
    with pytest.raises(ConfigError, match="unknown tap 'stage4'"):
        build_preset("r50_ce", exit_taps=("stem", "stage4")).validate()
