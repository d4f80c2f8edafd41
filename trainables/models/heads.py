"""Classifier heads. Every head maps a feature map to logits of shape (B, branches, C).

A plain head has one branch; a ResLT head has three (head / medium / tail) whose sum is the
prediction (ResLT, Cui et al.). Early-exit heads put ELF's exit trunk (two 3x3 convolutions with
64 kernels, Appendix D) in front of either kind.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from trainables.models.resnet_cifar import conv3x3


class NormedLinear(nn.Module):
    """Cosine classifier of LDAM-DRW: normalize(x) @ normalize(W), no bias, logits in [-1, 1]."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.weight.data.uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)  # unit-norm columns, as the reference

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=0)


CLASSIFIERS = {"linear": nn.Linear, "cosine": NormedLinear}  # (in_features, num_classes) -> module


def make_classifier(kind: str, in_features: int, num_classes: int) -> nn.Module:
    if kind not in CLASSIFIERS:
        raise ValueError(f"classifier: unknown {kind!r}; known: {', '.join(CLASSIFIERS)}")
    return CLASSIFIERS[kind](in_features, num_classes)


def _pool(x: torch.Tensor) -> torch.Tensor:
    """Global average pool (B, C, H, W) -> (B, C). A mean over H and W: adaptive_avg_pool2d's result (the
    same numbers on CPU), but with a vmap batching rule (the fused workers stack K models)."""
    return x.mean(dim=(2, 3))


class PlainHead(nn.Module):
    """Global average pool and a classifier: (B, C_in, H, W) -> (B, 1, classes)."""

    branches = 1

    def __init__(self, in_channels: int, num_classes: int, classifier: str):
        super().__init__()
        self.fc = make_classifier(classifier, in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(_pool(x)).unsqueeze(1)


class ResLTBatchNormHead(nn.Module):
    """ResLT's CIFAR head as released: three BatchNorms on the same features, one shared classifier."""

    branches = 3

    def __init__(self, in_channels: int, num_classes: int, classifier: str):
        super().__init__()
        self.norms = nn.ModuleList(nn.BatchNorm2d(in_channels) for _ in range(3))
        self.fc = make_classifier(classifier, in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.fc(_pool(norm(x))) for norm in self.norms], dim=1)


class ResLTGroupedHead(nn.Module):
    """The seeds' ResLT head: a 3x3 convolution in 3 groups, one group per branch, one shared classifier.

    Each branch sees its own third of the channels (hence channels divisible by 3: the seeds
    changed the widths to 48 or 63); the branch features are pooled and classified separately.
    """

    branches = 3

    def __init__(self, in_channels: int, num_classes: int, classifier: str):
        super().__init__()
        if in_channels % 3:
            raise ValueError(f"a grouped ResLT head needs channels divisible by 3, got {in_channels}")
        self.conv = conv3x3(in_channels, in_channels, groups=3)
        self.bn = nn.BatchNorm2d(in_channels)
        self.fc = make_classifier(classifier, in_channels // 3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = F.relu(self.bn(self.conv(x))).chunk(3, dim=1)
        return torch.stack([self.fc(_pool(p)) for p in parts], dim=1)


HEADS = {"plain": PlainHead, "reslt_bn": ResLTBatchNormHead, "reslt_grouped": ResLTGroupedHead}


def build_head(name: str, in_channels: int, num_classes: int, classifier: str) -> nn.Module:
    if name not in HEADS:
        raise ValueError(f"head: unknown {name!r}; known: {', '.join(HEADS)}")
    return HEADS[name](in_channels, num_classes, classifier)


class ExitHead(nn.Module):
    """ELF early exit: two 3x3 convolutions (BN, ReLU) then a head (pool + classifier, or ResLT)."""

    def __init__(self, in_channels: int, exit_channels: int, stride: int, head: nn.Module):
        super().__init__()
        self.trunk = nn.Sequential(
            conv3x3(in_channels, exit_channels, stride), nn.BatchNorm2d(exit_channels), nn.ReLU(inplace=True),
            conv3x3(exit_channels, exit_channels, stride), nn.BatchNorm2d(exit_channels), nn.ReLU(inplace=True),
        )
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))
