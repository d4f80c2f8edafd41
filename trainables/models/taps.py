"""Named taps of a backbone: where early exits can attach, as positions along it.

CIFAR ResNets (resnet20 ... resnet56):

A CIFAR ResNet of depth 6n+2 has a stem and three stages of n blocks. Position p means "after p
blocks": 'stem' is 0, 'stageN' is N*n (the stage's output), 'stageN.blockM' is (N-1)*n + M + 1.
The last position, 3n, is the backbone's own output, where the final head sits, so it is not an
early-exit tap.
"""

from __future__ import annotations

import re

DEPTHS = {"resnet20": 20, "resnet32": 32, "resnet44": 44, "resnet56": 56}


def blocks_per_stage(backbone: str) -> int:
    return (DEPTHS[backbone] - 2) // 6


def tap_position(backbone: str, tap: str) -> int:
    """Blocks completed at `tap`; ValueError for a name that is not a tap of `backbone`."""
    n = blocks_per_stage(backbone)
    if tap == "stem":
        return 0
    m = re.fullmatch(r"stage([123])(?:\.block(\d+))?", tap)
    if not m:
        raise ValueError(f"unknown tap {tap!r}; taps are 'stem', 'stage1', 'stage2' or 'stageN.blockM'")
    stage = int(m.group(1))
    if m.group(2) is None:
        return stage * n
    block = int(m.group(2))
    if block >= n:
        raise ValueError(f"tap {tap!r}: {backbone} has blocks 0..{n - 1} per stage")
    return (stage - 1) * n + block + 1


def tap_problems(backbone: str, taps: tuple[str, ...]) -> list[str]:
    """Messages for taps that do not exist, repeat, run backwards, or sit at the final head."""
    if backbone not in DEPTHS:
        return []  # reported by the backbone field's own check
    out, positions = [], []
    for tap in taps:
        try:
            positions.append(tap_position(backbone, tap))
        except ValueError as exc:
            out.append(f"exit_taps: {exc}")
    if out:
        return out
    final = 3 * blocks_per_stage(backbone)
    if any(p >= final for p in positions):
        out.append("exit_taps: the backbone's output is the final exit already; drop 'stage3' "
                   "(use e.g. 'stage3.block1' for an exit inside stage 3)")
    if positions != sorted(set(positions)):
        out.append(f"exit_taps: taps must be distinct and ordered from input to output, got {list(taps)}")
    return out


# torchvision's classification backbones by name (trainables/models/torchvision_backbone.py builds them):
# their taps are the stem's output and the outputs of stages / dense blocks 1-3 (with their
# transitions), positions 0-3; the output of the last stage is the final head's, position 4.
TORCHVISION_BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "wide_resnet101_2",
                         "resnext50_32x4d", "resnext101_32x8d", "densenet121", "densenet161", "densenet169", "densenet201")
TORCHVISION_TAPS = ("stem", "stage1", "stage2", "stage3")


def torchvision_tap_position(name: str, tap: str) -> int:
    """The tap's index along a torchvision backbone (stem 0 ... stage3 3; the final features are 4)."""
    if tap not in TORCHVISION_TAPS:
        raise ValueError(f"unknown tap {tap!r} for {name}; its taps are {', '.join(TORCHVISION_TAPS)} (the final head "
                         "follows the last stage)")
    return TORCHVISION_TAPS.index(tap)


def backbone_tap_problems(backbone: str, taps: tuple[str, ...]) -> list[str]:
    """tap_problems for any backbone."""
    if backbone not in TORCHVISION_BACKBONES:
        return tap_problems(backbone, taps)
    out = [f"exit_taps: unknown tap {t!r} for {backbone}; its taps are {', '.join(TORCHVISION_TAPS)}"
           for t in taps if t not in TORCHVISION_TAPS]
    if not out and [TORCHVISION_TAPS.index(t) for t in taps] != sorted({TORCHVISION_TAPS.index(t) for t in taps}):
        out.append(f"exit_taps: taps must be distinct and ordered from input to output, got {list(taps)}")
    return out
