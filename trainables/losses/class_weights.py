"""Per-class loss weights and the deferred re-weighting (DRW) switch.

All kinds are normalised so that the weights sum to the number of classes, as LDAM-DRW does for
effective-number weights: 'inverse' 1/n, 'inverse_sqrt' 1/sqrt(n), 'effective_number'
(1 - beta) / (1 - beta^n) (Cui et al. 2019). With DRW the weights are all ones until
`drw_start_epoch` (0-based; LDAM-DRW: 160), then switch to the chosen kind.
"""

from __future__ import annotations

import torch

WEIGHTINGS = ("none", "inverse", "inverse_sqrt", "effective_number")


def class_weights(kind: str, counts: list[int], beta: float = 0.9999) -> torch.Tensor:
    """(C,) float32 weights summing to C."""
    n = torch.tensor(counts, dtype=torch.float64)
    if kind == "none":
        w = torch.ones_like(n)
    elif kind == "inverse":
        w = 1.0 / n
    elif kind == "inverse_sqrt":
        w = 1.0 / n.sqrt()
    elif kind == "effective_number":
        w = (1.0 - beta) / (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), n))
    else:
        raise ValueError(f"class_weighting: unknown {kind!r}; known: {', '.join(WEIGHTINGS)}")
    return (w / w.sum() * len(counts)).float()


def weights_for_epoch(kind: str, counts: list[int], beta: float, drw_start_epoch: int, epoch: int) -> torch.Tensor:
    """The weights in force during 0-based `epoch`: ones before the DRW switch, `kind` from it on."""
    return class_weights(kind if epoch >= drw_start_epoch else "none", counts, beta)
