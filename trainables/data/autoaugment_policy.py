"""AutoAugment's CIFAR-10 policy as data, pinned in the project rather than read from torchvision.

The batched AutoAugment (autoaugment.py) needs the policy table, each operation's magnitude bins
and the pixel moves of the geometric operations. torchvision keeps these in private attributes of
`v2.AutoAugment` (`_policies`, `_AUGMENTATION_SPACE`, `_apply_image_or_video_transform`), which
may change between releases, and GPU machines run another torchvision (0.26) than this project
pins (0.29.1). So they live here, written from the AutoAugment paper's CIFAR-10 policy (Cubuk et
al. 2019, appendix) with torchvision's magnitude ranges and geometric conventions, using only
torchvision's public functional API. `python -m trainables.data.autoaugment_policy` (and
tests/trainables/test_autoaugment.py) compares every entry with the installed torchvision.
"""

from __future__ import annotations

import math
import sys

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

NUM_MAGNITUDE_BINS = 10  # what v2.AutoAugment uses

# 25 sub-policies of two (operation, probability, magnitude bin) steps each; bin None: no magnitude.
CIFAR10_POLICY: tuple[tuple[tuple[str, float, int | None], tuple[str, float, int | None]], ...] = (
    (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
    (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
    (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
    (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
    (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
    (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
    (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
    (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
    (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
    (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
    (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
    (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
    (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
    (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
    (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
    (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
    (("Color", 0.9, 9), ("Equalize", 0.6, None)),
    (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
    (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
    (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
    (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
    (("Equalize", 0.8, None), ("Invert", 0.1, None)),
    (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
)

# Operation -> (its largest magnitude, or None; whether a random sign applies). Magnitude bin b of
# n is linspace(0, largest, n)[b]; Posterize and Solarize count down instead (magnitudes below).
# Translations are in pixels: 150/331 of the image side, as torchvision scales the paper's 150 px
# on 331 px images.
MAGNITUDE_SPACE: dict[str, tuple[float | None, bool]] = {
    "ShearX": (0.3, True), "ShearY": (0.3, True), "TranslateX": (150.0 / 331.0, True),
    "TranslateY": (150.0 / 331.0, True), "Rotate": (30.0, True), "Brightness": (0.9, True), "Color": (0.9, True),
    "Contrast": (0.9, True), "Sharpness": (0.9, True), "Posterize": (None, False), "Solarize": (None, False),
    "AutoContrast": (None, False), "Equalize": (None, False), "Invert": (None, False),
}
GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")


def magnitudes(op: str, num_bins: int, height: int, width: int) -> torch.Tensor | None:
    """The magnitude of each bin of `op` (None for operations without one), as torchvision computes them."""
    if op == "Posterize":  # bits kept: 8 down to 4
        return (8 - (torch.arange(num_bins) / ((num_bins - 1) / 4))).round().int()
    if op == "Solarize":  # threshold as a fraction of the full scale: 1 down to 0
        return torch.linspace(1.0, 0.0, num_bins)
    largest, _ = MAGNITUDE_SPACE[op]
    if largest is None:
        return None
    side = {"TranslateX": width, "TranslateY": height}.get(op, 1)
    return torch.linspace(0.0, largest * side, num_bins)


def is_signed(op: str) -> bool:
    return MAGNITUDE_SPACE[op][1]


def geometric(image: torch.Tensor, op: str, magnitude: float) -> torch.Tensor:
    """A geometric operation, nearest interpolation and zero fill, with torchvision AutoAugment's
    conventions: shears about the top-left corner by atan(magnitude), whole-pixel translations."""
    nearest = InterpolationMode.NEAREST
    if op == "Rotate":
        return F.rotate(image, angle=magnitude, interpolation=nearest, fill=None)
    shear = math.degrees(math.atan(magnitude))
    if op in ("ShearX", "ShearY"):
        return F.affine(image, angle=0.0, translate=[0, 0], scale=1.0, interpolation=nearest, fill=None, center=[0, 0],
                        shear=[shear, 0.0] if op == "ShearX" else [0.0, shear])
    if op in ("TranslateX", "TranslateY"):
        move = [int(magnitude), 0] if op == "TranslateX" else [0, int(magnitude)]
        return F.affine(image, angle=0.0, translate=move, scale=1.0, interpolation=nearest, shear=[0.0, 0.0], fill=None)
    raise ValueError(f"{op!r} is not a geometric operation; known: {', '.join(GEOMETRIC)}")


def differences_from_torchvision(height: int = 32, width: int = 32) -> list[str]:
    """What the installed torchvision's v2.AutoAugment (CIFAR-10 policy) does differently from the table
    and operations above; empty when they agree. Reads torchvision's private attributes, on purpose."""
    from torchvision.transforms import v2

    reference = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)
    problems = []
    if [tuple(tuple(step) for step in sub) for sub in reference._policies] != list(CIFAR10_POLICY):
        problems.append("the CIFAR-10 policy table differs")
    for op, (fn, signed) in reference._AUGMENTATION_SPACE.items():
        if op not in MAGNITUDE_SPACE:
            continue
        ours, theirs = magnitudes(op, NUM_MAGNITUDE_BINS, height, width), fn(NUM_MAGNITUDE_BINS, height, width)
        if signed != is_signed(op) or (ours is None) != (theirs is None) or (ours is not None and not torch.equal(ours, theirs)):
            problems.append(f"{op}: magnitudes or sign differ")
    numbered = torch.arange(1, height * width + 1, dtype=torch.float32).view(1, height, width)
    for op in GEOMETRIC:
        for magnitude in magnitudes(op, NUM_MAGNITUDE_BINS, height, width).tolist():
            for m in (magnitude, -magnitude):
                theirs = reference._apply_image_or_video_transform(numbered, op, m, interpolation=reference.interpolation,
                                                                   fill=reference._fill)
                if not torch.equal(geometric(numbered, op, m), theirs):
                    problems.append(f"{op} at magnitude {m:g}: pixels move differently")
    return problems


if __name__ == "__main__":
    import torchvision

    found = differences_from_torchvision()
    print(f"torchvision {torchvision.__version__}: " + ("AutoAugment table and operations agree" if not found else "; ".join(found)))
    sys.exit(1 if found else 0)
