"""Many/medium/few class groups, by training count or as an explicit list.

'count' follows the ELF paper (after Kang et al.): more than 100 training images is many, 20 to
100 medium, fewer than 20 few. On CIFAR-10-LT that leaves 'few' empty, so the hybrid report used
fixed CIFAR-10 groups (classes 0-2, 3-5, 6-9): 'seeds'. An explicit form is '0-2;3-5;6-9'.
"""

from __future__ import annotations

GROUP_NAMES = ("many", "medium", "few")
SEEDS_CIFAR10_GROUPS = "0-2;3-5;6-9"


def _parse_explicit(spec: str, num_classes: int) -> dict[str, list[int]]:
    parts = spec.split(";")
    if len(parts) != 3:
        raise ValueError(f"expected three ';'-separated groups like '0-2;3-5;6-9', got {spec!r}")
    groups: dict[str, list[int]] = {}
    for name, part in zip(GROUP_NAMES, parts):
        members: list[int] = []
        for piece in filter(None, (p.strip() for p in part.split(","))):
            lo, _, hi = piece.partition("-")
            try:
                a, b = int(lo), int(hi or lo)
            except ValueError:
                raise ValueError(f"cannot read {piece!r} in {spec!r} as a class index or range") from None
            members.extend(range(a, b + 1))
        groups[name] = members
    flat = sorted(c for m in groups.values() for c in m)
    if flat != list(range(num_classes)):
        raise ValueError(f"{spec!r} must name every class 0..{num_classes - 1} exactly once")
    return groups


def parse_class_groups(spec: str, num_classes: int) -> None:
    """Raise ValueError when `spec` is not a valid class_groups value for `num_classes` classes."""
    if spec in ("auto", "count"):
        return
    if spec == "seeds":
        if num_classes != 10:
            raise ValueError("'seeds' groups are defined for 10 classes only; use 'count' or an explicit list")
        return
    _parse_explicit(spec, num_classes)


def class_groups(spec: str, train_counts: list[int]) -> dict[str, list[int]]:
    """{'many': [...], 'medium': [...], 'few': [...]} class indices; a group may be empty."""
    num_classes = len(train_counts)
    if spec == "auto":
        spec = "seeds" if num_classes == 10 else "count"
    if spec == "count":
        return {
            "many": [c for c, n in enumerate(train_counts) if n > 100],
            "medium": [c for c, n in enumerate(train_counts) if 20 <= n <= 100],
            "few": [c for c, n in enumerate(train_counts) if n < 20],
        }
    parse_class_groups(spec, num_classes)
    return _parse_explicit(SEEDS_CIFAR10_GROUPS if spec == "seeds" else spec, num_classes)
