"""Per-sample losses on logits (B, C): cross-entropy with label smoothing, LDAM, focal.

Each returns (B,) unweighted losses; class weights and batch reduction happen in criterion.py,
where the batch loss is the weighted mean sum(w_y * l) / sum(w_y), which for a single exit is
PyTorch's cross_entropy(weight=w) 'mean' reduction, as the references use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    return F.cross_entropy(logits, targets, reduction="none", label_smoothing=label_smoothing)


def ldam_margins(counts: list[int], max_m: float = 0.5) -> torch.Tensor:
    """m_j proportional to n_j^(-1/4), the rarest class's margin equal to max_m (Cao et al. 2019)."""
    m = torch.tensor(counts, dtype=torch.float64).pow(-0.25)
    return (m * (max_m / m.max())).float()


def ldam(logits: torch.Tensor, targets: torch.Tensor, margins: torch.Tensor, s: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """CE of s * (z - m_y * onehot(y)): the margin comes off the target logit only, then all scale by s."""
    shifted = logits - F.one_hot(targets, logits.shape[1]).to(logits.dtype) * margins[targets].unsqueeze(1)
    return F.cross_entropy(s * shifted, targets, reduction="none", label_smoothing=label_smoothing)


def focal(logits: torch.Tensor, targets: torch.Tensor, gamma: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """(1 - p_y)^gamma * CE, with p_y = exp(-CE) as LDAM-DRW's focal_loss (Lin et al. 2017)."""
    ce = F.cross_entropy(logits, targets, reduction="none", label_smoothing=label_smoothing)
    return (1.0 - torch.exp(-ce)).pow(gamma) * ce
