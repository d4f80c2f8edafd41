"""Tiny long-tailed image sets written as real image files in each published format (issue 31): the
ImageNet-LT and Places-LT split files, iNaturalist'18's COCO-style JSON, and an ImageFolder tree. Each
has the real sets' quirks among its training images: a grayscale JPEG, a CMYK JPEG and a PNG file
named .JPEG (ImageNet has all three). The images are learnable (each class its own colour pattern,
with noise) and of several sizes, as real photographs are."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

FORMATS = ("imagenet_lt", "places_lt", "inat2018", "folder")
QUIRKS = ("grayscale", "cmyk", "png_named_jpeg")


def long_tail_counts(classes: int, most: int, ratio: float) -> list[int]:
    return [max(2, int(most * ratio ** (-c / (classes - 1)))) for c in range(classes)]


def _pattern_image(pattern: np.ndarray, rng: np.random.RandomState) -> Image.Image:
    h, w = rng.randint(40, 72), rng.randint(40, 72)
    big = np.asarray(Image.fromarray(pattern).resize((w, h), Image.BILINEAR), dtype=np.float32)
    noisy = np.clip(big + rng.normal(0, 25, big.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy)


def _save(image: Image.Image, path: Path, quirk: str | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if quirk == "grayscale":
        image.convert("L").save(path, format="JPEG", quality=90)
    elif quirk == "cmyk":
        image.convert("CMYK").save(path, format="JPEG", quality=90)
    elif quirk == "png_named_jpeg":
        image.save(path, format="PNG")
    else:
        image.save(path, format="JPEG", quality=90)


def write_image_set(root: Path, fmt: str, classes: int = 6, most: int = 16, ratio: float = 8.0, val_per_class: int = 2,
                    test_per_class: int = 3, seed: int = 0) -> dict:
    """Write a tiny long-tailed set in format `fmt` under `root`; what was written (counts, the quirky files)."""
    rng = np.random.RandomState(seed)
    patterns = [rng.uniform(0, 255, size=(4, 4, 3)).astype(np.uint8) for _ in range(classes)]
    counts = long_tail_counts(classes, most, ratio)
    # (split, class) -> relative paths; iNaturalist's val2018 is its test set (three per class, as published)
    per_split = {"train": counts, "val": [val_per_class] * classes, "test": [test_per_class] * classes}
    if fmt == "inat2018":
        per_split = {"train": counts, "val2018": [3] * classes}
    listed: dict[str, list[tuple[str, int]]] = {split: [] for split in per_split}
    quirky, q = [], 0
    for split, numbers in per_split.items():
        for c, n in enumerate(numbers):
            for i in range(n):
                rel = _relative(fmt, split, c, i)
                quirk = QUIRKS[q] if split == "train" and q < len(QUIRKS) and i == 0 and c % 2 == 1 else None
                q += quirk is not None
                if quirk:
                    quirky.append((quirk, rel))
                _save(_pattern_image(patterns[c], rng), root / rel.lstrip("/"), quirk)
                listed[split].append((rel, c))
    _write_lists(root, fmt, listed, classes)
    return {"counts": counts, "quirky": quirky, "classes": classes}


def _relative(fmt: str, split: str, c: int, i: int) -> str:
    if fmt == "imagenet_lt":  # as ImageNet's own tree: split/wnid/wnid_N.JPEG
        wnid = f"n{c:08d}"
        return f"{'train' if split == 'train' else 'val'}/{wnid}/{wnid}_{split}{i}.JPEG"
    if fmt == "places_lt":  # Places-LT's paths start with '/': /letter/category/NNNNNNNN.jpg
        return f"/{chr(97 + c % 26)}/category{c}/{split}{i:06d}.jpg"
    if fmt == "inat2018":
        return f"train_val2018/Plantae/{1000 + c}/{split}{i}.jpg"
    return f"{split}/class{c}/{i}.jpg"


def _write_lists(root: Path, fmt: str, listed: dict[str, list[tuple[str, int]]], classes: int) -> None:
    if fmt in ("imagenet_lt", "places_lt"):
        prefix = "ImageNet_LT" if fmt == "imagenet_lt" else "Places_LT"
        for split, rows in listed.items():
            (root / f"{prefix}_{split}.txt").write_text("".join(f"{rel} {c}\n" for rel, c in rows))
    elif fmt == "inat2018":
        categories = [{"id": 1000 + c, "name": f"species {c}"} for c in range(classes)]
        for split, name in (("train", "train2018.json"), ("val2018", "val2018.json")):
            images = [{"id": i + (0 if split == "train" else 100000), "file_name": rel} for i, (rel, _) in enumerate(listed[split])]
            annotations = [{"id": im["id"], "image_id": im["id"], "category_id": 1000 + c}
                           for im, (_, c) in zip(images, listed[split])]
            (root / name).write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
