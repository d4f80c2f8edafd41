"""The model every preset builds: a backbone (a CIFAR ResNet, or torchvision's ResNets and DenseNets by
name), early exits at named taps, and a final head.

`forward(x)` returns one logits tensor per exit, earliest first, each (B, branches, C); the
prediction of an exit is the sum over its branches. A model without exits returns one entry.

    model = build_model(config)           # from a TrainConfig
    outs = model(images)                  # list of (B, branches, C)
"""

from __future__ import annotations

import torch
import torch.nn as nn

from trainables.config import TrainConfig
from trainables.models.heads import ExitHead, NormedLinear, build_head
from trainables.models.resnet_cifar import CifarResNet
from trainables.models.taps import DEPTHS, TORCHVISION_BACKBONES, blocks_per_stage, tap_position, torchvision_tap_position
from trainables.models.torchvision_backbone import TorchvisionBackbone


class MultiExitNet(nn.Module):
    def __init__(self, backbone: CifarResNet, tap_positions: tuple[int, ...], exits: list[nn.Module], final_head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.tap_positions = tuple(tap_positions)
        self.exits = nn.ModuleList(exits)
        self.final_head = final_head

    @property
    def num_exits(self) -> int:
        return len(self.exits) + 1

    @property
    def exit_branches(self) -> tuple[int, ...]:
        """Branches of each exit's head, earliest first: 3 for a ResLT head, 1 otherwise."""
        return (*(e.head.branches for e in self.exits), self.final_head.branches)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.backbone.forward_taps(x, self.tap_positions)
        return [head(f) for head, f in zip(self.exits, feats[:-1])] + [self.final_head(feats[-1])]

    def forward_to_exit(self, x: torch.Tensor, exit_index: int) -> list[torch.Tensor]:
        """Outputs of exits 0..exit_index only, computing no more of the network than that needs."""
        if exit_index >= len(self.exits):
            return self.forward(x)
        feats = self.backbone.forward_taps(x, self.tap_positions, stop_after=exit_index + 1)
        return [head(f) for head, f in zip(self.exits, feats)]


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal convolutions and linear layers, as LDAM-DRW's _weights_init."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and not isinstance(m, NormedLinear):
            nn.init.kaiming_normal_(m.weight)


def build_backbone(name: str, widths: tuple[int, ...]) -> CifarResNet | TorchvisionBackbone:
    """A CIFAR ResNet of `widths`, or torchvision's model `name` (its own widths; `widths` unused)."""
    if name in TORCHVISION_BACKBONES:
        return TorchvisionBackbone(name)
    if name not in DEPTHS:
        raise ValueError(f"backbone: unknown {name!r}; known: {', '.join((*DEPTHS, *TORCHVISION_BACKBONES))}")
    return CifarResNet(blocks_per_stage(name), tuple(widths))


def backbone_tap_position(name: str, tap: str) -> int:
    return torchvision_tap_position(name, tap) if name in TORCHVISION_BACKBONES else tap_position(name, tap)


def build_model(config: TrainConfig, num_classes: int | None = None) -> MultiExitNet:
    """The network `config` describes, with weights initialised from the current torch seed."""
    c = num_classes or config.num_classes
    backbone = build_backbone(config.backbone, config.widths)
    positions = tuple(backbone_tap_position(config.backbone, t) for t in config.exit_taps)
    early_head = config.head if config.reslt_heads_at == "all" else "plain"
    exits = [
        ExitHead(
            backbone.channels_at(p), config.exit_channels, config.exit_conv_stride,
            build_head(early_head, config.exit_channels, c, config.classifier),
        )
        for p in positions
    ]
    final_channels = backbone.out_channels if isinstance(backbone, TorchvisionBackbone) else config.widths[-1]
    final = build_head(config.head, final_channels, c, config.classifier)
    model = MultiExitNet(backbone, positions, exits, final)
    # LDAM-DRW's initialisation for what this project builds; a torchvision backbone keeps torchvision's own.
    init_weights(model if isinstance(backbone, CifarResNet) else nn.ModuleList([*exits, final]))
    return model


def build_plain(backbone: str, num_classes: int) -> nn.Module:
    """torchvision's `backbone` with no exits and a pooled linear classifier: an image-file set's FLOPs reference."""
    body = TorchvisionBackbone(backbone)
    return MultiExitNet(body, (), [], build_head("plain", body.out_channels, num_classes, "linear"))


def build_reference_resnet32(num_classes: int) -> nn.Module:
    """LDAM-DRW's ResNet-32 (widths 16/32/64, pooled linear classifier): the FLOPs reference of every model."""
    backbone = build_backbone("resnet32", (16, 32, 64))
    return MultiExitNet(backbone, (), [], build_head("plain", 64, num_classes, "linear"))
