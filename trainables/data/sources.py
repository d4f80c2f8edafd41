"""Find and decode balanced CIFAR-10/100: torchvision folders, the Parquet JPEG copy, or a download.

Where: `data_dir` when given, else `TUNER_DATA_DIR`, else a cache folder (`TUNER_CACHE_DIR`,
default ~/.cache/tuner). In each folder, for CIFAR-10 (CIFAR-100 alike):
  - `cifar-10-batches-py/`          torchvision's folder (from `torchvision.datasets.CIFAR10`)
  - `train.parquet`, `test.parquet` the Parquet JPEG format of ../shared/data/cifar10 (its SOURCE.md),
                                    with as many classes as the dataset asks
  - `cifar10/train.parquet`, ...    the same, one folder down
When none is found and downloads are allowed, torchvision downloads into the cache folder under a
file lock (one download per machine, even with many trials starting at once).

JPEG tables are decoded once and the pixels cached as `.npy` beside the cache folder, keyed by the
Parquet file's path, size and modification time, so later runs memory-map them.

A Parquet training table may be a subset copy (trainables/data/subset_copy.py, for GPU machines
that can carry only so much): it holds the images of some rows, each with its `position` in the
full table, and every row's label in its metadata. It loads as the full table with only those
rows' images present, so the long-tailed selection is exactly the full copy's; a run that would
need an image the copy lacks stops with a DataNotFoundError.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainables.cli import first_line

TORCHVISION_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
NUM_CLASSES = {"cifar10": 10, "cifar100": 100}


class DataNotFoundError(FileNotFoundError):
    """No copy of the dataset could be found or downloaded; the message says where we looked."""


class DataDamagedError(DataNotFoundError):
    """A copy was found but cannot be read (cut short, overwritten); the message names the file and the way out."""


@dataclass
class RawDataset:
    """A balanced dataset: uint8 images (N, 32, 32, 3) height-width-channel, int64 labels."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: list[str]
    source: str  # where it came from, for logs
    train_present: np.ndarray | None = None  # a subset copy: which training rows have their image (bool (N,))


def cache_root() -> Path:
    return Path(os.environ.get("TUNER_CACHE_DIR") or Path.home() / ".cache" / "tuner")


def candidate_dirs(data_dir: str | None) -> list[Path]:
    """Folders searched in order: the explicit folder, else TUNER_DATA_DIR; then the cache."""
    first = data_dir or os.environ.get("TUNER_DATA_DIR")
    dirs = [Path(first).expanduser()] if first else []
    return dirs + [cache_root() / "data"]


def _unreadable_table(path: Path, exc: Exception) -> DataDamagedError:
    return DataDamagedError(f"{path}: cannot read it as a Parquet table of JPEG images ({first_line(exc, 160)}); a copy cut short looks "
                            f"like this: copy it again, or point --data-dir / TUNER_DATA_DIR at a good copy")


def _parquet_classes(path: Path) -> list[str] | None:
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception as exc:  # noqa: BLE001 - whatever pyarrow makes of a damaged file
        raise _unreadable_table(path, exc) from None
    names = meta.get(b"class_names")
    return names.decode().split(",") if names else None


SUBSET_LABELS = b"full_labels"  # a subset copy's metadata: every row's label in the full table, comma-separated
SUBSET_OF = b"subset_of"  # and what it keeps, in words


def _decode_parquet(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(images NHWC uint8, labels int64, rows present or None) of one Parquet JPEG table, decoded once and cached."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:20]
    cached = cache_root() / "decoded" / f"{path.stem}-{key}.npz"
    if cached.exists():
        try:
            with np.load(cached) as z:
                return z["images"], z["labels"], (z["present"] if "present" in z.files else None)
        except Exception:  # noqa: BLE001 - a damaged cache is only a cache: decode the table again
            cached.unlink(missing_ok=True)

    import pyarrow.parquet as pq
    from PIL import Image  # torchvision's own JPEG decoding is deprecated since 0.29

    try:
        meta = pq.read_schema(path).metadata or {}
        subset = SUBSET_LABELS in meta
        table = pq.read_table(path, columns=["label", "jpeg"] + (["position"] if subset else []))
        labels = table.column("label").to_numpy().astype(np.int64)
        images = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in table.column("jpeg").to_pylist()])
    except Exception as exc:  # noqa: BLE001 - pyarrow, PIL and numpy each fail their own way on a damaged file
        raise _unreadable_table(path, exc) from None
    present = None
    if subset:  # spread the rows it holds over the full table's positions
        position = table.column("position").to_numpy()
        labels = np.array(meta[SUBSET_LABELS].decode().split(","), dtype=np.int64)
        full = np.zeros((len(labels), *images.shape[1:]), dtype=np.uint8)
        full[position] = images
        images, present = full, np.zeros(len(labels), dtype=bool)
        present[position] = True
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, images=images, labels=labels, **({"present": present} if present is not None else {}))
    os.replace(tmp, cached)  # atomic: concurrent trials never read a half-written cache
    return images, labels, present


def _from_parquet(folder: Path, dataset: str) -> RawDataset:
    train_path, test_path = folder / "train.parquet", folder / "test.parquet"
    tr_x, tr_y, present = _decode_parquet(train_path)
    te_x, te_y, _ = _decode_parquet(test_path)
    names = _parquet_classes(train_path) or [str(i) for i in range(NUM_CLASSES[dataset])]
    return RawDataset(tr_x, tr_y, te_x, te_y, names, f"parquet:{folder}" + (" (a subset copy)" if present is not None else ""),
                      present)


def _unpickle(path: Path) -> dict:
    import pickle

    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")  # the CIFAR authors' own format; trusted like torchvision trusts it
    except Exception as exc:  # noqa: BLE001 - a cut-off or overwritten pickle fails in many ways
        raise DataDamagedError(f"{path}: cannot read it as a CIFAR batch ({type(exc).__name__}); a copy cut short looks like "
                               f"this: copy the folder again, or point --data-dir / TUNER_DATA_DIR at a good copy") from None
    if not isinstance(batch, dict):
        raise DataDamagedError(f"{path}: not a CIFAR batch (a {type(batch).__name__}); copy the folder again")
    return batch


def _from_torchvision_folder(root: Path, dataset: str) -> RawDataset:
    """Read torchvision's CIFAR folder (the python pickle batches) directly.

    torchvision's dataset classes refuse files whose md5 differs from the original download; reading
    the batches here accepts any copy in that layout (re-packed, or written by tests).
    """
    folder = root / TORCHVISION_FOLDERS[dataset]
    if dataset == "cifar10":
        train_files, test_files, meta_file, label_key, names_key = (
            [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "batches.meta", b"labels", b"label_names")
    else:
        train_files, test_files, meta_file, label_key, names_key = (
            ["train"], ["test"], "meta", b"fine_labels", b"fine_label_names")

    def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        batches = [_unpickle(folder / f) for f in files]
        images = np.concatenate([b[b"data"] for b in batches]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = np.concatenate([np.asarray(b[label_key], dtype=np.int64) for b in batches])
        return np.ascontiguousarray(images, dtype=np.uint8), labels

    tr_x, tr_y = read(train_files)
    te_x, te_y = read(test_files)
    names = [n.decode() for n in _unpickle(folder / meta_file)[names_key]]
    return RawDataset(tr_x, tr_y, te_x, te_y, names, f"torchvision-folder:{folder}")


def _download(root: Path, dataset: str) -> RawDataset:
    from torchvision import datasets

    cls = datasets.CIFAR10 if dataset == "cifar10" else datasets.CIFAR100
    cls(root=str(root), train=True, download=True)
    cls(root=str(root), train=False, download=True)
    return _from_torchvision_folder(root, dataset)


def load_cifar(dataset: str, data_dir: str | None = None, download: bool = True) -> RawDataset:
    """Balanced CIFAR-10 or CIFAR-100 from the first place that has it; DataNotFoundError otherwise."""
    looked: list[str] = []
    explicit = data_dir or os.environ.get("TUNER_DATA_DIR")
    if explicit and not Path(explicit).expanduser().is_dir():
        origin = "data_dir" if data_dir else "TUNER_DATA_DIR"
        raise DataNotFoundError(f"{origin}: folder {explicit} does not exist; point it at a folder holding "
                                f"{TORCHVISION_FOLDERS[dataset]}/ or train.parquet and test.parquet")
    for folder in candidate_dirs(data_dir):
        if (folder / TORCHVISION_FOLDERS[dataset]).is_dir():
            return _from_torchvision_folder(folder, dataset)
        for sub in (folder, folder / dataset):
            if (sub / "train.parquet").is_file() and (sub / "test.parquet").is_file():
                names = _parquet_classes(sub / "train.parquet")
                if names is not None and len(names) != NUM_CLASSES[dataset]:
                    looked.append(f"{sub} (its train.parquet holds {len(names)} classes, not {NUM_CLASSES[dataset]})")
                    continue
                return _from_parquet(sub, dataset)
        looked.append(str(folder))

    download_note = "downloads are off (download=false)"
    if download:
        target = cache_root() / "data"
        try:
            from filelock import FileLock  # a torch dependency

            target.mkdir(parents=True, exist_ok=True)
            with FileLock(str(target / f".{dataset}.lock")):
                return _download(target, dataset)
        except Exception as exc:  # noqa: BLE001 - any network or disk failure ends in the same advice
            download_note = f"the download into {target} failed ({type(exc).__name__}: {str(exc)[:120]})"
    raise DataNotFoundError(
        f"{dataset} not found: looked in {', '.join(looked)} for {TORCHVISION_FOLDERS[dataset]}/ or "
        f"train.parquet + test.parquet, and {download_note}. Set TUNER_DATA_DIR (or --data-dir) to a folder "
        f"holding one of them (CIFAR-10 as Parquet: ../shared/data/cifar10), run once with internet access, "
        f"or use dataset=synthetic for an offline smoke run"
    )
