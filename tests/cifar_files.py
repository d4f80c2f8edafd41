"""CIFAR in torchvision's own folder format (the python pickle batches), written by tests: a copy of
the Parquet CIFAR-10, or generated 100-class data as CIFAR-100 (there is no CIFAR-100 copy here)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def _rows(images: np.ndarray) -> np.ndarray:
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # HWC images -> the pickle's CHW rows


def _dump(path: Path, batch: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(batch, f)


def write_cifar10_folder(root: Path, raw) -> Path:
    """`raw` (a trainables RawDataset) as root/cifar-10-batches-py: five training batches, one test batch."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, idx in enumerate(np.array_split(np.arange(len(raw.train_labels)), 5), 1):
        _dump(folder / f"data_batch_{i}", {b"data": _rows(raw.train_images[idx]), b"labels": raw.train_labels[idx].tolist()})
    _dump(folder / "test_batch", {b"data": _rows(raw.test_images), b"labels": raw.test_labels.tolist()})
    _dump(folder / "batches.meta", {b"label_names": [n.encode() for n in raw.class_names]})
    return folder


def write_cifar100_folder(root: Path, raw) -> Path:
    """`raw` (100 classes) as root/cifar-100-python: train, test and meta with fine labels, as CIFAR-100 ships."""
    assert len(raw.class_names) == 100
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    coarse = lambda labels: (np.asarray(labels) // 5).tolist()  # noqa: E731 - 20 superclasses, as the real file has
    _dump(folder / "train", {b"data": _rows(raw.train_images), b"fine_labels": raw.train_labels.tolist(),
                             b"coarse_labels": coarse(raw.train_labels)})
    _dump(folder / "test", {b"data": _rows(raw.test_images), b"fine_labels": raw.test_labels.tolist(),
                            b"coarse_labels": coarse(raw.test_labels)})
    _dump(folder / "meta", {b"fine_label_names": [n.encode() for n in raw.class_names],
                            b"coarse_label_names": [f"super{i}".encode() for i in range(20)]})
    return folder
