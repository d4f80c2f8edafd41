"""The ResLT loss (Cui et al., TPAMI), written per sample so that ELF can route and sum it.

Released form (cifarTrain_reslt_cifar10.py), with logits zH, zM, zT of the three branches:
    L_branch = [ CE(zH) over all samples + CE(zM) over medium+tail samples + CE(zT) over tail
                 samples ] / (number of (branch, sample) pairs included)
    L_fusion = mean CE(zH + zM + zT)
    loss     = alpha * L_branch + (1 - alpha) * L_fusion
ALPHA WEIGHTS THE BRANCH-INDEPENDENT LOSS. The released code calls the weight --beta, the seeds
call it alpha; both weight the same term. Samples are masked, not classes: every branch keeps a
softmax over all classes.

Per sample i: r_i = alpha * b_i / mean_pairs + (1 - alpha) * f_i, where b_i is the sample's sum of
included branch losses and mean_pairs the batch's average number of included branches per
sample; the batch mean of r_i is exactly the released loss.

The seeds' "simulated" ResLT loss for single-branch early exits multiplies a sample's loss by its
number of included branches: 1 for head classes, 2 for medium, 3 for tail ("the loss is
calculated and added up to two more times using that same output vector").
"""

from __future__ import annotations

from collections.abc import Callable

import torch

PerSample = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def branch_counts(targets: torch.Tensor, medium_from: int, tail_from: int) -> torch.Tensor:
    """(B,) number of ResLT branches that train on each sample: 1 head, 2 medium, 3 tail."""
    return 1 + (targets >= medium_from).long() + (targets >= tail_from).long()


def reslt_per_sample(
    branch_logits: torch.Tensor, targets: torch.Tensor, base: PerSample, alpha: float, medium_from: int, tail_from: int
) -> torch.Tensor:
    """(B,) per-sample ResLT loss for logits (B, 3, C) whose batch mean is the released loss."""
    z_head, z_medium, z_tail = branch_logits.unbind(1)
    in_medium = (targets >= medium_from).to(branch_logits.dtype)
    in_tail = (targets >= tail_from).to(branch_logits.dtype)
    branch = base(z_head, targets) + in_medium * base(z_medium, targets) + in_tail * base(z_tail, targets)
    mean_pairs = branch_counts(targets, medium_from, tail_from).float().mean()
    fusion = base(branch_logits.sum(1), targets)
    return alpha * branch / mean_pairs + (1.0 - alpha) * fusion


def simulated_reslt_per_sample(
    logits: torch.Tensor, targets: torch.Tensor, base: PerSample, medium_from: int, tail_from: int
) -> torch.Tensor:
    """(B,) the hybrid report's simulated ResLT loss on single-branch logits (B, C)."""
    return base(logits, targets) * branch_counts(targets, medium_from, tail_from).to(logits.dtype)
