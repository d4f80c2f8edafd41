"""ELF's training-time exits (Duggal et al. 2020): which exit each sample leaves at, and which exit
losses it pays.

Exit criterion at exit k (Eq. 1): argmax z_k == y and p_k[y] > t, with p_k = softmax(scale * z_k)
and z_k the exit's prediction (the sum of its branches). A sample leaves at the first exit that
meets it, or at the final exit. 'accumulative' (Eq. 2) charges the losses of every exit up to and
including that one; 'routed' (the seeds' Models 4, 7, 8, 12-16) only the loss at that exit.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def first_exit(predictions: list[torch.Tensor], targets: torch.Tensor, threshold: float, scale: float = 1.0) -> torch.Tensor:
    """(B,) index of the exit each sample leaves at during training; predictions are (B, C) logits."""
    num_exits = len(predictions)
    leave = torch.full_like(targets, num_exits - 1)
    # Walk from the last early exit back to the first so the earliest satisfied exit wins.
    for k in range(num_exits - 2, -1, -1):
        probs = torch.softmax(scale * predictions[k].float(), dim=1)
        conf_y = probs.gather(1, targets[:, None]).squeeze(1)
        meets = (probs.argmax(1) == targets) & (conf_y > threshold)
        leave = torch.where(meets, torch.full_like(leave, k), leave)
    return leave


def exit_loss_mask(leave: torch.Tensor, num_exits: int, aggregation: str) -> torch.Tensor:
    """(K, B) float mask of the exit losses each sample pays."""
    k = torch.arange(num_exits, device=leave.device)[:, None]
    if aggregation == "accumulative":
        return (k <= leave[None, :]).float()
    if aggregation == "routed":
        return (k == leave[None, :]).float()
    raise ValueError(f"exit_aggregation: expected 'accumulative' or 'routed', got {aggregation!r}")
