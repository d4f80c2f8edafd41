"""The configured training loss: per-exit base loss, ResLT at multi-branch heads, ELF over exits,
class weights with DRW, and Mixup, reduced to one number per batch.

    criterion = Criterion(config, class_counts, model.exit_branches).to(device)
    criterion.set_epoch(epoch)                     # DRW switch
    loss, leave = criterion(outputs, y, y_b, lam)  # outputs: list of (B, branches, C)

Batch loss = sum_i sum_k mask[k, i] * w_i * l_k(i) / sum_i w_i, with w_i the class weight of
sample i (mixed like its label under Mixup). With one exit and no ResLT this is PyTorch's
weighted-mean cross-entropy, as LDAM-DRW computes it. Data-parallel, the denominator is the global
batch's (`loss_scale`, trainables/distributed.py), so that the averaged gradients are the global batch's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from trainables.config import TrainConfig
from trainables.losses.class_weights import weights_for_epoch
from trainables.losses.elf import exit_loss_mask, first_exit
from trainables.losses.per_sample import cross_entropy, focal, ldam, ldam_margins
from trainables.losses.reslt import reslt_per_sample, simulated_reslt_per_sample

# loss -> per-sample loss (B,) of logits (B, C), from the config and the LDAM margins (a buffer).
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, TrainConfig, torch.Tensor], torch.Tensor]] = {
    "ce": lambda logits, y, c, margins: cross_entropy(logits, y, c.label_smoothing),
    "ldam": lambda logits, y, c, margins: ldam(logits, y, margins, c.ldam_s, c.label_smoothing),
    "focal": lambda logits, y, c, margins: focal(logits, y, c.focal_gamma, c.label_smoothing),
}


def dominant_labels(targets: torch.Tensor, targets_b: torch.Tensor | None, lam: float | torch.Tensor) -> torch.Tensor:
    """The label with the larger Mixup share (the exit criterion and train accuracy use it)."""
    if targets_b is None:
        return targets
    return torch.where(torch.as_tensor(lam, device=targets.device) >= 0.5, targets, targets_b)


class Criterion(nn.Module):
    def __init__(self, config: TrainConfig, class_counts: list[int], exit_branches: tuple[int, ...]):
        """`exit_branches`: each exit's head's branches (MultiExitNet.exit_branches); a multi-branch head
        is a ResLT head, trained with the ResLT loss."""
        super().__init__()
        if config.loss not in LOSSES:
            raise ValueError(f"loss: unknown {config.loss!r}; known: {', '.join(LOSSES)}")
        self.config = config
        self.class_counts = list(class_counts)
        self.register_buffer("margins", ldam_margins(self.class_counts, config.ldam_max_m))
        self.register_buffer("weights", torch.ones(len(self.class_counts)))
        self.medium_from, self.tail_from = config.reslt_groups()
        self.train_threshold = config.resolved_train_exit_threshold()
        self.reslt_exits = tuple(b > 1 for b in exit_branches)
        # weight sum -> the batch loss's denominator; data-parallel runs set Shard.loss_scale
        self.loss_scale: Callable[[torch.Tensor], torch.Tensor] = lambda weight_sum: weight_sum

    def set_epoch(self, epoch: int) -> None:
        c = self.config
        self.weights.copy_(weights_for_epoch(c.class_weighting, self.class_counts, c.effective_number_beta, c.drw_start_epoch, epoch))

    def base(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return LOSSES[self.config.loss](logits, targets, self.config, self.margins)

    def exit_sample_loss(self, out: torch.Tensor, targets: torch.Tensor, exit_index: int) -> torch.Tensor:
        """(B,) loss of exit `exit_index`'s output (B, branches, C) for one set of labels."""
        c = self.config
        if self.reslt_exits[exit_index]:
            return reslt_per_sample(out, targets, self.base, c.reslt_alpha, self.medium_from, self.tail_from)
        if c.simulated_reslt_loss and exit_index < len(self.reslt_exits) - 1:
            return simulated_reslt_per_sample(out[:, 0], targets, self.base, self.medium_from, self.tail_from)
        return self.base(out[:, 0], targets)

    def forward(
        self, outputs: list[torch.Tensor], targets: torch.Tensor, targets_b: torch.Tensor | None = None,
        lam: float | torch.Tensor = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch loss, (B,) exit each sample left at). Mixup: lam * loss(targets) + (1 - lam) * loss(targets_b)."""
        num_exits = len(outputs)
        if num_exits != len(self.reslt_exits):
            raise ValueError(f"{num_exits} exit outputs for a criterion of {len(self.reslt_exits)} exits")
        dominant = dominant_labels(targets, targets_b, lam)
        if num_exits > 1:
            predictions = [o.sum(1) for o in outputs]
            leave = first_exit(predictions, dominant, self.train_threshold, self.config.exit_confidence_scale)
        else:
            leave = torch.zeros_like(targets)
        mask = exit_loss_mask(leave, num_exits, self.config.exit_aggregation)  # (K, B)

        label_sets = [(targets, 1.0)] if targets_b is None else [(targets, lam), (targets_b, 1.0 - lam)]
        total = outputs[0].new_zeros(())
        weight_sum = outputs[0].new_zeros(())
        for labels, share in label_sets:
            w = self.weights[labels]
            per_exit = torch.stack([
                self.exit_sample_loss(o, labels, k) for k, o in enumerate(outputs)
            ])  # (K, B)
            total = total + share * (mask * per_exit * w).sum()
            weight_sum = weight_sum + share * w.sum()
        return total / self.loss_scale(weight_sum), leave
