"""Learning-rate schedule, per epoch as in LDAM-DRW and ResLT: linear warm-up, then step or cosine.

Warm-up (0-based epoch e < W): f + (1 - f) * (e + 1) / W with f = warmup_start_factor (LDAM-DRW:
f = 0, so lr * (e + 1) / 5). Step: lr * factor ** (number of decay epochs <= e); LDAM-DRW's
x0.01 at 160 and 180 gives 0.1 -> 1e-3 -> 1e-5, ResLT's x0.1 gives 0.1 -> 0.01 -> 1e-3. Cosine:
half a cosine from lr to 0 over the epochs after warm-up.
"""

from __future__ import annotations

import math

from trainables.config import TrainConfig


def lr_at_epoch(config: TrainConfig, epoch: int) -> float:
    c = config
    if epoch < c.warmup_epochs:
        f = c.warmup_start_factor
        return c.lr * (f + (1.0 - f) * (epoch + 1) / c.warmup_epochs)
    if c.lr_schedule == "cosine":
        span = max(1, c.epochs - c.warmup_epochs)
        return c.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - c.warmup_epochs) / span))
    passed = sum(1 for d in c.lr_decay_epochs if epoch >= d)
    return c.lr * c.lr_decay_factor**passed
