"""Long-tailed subsets of a balanced training set, cut exactly as LDAM-DRW's imbalance_cifar.py.

Counts: with img_max = len(train) / C, class c keeps int(img_max * (1/ratio) ** (c / (C - 1)))
images ('exp'), or img_max for the first half of the classes and int(img_max / ratio) for the
second ('step'). Selection: one numpy RandomState(seed); for each class in order 0..C-1, shuffle
that class's indices (in dataset order) and keep the first n_c. Class 0 is the head.
"""

from __future__ import annotations

import numpy as np


def long_tailed_counts(img_max: float, num_classes: int, ratio: float, profile: str = "exp") -> list[int]:
    """Images kept per class; CIFAR-10, ratio 100: 5000 2997 1796 1077 645 387 232 139 83 50."""
    imb_factor = 1.0 / ratio
    if profile == "exp":
        return [int(img_max * imb_factor ** (c / (num_classes - 1.0))) for c in range(num_classes)]
    if profile == "step":
        half = num_classes // 2
        return [int(img_max)] * half + [int(img_max * imb_factor)] * (num_classes - half)
    raise ValueError(f"imbalance_profile: expected 'exp' or 'step', got {profile!r}")


def select_long_tailed(labels: np.ndarray, counts: list[int], seed: int = 0) -> np.ndarray:
    """Indices of the long-tailed subset, grouped by class (class 0 first), as the reference picks them."""
    rng = np.random.RandomState(seed)  # the reference seeds numpy's global RNG once, then shuffles per class
    chosen = []
    for cls, n in enumerate(counts):
        idx = np.where(labels == cls)[0]
        rng.shuffle(idx)
        chosen.append(idx[:n])
    return np.concatenate(chosen)


def cap_proportionally(indices: np.ndarray, labels: np.ndarray, max_images: int) -> np.ndarray:
    """At most `max_images` of `indices`, each class shrunk by the same factor (at least one image each)."""
    if len(indices) <= max_images:
        return indices
    classes = np.unique(labels[indices])
    scale = max_images / len(indices)
    kept = []
    for cls in classes:
        of_class = indices[labels[indices] == cls]
        kept.append(of_class[: max(1, int(len(of_class) * scale))])
    return np.concatenate(kept)
