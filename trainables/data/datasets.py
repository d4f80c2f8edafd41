"""Build the long-tailed training set and the validation/test splits a run trains and reports on.

    data = load_long_tailed(config)
    data.train_images  (N, 3, 32, 32) uint8, classes sorted head first
    data.class_counts  training images per class, as the losses and groups see them
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from trainables.config import TrainConfig
from trainables.data.groups import class_groups
from trainables.data.long_tail import cap_proportionally, long_tailed_counts, select_long_tailed
from trainables.data.sources import DataNotFoundError, RawDataset, load_cifar
from trainables.data.splits import balanced_cap, carve_validation
from trainables.data.synthetic import make_synthetic


@dataclass
class LongTailedData:
    """Tensors on the CPU; the training loop moves them to its device once."""

    train_images: torch.Tensor  # (N, 3, 32, 32) uint8
    train_labels: torch.Tensor  # (N,) int64
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_counts: list[int]
    class_names: list[str]
    groups: dict[str, list[int]]
    source: str

    @property
    def num_classes(self) -> int:
        return len(self.class_counts)

    @property
    def train_size(self) -> int:
        return self.train_labels.shape[0]

    def labels(self, split: str) -> torch.Tensor:
        """The labels of 'train', 'val' or 'test'."""
        return getattr(self, f"{split}_labels")

    def train_batches(self, config: TrainConfig, augment,
                      parts: list[torch.Tensor] | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The epoch's batches: a fresh shuffle, each batch augmented (crop, flip, AutoAugment, normalised by
        `augment`: trainables/data/augment.py) where the images are, from the current random state.
        `parts`: the indices of each batch instead (a data-parallel process's parts, trainables/distributed.py)."""
        if parts is None:
            order = torch.randperm(self.train_size, device=self.train_images.device)
            parts = [order[start: start + config.batch_size] for start in range(0, self.train_size, config.batch_size)]
        for idx in parts:
            idx = idx.to(self.train_images.device)
            yield augment(self.train_images[idx]), self.train_labels[idx]

    def eval_images(self, split: str, batch_size: int, device: torch.device) -> torch.Tensor:
        """The split's uint8 images, held whole: evaluate() batches and normalises them."""
        return getattr(self, f"{split}_images")

    def describe(self) -> dict:
        return {
            "source": self.source,
            "train_images": len(self.train_labels),
            "val_images": len(self.val_labels),
            "test_images": len(self.test_labels),
            "class_counts": self.class_counts,
            "groups": self.groups,
        }


def _nchw(images: np.ndarray, idx: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images[idx])).permute(0, 3, 1, 2).contiguous()


def raw_dataset(config: TrainConfig) -> RawDataset:
    if config.dataset == "synthetic":
        return make_synthetic(config.synthetic_train_per_class, config.synthetic_test_per_class)
    return load_cifar(config.dataset, config.data_dir, config.download)


def default_val_per_class(num_classes: int) -> int:
    return 200 if num_classes <= 10 else 50


def load_long_tailed(config: TrainConfig, raw: RawDataset | None = None) -> LongTailedData:
    """The long-tailed training set and balanced validation/test splits `config` describes."""
    raw = raw if raw is not None else raw_dataset(config)
    num_classes = len(raw.class_names)
    img_max = len(raw.train_labels) / num_classes
    counts = long_tailed_counts(img_max, num_classes, config.imbalance_ratio, config.imbalance_profile)
    train_idx = select_long_tailed(raw.train_labels, counts, config.imbalance_seed)
    if config.max_train_images is not None:
        train_idx = cap_proportionally(train_idx, raw.train_labels, config.max_train_images)
    if raw.train_present is not None and not raw.train_present[train_idx].all():
        raise DataNotFoundError(
            f"{raw.source} holds only part of the training images, and this run (imbalance ratio "
            f"{config.imbalance_ratio:g}, imbalance seed {config.imbalance_seed}) needs "
            f"{int((~raw.train_present[train_idx]).sum())} it lacks; give the full copy (--data-dir or TUNER_DATA_DIR) "
            "or make the subset with python -m trainables.data.subset_copy for this ratio and seed")

    val_per_class = config.val_per_class or default_val_per_class(num_classes)
    if config.dataset == "synthetic":
        val_per_class = min(val_per_class, config.synthetic_test_per_class // 2)
    val_idx, test_idx = carve_validation(raw.test_labels, val_per_class, config.split_seed)
    if config.max_eval_images is not None:
        val_idx = balanced_cap(val_idx, raw.test_labels, config.max_eval_images)
        test_idx = balanced_cap(test_idx, raw.test_labels, config.max_eval_images)

    train_labels = raw.train_labels[train_idx]
    final_counts = np.bincount(train_labels, minlength=num_classes).tolist()
    return LongTailedData(
        train_images=_nchw(raw.train_images, train_idx),
        train_labels=torch.from_numpy(train_labels),
        val_images=_nchw(raw.test_images, val_idx),
        val_labels=torch.from_numpy(raw.test_labels[val_idx]),
        test_images=_nchw(raw.test_images, test_idx),
        test_labels=torch.from_numpy(raw.test_labels[test_idx]),
        class_counts=final_counts,
        class_names=raw.class_names,
        groups=class_groups(config.class_groups, final_counts),
        source=raw.source,
    )


# The last few datasets this process built, by their data fields: a trial process that Ray Tune
# reuses for the next trial (tuner.launch: reuse_actors) gets the same images without building
# them again. Nothing in training writes into these tensors (batches are gathered copies).
_RECENT: dict[tuple, LongTailedData] = {}
_RECENT_KEEP = 2


def data_key(config: TrainConfig) -> tuple:
    """What names a run's data: its data fields' values (two configs with one key train on the same images)."""
    from trainables.config import DATA_FIELDS

    return tuple(repr(getattr(config, name)) for name in DATA_FIELDS)


def cached_long_tailed(config: TrainConfig) -> LongTailedData:
    """load_long_tailed(config), shared with earlier calls in this process that asked for the same data."""
    key = data_key(config)
    if key not in _RECENT:
        while len(_RECENT) >= _RECENT_KEEP:
            _RECENT.pop(next(iter(_RECENT)))  # the oldest
        _RECENT[key] = load_long_tailed(config)
    return _RECENT[key]
