"""A generated, learnable, balanced image dataset (10 classes) for offline smoke runs (no download).

Each class has a smooth random colour pattern (a 4x4 grid of colours upsampled to 32x32). An image
is its class pattern blended with another class's pattern, shifted by a few pixels and overlaid
with noise, so a small CNN learns it within a few epochs but not perfectly in one. Deterministic:
the same arguments give the same pixels on every machine.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from trainables.data.sources import RawDataset

SYNTHETIC_CLASSES = 10


def _class_patterns(num_classes: int, rng: np.random.RandomState) -> torch.Tensor:
    coarse = torch.from_numpy(rng.uniform(0, 255, size=(num_classes, 3, 4, 4)).astype(np.float32))
    return F.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)  # (C, 3, 32, 32)


def _images(labels: np.ndarray, patterns: torch.Tensor, rng: np.random.RandomState) -> np.ndarray:
    n, num_classes = len(labels), patterns.shape[0]
    other = (labels + rng.randint(1, num_classes, size=n)) % num_classes  # never the own class
    mix = torch.from_numpy(rng.uniform(0.0, 0.45, size=(n, 1, 1, 1)).astype(np.float32))
    x = (1 - mix) * patterns[labels] + mix * patterns[other]
    shifts = rng.randint(-3, 4, size=(n, 2))
    x = torch.stack([torch.roll(img, shifts=(int(dy), int(dx)), dims=(1, 2)) for img, (dy, dx) in zip(x, shifts)])
    x = x + torch.from_numpy(rng.normal(0, 40, size=x.shape).astype(np.float32))
    return x.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def make_synthetic(train_per_class: int = 500, test_per_class: int = 250, seed: int = 1234,
                   num_classes: int = SYNTHETIC_CLASSES) -> RawDataset:
    """A balanced synthetic dataset in the same layout as CIFAR (labels sorted by class); tests write it
    in CIFAR-100's own format with num_classes=100 (there is no CIFAR-100 copy on the project's machines)."""
    rng = np.random.RandomState(seed)
    patterns = _class_patterns(num_classes, rng)
    train_y = np.repeat(np.arange(num_classes), train_per_class).astype(np.int64)
    test_y = np.repeat(np.arange(num_classes), test_per_class).astype(np.int64)
    return RawDataset(
        _images(train_y, patterns, rng), train_y, _images(test_y, patterns, rng), test_y,
        [f"pattern{i}" for i in range(num_classes)], f"synthetic:seed={seed}",
    )
