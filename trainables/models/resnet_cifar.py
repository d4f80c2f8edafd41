"""The CIFAR ResNet of He et al. (2016) as LDAM-DRW and ResLT use it: option-A shortcuts, 6n+2 layers.

conv3x3(3 -> w0)-BN-ReLU, three stages of n BasicBlocks with widths w0/w1/w2 and strides 1/2/2;
an option-A shortcut subsamples by 2 and zero-pads channels (no 1x1 conv). ResNet-32 with widths
16/32/64 has about 0.46 M parameters with its linear classifier. `forward_taps` returns the
features at requested positions (see taps.py) so that exits attach without forking the network.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv3x3(cin: int, cout: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, groups=groups, bias=False)


class OptionAShortcut(nn.Module):
    """Identity shortcut for a changed shape: subsample by the stride and zero-pad new channels."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        extra = cout - cin
        self.pad = (extra // 2, extra - extra // 2)  # the reference pads planes//4 on each side (16 -> 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, *self.pad))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = conv3x3(cout, cout), nn.BatchNorm2d(cout)
        self.shortcut = OptionAShortcut(cin, cout, stride) if (stride != 1 or cin != cout) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """Stem and three stages; the head lives elsewhere (heads.py)."""

    def __init__(self, blocks_per_stage: int, widths: tuple[int, int, int]):
        super().__init__()
        self.widths = tuple(widths)
        self.stem = nn.Sequential(conv3x3(3, widths[0]), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        blocks, cin = [], widths[0]
        for width, stride in zip(widths, (1, 2, 2)):
            for i in range(blocks_per_stage):
                blocks.append(BasicBlock(cin, width, stride if i == 0 else 1))
                cin = width
        self.blocks = nn.ModuleList(blocks)  # flat, so a tap is an index into it
        self.blocks_per_stage = blocks_per_stage

    def channels_at(self, position: int) -> int:
        """Channels of the feature map after `position` blocks."""
        if position == 0:
            return self.widths[0]
        return self.widths[(position - 1) // self.blocks_per_stage]

    def forward_taps(self, x: torch.Tensor, positions: tuple[int, ...], stop_after: int | None = None) -> list[torch.Tensor]:
        """Features at each of `positions` (ascending), then the final features.

        With `stop_after`, computation stops once that many entries are collected: the FLOP
        counter uses this to price the path to an early exit.
        """
        feats: list[torch.Tensor] = []
        out = self.stem(x)
        wanted = iter(positions)
        nxt = next(wanted, None)
        for pos in range(len(self.blocks) + 1):
            if pos > 0:
                out = self.blocks[pos - 1](out)
            if nxt == pos:
                feats.append(out)
                nxt = next(wanted, None)
                if stop_after is not None and len(feats) >= stop_after:
                    return feats
        feats.append(out)
        return feats
