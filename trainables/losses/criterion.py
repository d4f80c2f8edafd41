"""The configured training loss: per-exit base loss, ResLT at multi-branch heads, ELF over exits,
class weights with DRW, and Mixup, reduced to one number per batch.

    criterion = Criterion(config, class_counts).to(device)
    criterion.set_epoch(epoch)                     # DRW switch
    loss, leave = criterion(outputs, y, y_b, lam)  # outputs: list of (B, branches, C)

Batch loss = sum_i sum_k mask[k, i] * w_i * l_k(i) / sum_i w_i, with w_i the class weight of
sample i (mixed like its label under Mixup). With one exit and no ResLT this is PyTorch's
weighted-mean cross-entropy, as LDAM-DRW computes it.
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
    def __init__(self, config: TrainConfig, class_counts: list[int]):
        super().__init__()
        if config.loss not in LOSSES:
            raise ValueError(f"loss: unknown {config.loss!r}; known: {', '.join(LOSSES)}")
        self.config = config
        self.class_counts = list(class_counts)
        self.register_buffer("margins", ldam_margins(self.class_counts, config.ldam_max_m))
        self.register_buffer("weights", torch.ones(len(self.class_counts)))
        self.medium_from, self.tail_from = config.reslt_groups()
        self.train_threshold = config.resolved_train_exit_threshold()

    def set_epoch(self, epoch: int) -> None:
        c = self.config
        self.weights.copy_(weights_for_epoch(c.class_weighting, self.class_counts, c.effective_number_beta, c.drw_start_epoch, epoch))

    def base(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return LOSSES[self.config.loss](logits, targets, self.config, self.margins)

    def exit_sample_loss(self, out: torch.Tensor, targets: torch.Tensor, is_final: bool) -> torch.Tensor:
        """(B,) loss of one exit's output (B, branches, C) for one set of labels."""
        c = self.config
        if out.shape[1] == 3:
            return reslt_per_sample(out, targets, self.base, c.reslt_alpha, self.medium_from, self.tail_from)
        if c.simulated_reslt_loss and not is_final:
            return simulated_reslt_per_sample(out[:, 0], targets, self.base, self.medium_from, self.tail_from)
        return self.base(out[:, 0], targets)

    def forward(
        self, outputs: list[torch.Tensor], targets: torch.Tensor, targets_b: torch.Tensor | None = None,
        lam: float | torch.Tensor = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch loss, (B,) exit each sample left at). Mixup: lam * loss(targets) + (1 - lam) * loss(targets_b)."""
        num_exits = len(outputs)
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
                self.exit_sample_loss(o, labels, is_final=(k == num_exits - 1)) for k, o in enumerate(outputs)
            ])  # (K, B)
            total = total + share * (mask * per_exit * w).sum()
            weight_sum = weight_sum + share * w.sum()
        return total / weight_sum, leave
