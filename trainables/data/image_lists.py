"""Long-tailed image sets as their published split files list them: ImageNet-LT, Places-LT,
iNaturalist'18, and a user's own ImageFolder tree. Each split is a list of image files and labels;
the images themselves stream from disk (trainables/data/streamed.py).

    lists = read_image_lists("imagenet_lt", "/data/imagenet")   # ImageListError names the file and line
    lists.train.files[0], lists.train.labels[0], lists.class_names, lists.train_counts

Formats (../shared/docs/REFERENCES.md, section 2):
- imagenet_lt, places_lt: `ImageNet_LT_{train,val,test}.txt` / `Places_LT_{train,val,test}.txt` in
  data_dir (as zhmiao/OpenLongTailRecognition-OLTR ships them), one `relative/path label` per line;
  a path may start with '/' (Places-LT's do) and is still under data_dir. 1,000 and 365 classes.
- inat2018: `train2018.json` and `val2018.json` (COCO-style: `images` with `id` and `file_name`,
  `annotations` with `image_id` and `category_id`, `categories`), file names relative to data_dir.
  As in the papers, val2018 is the test set. The validation split the search sees is carved from it,
  as CIFAR's is from its test set: INAT_VAL_PER_CLASS image of each class (val2018 holds three per
  class), chosen with split_seed; the other two are the test images. This is this project's reading:
  the papers tune on val2018 itself, which would let the search see the reported images.
- folder: `data_dir/{train,val,test}/CLASS/IMAGE`, class names sorted; without `val/` the validation
  split is carved from `test/` (val_per_class images per class, split_seed), as for CIFAR.

These sets are long-tailed already: nothing cuts them again. Classes are renumbered head first (most
training images first, ties by the published label), as the CIFAR-LT sets are built, so that ResLT's
class shares and anything else that reads class indices sees the same order; `class_names` keeps each
class's published name (its label or category id where the files give no name).

Bad input is one ImageListError naming the file, and the line where there is one: a split or
annotation file missing, a malformed line, a label out of range, a listed image that does not exist
(every listed file is checked: a stat each), a class with no training images.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainables.data.sources import DataNotFoundError

STREAMED_DATASETS = ("imagenet_lt", "places_lt", "inat2018", "folder")
SPLIT_FILES = {"imagenet_lt": "ImageNet_LT_{split}.txt", "places_lt": "Places_LT_{split}.txt"}
# As published (REFERENCES.md section 2); a set's own count is read from its training list (class_count),
# so that a smaller set in the same format (the tests' tiny ones, a subset) reads as what it is.
CLASS_COUNTS = {"imagenet_lt": 1000, "places_lt": 365, "inat2018": 8142}
INAT_FILES = {"train": "train2018.json", "test": "val2018.json"}
INAT_VAL_PER_CLASS = 1
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")  # folder: what counts as an image (case-insensitive)


class ImageListError(DataNotFoundError):
    """A split or annotation file, or an image it lists, that cannot be used; the message names the file (and line)."""


@dataclass
class ImageSplit:
    files: list[Path]  # absolute paths
    labels: np.ndarray  # int64, head-first class indices

    def __len__(self) -> int:
        return len(self.files)


@dataclass
class ImageLists:
    train: ImageSplit
    val: ImageSplit
    test: ImageSplit
    class_names: list[str]
    source: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def train_counts(self) -> list[int]:
        return np.bincount(self.train.labels, minlength=self.num_classes).tolist()


def default_data_dir(dataset: str) -> Path | None:
    """$TUNER_DATA_DIR/<dataset>, where data.data_dir is not given."""
    root = os.environ.get("TUNER_DATA_DIR")
    return Path(root).expanduser() / dataset if root else None


def class_count(dataset: str, data_dir: str | Path | None) -> int:
    """How many classes the set's training list has (its largest label + 1, its categories, its class folders),
    read once per file version; the published count when the list cannot be read (reading the set says why)."""
    root = Path(data_dir).expanduser() if data_dir else default_data_dir(dataset)
    if root is None:
        return CLASS_COUNTS.get(dataset, 0)
    source = _train_source(root, dataset)
    try:
        stat = source.stat()
    except OSError:
        return CLASS_COUNTS.get(dataset, 0)
    return _count_classes(dataset, str(source), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _count_classes(dataset: str, source: str, mtime_ns: int, size: int) -> int:
    path = Path(source)
    try:
        if dataset == "folder":
            return sum(p.is_dir() for p in path.iterdir())
        if dataset == "inat2018":
            doc = json.loads(path.read_text())
            return len(doc.get("categories") or {int(a["category_id"]) for a in doc["annotations"]})
        labels = [int(line.split()[1]) for line in path.read_text().splitlines() if len(line.split()) == 2]
        return max(labels) + 1 if labels else CLASS_COUNTS[dataset]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return CLASS_COUNTS.get(dataset, 0)


def read_image_lists(dataset: str, data_dir: str | Path | None, val_per_class: int = 20, split_seed: int = 0) -> ImageLists:
    """The three splits of `dataset` under `data_dir` (None: $TUNER_DATA_DIR/<dataset>); ImageListError when unusable."""
    root = Path(data_dir).expanduser() if data_dir else default_data_dir(dataset)
    if root is None:
        raise ImageListError(f"{dataset}: no data_dir given and TUNER_DATA_DIR is not set; set data.data_dir to the folder "
                             f"holding the dataset's split files and images")
    if not root.is_dir():
        raise ImageListError(f"{dataset}: data_dir {root} does not exist; point data.data_dir (or TUNER_DATA_DIR/{dataset}) "
                             "at the folder holding the split files and images")
    if dataset in SPLIT_FILES:
        count = class_count(dataset, root)  # the training list's largest label + 1 (1,000 / 365 as published)
        splits = {s: _read_split_file(root, root / SPLIT_FILES[dataset].format(split=s), count) for s in ("train", "val", "test")}
        names = [str(c) for c in range(count)]
    elif dataset == "inat2018":
        train, names, ids = _read_coco(root, root / INAT_FILES["train"])
        test, _, _ = _read_coco(root, root / INAT_FILES["test"], ids)
        val, test = _carve(test, INAT_VAL_PER_CLASS, split_seed)
        splits = {"train": train, "val": val, "test": test}
    elif dataset == "folder":
        splits, names = _read_folder(root, val_per_class, split_seed)
    else:
        raise ImageListError(f"dataset: {dataset!r} is not an image-file set; those are {', '.join(STREAMED_DATASETS)}")
    counts = np.bincount(splits["train"][1], minlength=len(names))
    empty = [names[c] for c in np.flatnonzero(counts == 0)]
    if empty:
        where = _train_source(root, dataset)
        raise ImageListError(f"{where}: class {empty[0]} has no training images" + (f" ({len(empty)} classes have none)"
                             if len(empty) > 1 else "") + "; every class needs at least one")
    order = np.lexsort((np.arange(len(names)), -counts))  # head first, ties by the published label
    new_index = np.empty(len(names), dtype=np.int64)
    new_index[order] = np.arange(len(names))
    split = {s: ImageSplit(files, new_index[labels]) for s, (files, labels) in splits.items()}
    return ImageLists(split["train"], split["val"], split["test"], [names[c] for c in order], f"{dataset}:{root}")


def _train_source(root: Path, dataset: str) -> Path:
    if dataset in SPLIT_FILES:
        return root / SPLIT_FILES[dataset].format(split="train")
    return root / INAT_FILES["train"] if dataset == "inat2018" else root / "train"


def _image(root: Path, listed: str, where: str) -> Path:
    path = root / listed.lstrip("/")  # Places-LT's paths start with '/': still under the data folder (as OLTR joins them)
    if not path.is_file():
        raise ImageListError(f"{where}: lists {listed}, but {path} does not exist; is data_dir the folder the paths are relative to?")
    return path


def _read_split_file(root: Path, path: Path, num_classes: int) -> tuple[list[Path], np.ndarray]:
    if not path.is_file():
        raise ImageListError(f"{path}: split file missing; data_dir must hold the published {path.name} (and its siblings)")
    files, labels = [], []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split()
            where = f"{path}, line {number}"
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ImageListError(f"{where}: expected 'relative/path label', got {line.strip()[:120]!r}")
            label = int(parts[1])
            if not 0 <= label < num_classes:
                raise ImageListError(f"{where}: label {label} is out of range 0..{num_classes - 1}")
            files.append(_image(root, parts[0], where))
            labels.append(label)
    if not files:
        raise ImageListError(f"{path}: lists no images")
    return files, np.asarray(labels, dtype=np.int64)


def _read_coco(root: Path, path: Path, categories: dict[int, int] | None = None) -> tuple[tuple[list[Path], np.ndarray], list[str], dict]:
    """((files, labels), class names, category id -> class index) of a COCO-style annotation file; the test
    file takes the training file's categories."""
    if not path.is_file():
        raise ImageListError(f"{path}: annotation file missing; data_dir must hold train2018.json and val2018.json")
    try:
        doc = json.loads(path.read_text())
        images = {int(im["id"]): str(im["file_name"]) for im in doc["images"]}
        annotations = [(int(a["image_id"]), int(a["category_id"])) for a in doc["annotations"]]
        listed = sorted({int(c["id"]): str(c.get("name", c["id"])) for c in doc.get("categories", [])}.items())
    except (ValueError, KeyError, TypeError) as exc:
        raise ImageListError(f"{path}: not a COCO-style annotation file ({type(exc).__name__}: {str(exc)[:100]}); it needs "
                             "'images' (id, file_name) and 'annotations' (image_id, category_id)") from None
    names = [name for _, name in listed]
    if categories is None:
        ids = [c for c, _ in listed] or sorted({c for _, c in annotations})
        names = names or [str(c) for c in ids]
        categories = {c: i for i, c in enumerate(ids)}
    files, labels = [], []
    for number, (image_id, category) in enumerate(annotations):
        where = f"{path}, annotation {number}"
        if category not in categories:
            raise ImageListError(f"{where}: category_id {category} is not among the {len(categories)} training categories")
        if image_id not in images:
            raise ImageListError(f"{where}: image_id {image_id} is not in its 'images'")
        files.append(_image(root, images[image_id], where))
        labels.append(categories[category])
    if not files:
        raise ImageListError(f"{path}: annotates no images")
    return (files, np.asarray(labels, dtype=np.int64)), names, categories


def _carve(split: tuple[list[Path], np.ndarray], per_class: int, seed: int) -> tuple[tuple, tuple]:
    """(validation, rest): `per_class` images of every class, drawn with `seed` (each class keeps at least one for the rest)."""
    from trainables.data.splits import carve_validation

    files, labels = split
    try:
        val_idx, rest_idx = carve_validation(labels, per_class, seed)
    except ValueError as exc:
        raise ImageListError(f"{files[0].parent.parent}: {exc}") from None
    pick = lambda idx: ([files[i] for i in idx], labels[idx])  # noqa: E731
    return pick(val_idx), pick(rest_idx)


def _read_folder(root: Path, val_per_class: int, seed: int) -> tuple[dict, list[str]]:
    train_dir = root / "train"
    if not train_dir.is_dir() or not (root / "test").is_dir():
        raise ImageListError(f"{root}: a folder dataset needs train/ and test/ (and optionally val/), each with one "
                             "folder of images per class")
    names = sorted(p.name for p in train_dir.iterdir() if p.is_dir())
    if not names:
        raise ImageListError(f"{train_dir}: holds no class folders")
    index = {n: i for i, n in enumerate(names)}

    def read(split_dir: Path) -> tuple[list[Path], np.ndarray]:
        files, labels = [], []
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            if class_dir.name not in index:
                raise ImageListError(f"{class_dir}: class {class_dir.name!r} is not among train/'s classes")
            for f in sorted(class_dir.iterdir()):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    files.append(f)
                    labels.append(index[class_dir.name])
        return files, np.asarray(labels, dtype=np.int64)

    splits = {"train": read(train_dir), "test": read(root / "test")}
    if (root / "val").is_dir():
        splits["val"] = read(root / "val")
    else:
        splits["val"], splits["test"] = _carve(splits["test"], val_per_class, seed)
    return splits, names
