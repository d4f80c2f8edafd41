"""Inference FLOPs of each exit, counted by torch.utils.flop_counter (not by hand).

Leaving at exit k costs the backbone up to k's tap plus the heads of exits 0..k (a sample that
reaches exit k was tried at every earlier exit). On CIFAR every model's ratio divides by one
reference: the standard ResNet-32 of LDAM-DRW (widths 16/32/64, pooled linear classifier), whatever
the model's own backbone and widths, so that the hybrids' narrowed backbones (16/32/48, 15/30/63),
ELF and the baselines compare like with like on one accuracy/FLOPs front. On an image-file set the
reference is the plain backbone (ResNet-50, DenseNet-169, ...) at the set's image size, as the ELF
paper's Tables 1 and 3 give their FLOPs against the plain model. FlopCounterMode counts
matrix multiplications and convolutions, which are all but a sliver of a ResNet's arithmetic.
"""

from __future__ import annotations

import functools

import torch

from trainables.config import TrainConfig
from trainables.models.network import MultiExitNet, build_plain, build_reference_resnet32


def _count(fn) -> int:
    # Imported here, not at the top: torch.utils.flop_counter imports triton (0.5 CPU-s), and every sweep's
    # driver imports this module with the trial function but counts nothing.
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


# Counts by architecture (the module tree as repr prints it: every layer, its channels and
# kernels), so that a process training one trial after another counts each architecture once.
_COUNTED: dict[tuple, list[int]] = {}


def exit_flops(model: MultiExitNet, image_shape: tuple[int, int, int] = (3, 32, 32)) -> list[int]:
    """FLOPs per image of leaving at each exit, cumulative, earliest first."""
    key = (type(model).__name__, repr(model), model.num_exits, image_shape)
    if key not in _COUNTED:
        _COUNTED[key] = _exit_flops(model, image_shape)
    return list(_COUNTED[key])


@torch.no_grad()
def _exit_flops(model: MultiExitNet, image_shape: tuple[int, int, int]) -> list[int]:
    was_training = model.training
    model.eval()
    x = torch.zeros(1, *image_shape, device=next(model.parameters()).device)
    out = [_count(lambda k=k: model.forward_to_exit(x, k)) for k in range(model.num_exits)]
    model.train(was_training)
    return out


def image_shape(config: TrainConfig) -> tuple[int, int, int]:
    """What one image is when the model sees it: (3, 32, 32) for CIFAR, the crop for an image-file set."""
    return (3, config.image_size, config.image_size) if config.streamed else (3, 32, 32)


def reference_for(config: TrainConfig, num_classes: int) -> int:
    """The reference `config`'s flops_ratio divides by: LDAM-DRW's ResNet-32 on CIFAR; on an image-file set the
    plain backbone (no exits, a pooled linear classifier) at the set's image size."""
    if config.streamed:
        return reference_flops(num_classes, config.backbone, config.image_size)
    return reference_flops(num_classes)


@functools.cache  # one count per reference and process
@torch.no_grad()
def reference_flops(num_classes: int, backbone: str | None = None, image_size: int = 32) -> int:
    """FLOPs per image of LDAM-DRW's ResNet-32 (backbone None), or of the plain `backbone` at `image_size`."""
    with torch.random.fork_rng(devices=[]):  # building it must not move the training run's random stream
        reference = (build_reference_resnet32(num_classes) if backbone is None else build_plain(backbone, num_classes)).eval()
    return _count(lambda: reference(torch.zeros(1, 3, image_size, image_size)))
