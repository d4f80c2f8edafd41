"""Per-class loss weights and the deferred re-weighting (DRW) switch.

All kinds are normalised so that the weights sum to the number of classes, as LDAM-DRW does for
effective-number weights: 'inverse' 1/n, 'inverse_sqrt' 1/sqrt(n), 'effective_number'
(1 - beta) / (1 - beta^n) (Cui et al. 2019). With DRW the weights are all ones until
`drw_start_epoch` (0-based; LDAM-DRW: 160), then switch to the chosen kind.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# kind -> raw weights from the per-class counts n (float64) and the effective-number beta.
CLASS_WEIGHTINGS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "none": lambda n, beta: torch.ones_like(n),
    "inverse": lambda n, beta: 1.0 / n,
    "inverse_sqrt": lambda n, beta: 1.0 / n.sqrt(),
    "effective_number": lambda n, beta: (1.0 - beta) / (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), n)),
}


def class_weights(kind: str, counts: list[int], beta: float = 0.9999) -> torch.Tensor:
    """(C,) float32 weights summing to C."""
    if kind not in CLASS_WEIGHTINGS:
        raise ValueError(f"class_weighting: unknown {kind!r}; known: {', '.join(CLASS_WEIGHTINGS)}")
    w = CLASS_WEIGHTINGS[kind](torch.tensor(counts, dtype=torch.float64), beta)
    return (w / w.sum() * len(counts)).float()


def weights_for_epoch(kind: str, counts: list[int], beta: float, drw_start_epoch: int, epoch: int) -> torch.Tensor:
    """The weights in force during 0-based `epoch`: ones before the DRW switch, `kind` from it on."""
    return class_weights(kind if epoch >= drw_start_epoch else "none", counts, beta)
