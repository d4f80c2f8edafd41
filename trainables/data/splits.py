"""The balanced validation split carved from the test set, so that choosing hyperparameters never
looks at the reported test images.

For each class in order, the class's test indices are shuffled with one RandomState(seed) and the
first `per_class` go to validation (val_acc), the rest to test (test_acc).
"""

from __future__ import annotations

import numpy as np


def carve_validation(labels: np.ndarray, per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(validation indices, test indices), both grouped by class."""
    rng = np.random.RandomState(seed)
    val, test = [], []
    for cls in np.unique(labels):
        idx = np.where(labels == cls)[0]
        if per_class >= len(idx):
            raise ValueError(
                f"val_per_class: {per_class} leaves no test images for class {cls} ({len(idx)} test images); "
                f"choose fewer than {len(idx)}"
            )
        rng.shuffle(idx)
        val.append(idx[:per_class])
        test.append(idx[per_class:])
    return np.concatenate(val), np.concatenate(test)


def balanced_cap(indices: np.ndarray, labels: np.ndarray, max_images: int) -> np.ndarray:
    """At most `max_images` of `indices`, the same number from every class (evaluation subsets)."""
    classes = np.unique(labels[indices])
    per_class = max(1, max_images // len(classes))
    return np.concatenate([indices[labels[indices] == c][:per_class] for c in classes])
