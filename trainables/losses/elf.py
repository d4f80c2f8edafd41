"""ELF's training-time exits (Duggal et al. 2020): which exit each sample leaves at, and which exit
losses it pays.

Exit criterion at exit k (Eq. 1): argmax z_k == y and p_k[y] > t, with p_k = softmax(scale * z_k)
and z_k the exit's prediction (the sum of its branches). A sample leaves at the first exit that
meets it, or at the final exit. 'accumulative' (Eq. 2) charges the losses of every exit up to and
including that one; 'routed' (the seeds' Models 4, 7, 8, 12-16) only the loss at that exit.

An early exit whose loss almost no sample pays gets almost no gradient and stays untrained: with a
training threshold above the confidence the loss lets a model reach (label smoothing 0.1 caps the
optimum near 0.91, Mixup lowers it further), a routed model may never send a sample to an early
exit. `untrained_exits` names such exits so that runs can say so.
"""

from __future__ import annotations

import math

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


# aggregation -> whether exit k (K, 1) is paid by a sample leaving at exit `leave` (1, B).
EXIT_AGGREGATIONS = {
    "accumulative": lambda k, leave: k <= leave,  # ELF Eq. 2: every exit up to the one it leaves at
    "routed": lambda k, leave: k == leave,  # the seeds' Models 4, 7, 8, 12-16: only that exit
}


def exit_loss_mask(leave: torch.Tensor, num_exits: int, aggregation: str) -> torch.Tensor:
    """(K, B) float mask of the exit losses each sample pays."""
    if aggregation not in EXIT_AGGREGATIONS:
        raise ValueError(f"exit_aggregation: unknown {aggregation!r}; known: {', '.join(EXIT_AGGREGATIONS)}")
    k = torch.arange(num_exits, device=leave.device)[:, None]
    return EXIT_AGGREGATIONS[aggregation](k, leave[None, :]).float()


UNTRAINED_EXIT_SHARE = 0.01  # an early exit whose loss fewer than 1% of an epoch's samples pay counts as untrained


def exit_loss_shares(leave_counts: torch.Tensor, aggregation: str) -> torch.Tensor:
    """(K,) share of the samples whose loss includes exit k, from the (K,) counts of samples leaving at each exit."""
    num_exits = leave_counts.shape[0]
    paid = exit_loss_mask(torch.arange(num_exits, device=leave_counts.device), num_exits, aggregation)  # (exit, leave)
    return paid.double() @ leave_counts.double() / leave_counts.sum().clamp(min=1)


def untrained_exits(shares: list[float]) -> list[int]:
    """Early exits (not the final one) whose loss fewer than UNTRAINED_EXIT_SHARE of the samples paid."""
    return [k for k, share in enumerate(shares[:-1]) if share < UNTRAINED_EXIT_SHARE]


def exit_confidence_cap(cosine: bool, branches: int, scale: float, num_classes: int) -> float:
    """The highest probability an early exit can give any class: 1 for linear logits; for cosine logits
    (each branch in [-1, 1], summed over `branches`) softmax(scale * z) stays at or below
    1 / (1 + (C - 1) exp(-2 * scale * branches)), 0.45 for 10 classes at scale 1."""
    if not cosine:
        return 1.0
    return 1.0 / (1.0 + (num_classes - 1) * math.exp(-2.0 * scale * branches))
