"""Named taps of a CIFAR ResNet: where early exits can attach, as positions along the block sequence.

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
