"""Long-tailed counts and selection, the validation carve, class groups, data sources, augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from cifar_files import write_cifar10_folder

from trainables.config import TrainConfig
from trainables.data.augment import TrainAugmentation, random_crop, random_flip
from trainables.data.datasets import load_long_tailed
from trainables.data.groups import class_groups, parse_class_groups
from trainables.data.long_tail import cap_proportionally, long_tailed_counts, select_long_tailed
from trainables.data.sources import DataNotFoundError, load_cifar
from trainables.data.splits import carve_validation
from trainables.data.synthetic import make_synthetic

PUBLISHED_C10 = {
    100: [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50],
    50: [5000, 3237, 2096, 1357, 878, 568, 368, 238, 154, 100],
    10: [5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500],
}


@pytest.mark.parametrize("ratio", [100, 50, 10])
def test_cifar10_long_tailed_counts_match_ldam_drw(ratio: int) -> None:
    assert long_tailed_counts(5000, 10, ratio) == PUBLISHED_C10[ratio]


@pytest.mark.parametrize("ratio, total", [(100, 10847), (50, 12608), (10, 19573)])
def test_cifar100_long_tailed_totals(ratio: int, total: int) -> None:
    assert sum(long_tailed_counts(500, 100, ratio)) == total


def test_step_profile_keeps_half_the_classes_whole() -> None:
    assert long_tailed_counts(5000, 10, 10, "step") == [5000] * 5 + [500] * 5


def test_selection_is_the_reference_algorithm_with_the_global_numpy_seed() -> None:
    labels = np.repeat(np.arange(10), 50)
    np.random.shuffle(labels)  # interleaved, as in the original dataset order
    counts = long_tailed_counts(50, 10, 10)
    # The reference, written out: np.random.seed(0), then shuffle each class's indices in turn.
    np.random.seed(0)
    expected = []
    for cls, n in enumerate(counts):
        idx = np.where(labels == cls)[0]
        np.random.shuffle(idx)
        expected.extend(idx[:n])
    assert select_long_tailed(labels, counts, seed=0).tolist() == expected
    assert select_long_tailed(labels, counts, seed=1).tolist() != expected


def test_proportional_cap_keeps_every_class() -> None:
    labels = np.repeat(np.arange(3), [100, 10, 1])
    kept = cap_proportionally(np.arange(111), labels, 20)
    assert np.bincount(labels[kept]).tolist() == [18, 1, 1]


def test_validation_split_is_balanced_disjoint_and_fixed() -> None:
    labels = np.repeat(np.arange(10), 1000)
    val, test = carve_validation(labels, 200, seed=0)
    assert np.bincount(labels[val]).tolist() == [200] * 10
    assert np.bincount(labels[test]).tolist() == [800] * 10
    assert not set(val) & set(test) and len(val) + len(test) == 10000
    again, _ = carve_validation(labels, 200, seed=0)
    assert val.tolist() == again.tolist()
    with pytest.raises(ValueError, match="val_per_class"):
        carve_validation(labels, 1000)


def test_class_groups_by_count_seeds_and_explicit() -> None:
    c100 = long_tailed_counts(500, 100, 100)
    g = class_groups("count", c100)
    assert all(c100[c] > 100 for c in g["many"]) and all(c100[c] < 20 for c in g["few"])
    assert sorted(g["many"] + g["medium"] + g["few"]) == list(range(100))
    assert class_groups("auto", PUBLISHED_C10[100]) == {"many": [0, 1, 2], "medium": [3, 4, 5], "few": [6, 7, 8, 9]}
    assert class_groups("0-4;5-7;8,9", PUBLISHED_C10[100])["few"] == [8, 9]
    assert class_groups("count", PUBLISHED_C10[100])["few"] == []  # why CIFAR-10 defaults to the seeds' groups
    for bad in ("0-2;3-5", "0-2;3-5;6-8", "a;b;c"):
        with pytest.raises(ValueError):
            parse_class_groups(bad, 10)


def test_synthetic_dataset_is_deterministic_and_learnable() -> None:
    a, b = make_synthetic(40, 20), make_synthetic(40, 20)
    assert np.array_equal(a.train_images, b.train_images)
    # A nearest-class-mean classifier on raw pixels beats chance by far: there is signal to learn.
    x, y = a.train_images.reshape(400, -1).astype(np.float32), a.train_labels
    means = np.stack([x[y == c].mean(0) for c in range(10)])
    tx = a.test_images.reshape(200, -1).astype(np.float32)
    pred = ((tx[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    assert (pred == a.test_labels).mean() > 0.5


def test_torchvision_folder_and_parquet_give_the_same_pixels(tmp_path: Path, cifar_dir: Path) -> None:
    parquet = load_cifar("cifar10", str(cifar_dir), download=False)
    assert parquet.train_images.shape == (50000, 32, 32, 3) and parquet.class_names[0] == "airplane"
    write_cifar10_folder(tmp_path, parquet)
    folder = load_cifar("cifar10", str(tmp_path), download=False)
    assert folder.source.startswith("torchvision-folder")
    assert np.array_equal(folder.train_images, parquet.train_images)
    assert np.array_equal(folder.test_labels, parquet.test_labels)


def test_parquet_is_decoded_once_and_cached(cifar_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TUNER_CACHE_DIR", str(tmp_path))
    load_cifar("cifar10", str(cifar_dir), download=False)
    cached = sorted((tmp_path / "decoded").glob("*.npz"))
    assert [p.name.split("-")[0] for p in cached] == ["test", "train"]
    stamp = [p.stat().st_mtime_ns for p in cached]
    load_cifar("cifar10", str(cifar_dir), download=False)
    assert [p.stat().st_mtime_ns for p in sorted((tmp_path / "decoded").glob("*.npz"))] == stamp


def test_missing_data_names_every_place_searched(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TUNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TUNER_DATA_DIR", raising=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError) as err:
        load_cifar("cifar10", str(tmp_path / "empty"), download=False)
    msg = str(err.value)
    assert str(tmp_path / "empty") in msg and str(tmp_path / "cache" / "data") in msg
    assert "TUNER_DATA_DIR" in msg and "synthetic" in msg
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_cifar("cifar10", str(tmp_path / "nowhere"), download=False)


def test_cifar10_parquet_is_not_taken_for_cifar100(cifar_dir: Path) -> None:
    with pytest.raises(DataNotFoundError, match="holds 10 classes"):
        load_cifar("cifar100", str(cifar_dir), download=False)


def test_real_long_tailed_cifar10_from_the_parquet_copy(cifar_dir: Path) -> None:
    data = load_long_tailed(TrainConfig(data_dir=str(cifar_dir), imbalance_ratio=100))
    assert data.class_counts == PUBLISHED_C10[100]
    assert data.train_images.shape == (12406, 3, 32, 32) and data.train_images.dtype == torch.uint8
    assert len(data.val_labels) == 2000 and len(data.test_labels) == 8000


def test_random_crop_takes_a_window_of_the_padded_image() -> None:
    torch.manual_seed(0)
    x = torch.randint(0, 255, (16, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(random_crop(x, 0), x)
    out = random_crop(x, 4)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(16):
        windows = [(dy, dx) for dy in range(9) for dx in range(9)
                   if torch.equal(padded[i, :, dy:dy + 32, dx:dx + 32], out[i])]
        assert windows, f"image {i} is not a crop of its padded original"


def test_flip_and_per_image_autoaugment() -> None:
    torch.manual_seed(0)
    x = torch.randint(0, 255, (64, 3, 32, 32), dtype=torch.uint8)
    flipped = random_flip(x)
    same = [torch.equal(flipped[i], x[i]) for i in range(64)]
    mirrored = [torch.equal(flipped[i], x[i].flip(2)) for i in range(64)]
    assert all(s or m for s, m in zip(same, mirrored)) and 10 < sum(mirrored) < 54
    # One image repeated: a per-image policy gives different results across the batch.
    one = x[:1].repeat(32, 1, 1, 1)
    out = TrainAugmentation(crop_padding=0, horizontal_flip=False, autoaugment=True)(one)
    assert out.dtype == torch.float32 and out.shape == one.shape
    assert len({tuple(o.flatten()[:64].tolist()) for o in out}) > 3


def test_mixup_mixes_pairs_with_one_beta_draw_and_no_host_read_back() -> None:
    from torch.profiler import ProfilerActivity, profile

    from trainables.data.augment import mixup

    torch.manual_seed(0)
    x = torch.rand(64, 3, 32, 32)
    y = torch.arange(64) % 10
    mixed, y_a, y_b, lam = mixup(x, y, alpha=1.0)
    assert lam.dim() == 0 and 0 <= float(lam) <= 1 and torch.equal(y_a, y)
    perm = [next(j for j in range(64) if torch.allclose(mixed[i], lam * x[i] + (1 - lam) * x[j])) for i in range(64)]
    assert sorted(perm) == list(range(64)) and all(y_b[i] == y[perm[i]] for i in range(64))
    lams = torch.stack([mixup(x, y, alpha=0.2)[3] for _ in range(400)])
    assert abs(float(lams.mean()) - 0.5) < 0.05 and float(((lams < 0.1) | (lams > 0.9)).float().mean()) > 0.5  # Beta(0.2, 0.2)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        mixup(x, y, alpha=1.0)
    assert not {e.name for e in prof.events()} & {"aten::item", "aten::_local_scalar_dense", "aten::is_nonzero"}


def test_a_subset_copy_gives_the_same_long_tailed_sets_and_refuses_what_it_lacks(cifar_dir: Path, tmp_path: Path) -> None:
    """The copy a GPU lease carries (scripts/gpu_lease.sh --prepare): 20,431 of 50,000 training images."""
    from trainables.data.subset_copy import write_subset

    assert write_subset(cifar_dir, tmp_path / "subset", [100, 10]) == 20431  # the 10x set holds the 100x and 50x ones
    for ratio in (100, 50, 10):
        full = load_long_tailed(TrainConfig(data_dir=str(cifar_dir), imbalance_ratio=ratio))
        subset = load_long_tailed(TrainConfig(data_dir=str(tmp_path / "subset"), imbalance_ratio=ratio))
        assert torch.equal(full.train_images, subset.train_images) and torch.equal(full.train_labels, subset.train_labels)
        assert torch.equal(full.test_images, subset.test_images) and "subset copy" in subset.source
    with pytest.raises(DataNotFoundError, match="holds only part of the training images.*ratio 5"):
        load_long_tailed(TrainConfig(data_dir=str(tmp_path / "subset"), imbalance_ratio=5))
