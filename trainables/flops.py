"""Inference FLOPs of each exit, counted by torch.utils.flop_counter (not by hand).

Leaving at exit k costs the backbone up to k's tap plus the heads of exits 0..k (a sample that
reaches exit k was tried at every earlier exit). The ratio divides by the backbone-only model:
the same backbone with a pooled linear classifier (ELF's CE baseline). FlopCounterMode counts
matrix multiplications and convolutions, which are all but a sliver of a ResNet's arithmetic.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from trainables.config import TrainConfig
from trainables.models.network import MultiExitNet, build_backbone_only


def _count(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


@torch.no_grad()
def exit_flops(model: MultiExitNet, image_shape: tuple[int, int, int] = (3, 32, 32)) -> list[int]:
    """FLOPs per image of leaving at each exit, cumulative, earliest first."""
    was_training = model.training
    model.eval()
    x = torch.zeros(1, *image_shape, device=next(model.parameters()).device)
    out = [_count(lambda k=k: model.forward_to_exit(x, k)) for k in range(model.num_exits)]
    model.train(was_training)
    return out


@torch.no_grad()
def backbone_flops(config: TrainConfig, num_classes: int) -> int:
    with torch.random.fork_rng(devices=[]):  # building it must not move the training run's random stream
        reference: nn.Module = build_backbone_only(config, num_classes).eval()
    return _count(lambda: reference(torch.zeros(1, 3, 32, 32)))
