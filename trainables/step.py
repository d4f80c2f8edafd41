"""One training step on a batch already on the device, with the speed options of the config.

Forward (optionally channels_last, bf16 autocast, torch.compile), the loss in float32, backward,
gradient clipping and the SGD update. The math is that of the plain eager float32 step; the
equivalence tests check it (tests/trainables/test_equivalence.py).

Divergence checks read the loss on the host, which waits for the GPU. On CPU that costs nothing
and happens every step, before the update; on CUDA the step keeps a device-side flag and the
loop looks at it every `divergence_check_every` steps (16 by default), so a diverging run stops
within those steps instead of costing a host sync on every one.

Data-parallel (trainables/distributed.py), the forward goes through DistributedDataParallel, which
averages the gradients during backward, and the processes agree on divergence: no process may stop
before a backward the others wait in, so the flag (not the loss before the update) is read, after
backward and before the update, and is the maximum over the processes.
"""

from __future__ import annotations

import math

import torch

from trainables.config import TrainConfig
from trainables.distributed import SINGLE, Shard
from trainables.losses.criterion import Criterion, dominant_labels


class Divergence(Exception):
    """A batch loss or gradient norm was non-finite or above the configured bound."""

    def __init__(self, reason: str, step: int):
        super().__init__(reason)
        self.reason, self.step = reason, step


class TrainStep:
    def __init__(self, model: torch.nn.Module, criterion: Criterion, optimizer: torch.optim.Optimizer,
                 config: TrainConfig, device: torch.device, shard: Shard = SINGLE,
                 forward: torch.nn.Module | None = None):
        """`forward`: the module the step calls (the model, or DistributedDataParallel around it)."""
        self.model, self.criterion, self.optimizer, self.device = model, criterion, optimizer, device
        self.forward = forward if forward is not None else model
        self.shard = shard
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.clip = config.grad_clip_norm if config.grad_clip_norm is not None else math.inf
        self.bound = config.divergence_loss_bound
        self.channels_last = config.channels_last
        self.bf16 = config.bf16
        self.check_every = config.divergence_check_every or (16 if device.type == "cuda" else 1)
        self.check_before_update = self.check_every == 1 and not shard.parallel
        self.forward_loss = self.loss_of
        if config.compile != "off":
            self.forward_loss = torch.compile(self.loss_of, mode=None if config.compile == "default" else config.compile)
        self.bad = torch.zeros((), dtype=torch.bool, device=device)
        self.worst = torch.zeros((), device=device)
        self.steps = 0

    def loss_of(self, x: torch.Tensor, y: torch.Tensor, y_b: torch.Tensor | None, lam):
        """(loss, exit per sample, final-exit prediction) of a batch, eager (forward_loss may be its compiled form)."""
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            outputs = self.forward(x)
        outputs = [o.float() for o in outputs]  # losses and exit decisions in float32
        loss, leave = self.criterion(outputs, y, y_b, lam)
        return loss, leave, outputs[-1].detach().sum(1).argmax(1)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, y_b: torch.Tensor | None = None, lam=1.0):
        """(loss, exit per sample, final-exit prediction, dominant label, grad norm); raises Divergence."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss, leave, predicted = self.forward_loss(x, y, y_b, lam)
        if self.check_before_update:
            value = float(loss.detach())
            if not math.isfinite(value) or value > self.bound:
                raise Divergence(f"batch loss {value:.4g} (bound {self.bound:g})", self.steps)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip, foreach=True)
        bad_now = ~torch.isfinite(loss.detach()) | (loss.detach() > self.bound) | ~torch.isfinite(grad_norm)
        self.worst = torch.where(bad_now & ~self.bad, loss.detach().float(), self.worst)
        self.bad = self.bad | bad_now
        self.steps += 1
        if self.steps % self.check_every == 0:
            self.raise_if_diverged()
        self.optimizer.step()
        return loss.detach(), leave, predicted, dominant_labels(y, y_b, lam), grad_norm.detach()

    def raise_if_diverged(self) -> None:
        """Look at the device-side flag (a host sync; data-parallel, the flag of any process)."""
        if self.shard.parallel:
            flag = self.bad.to(torch.int32)
            worst = torch.where(self.bad, self.worst, torch.full_like(self.worst, -math.inf))
            self.shard.max_(flag, worst)
            self.bad, self.worst = flag.bool(), worst
        if bool(self.bad):
            worst = float(self.worst)
            loss_bad = not math.isfinite(worst) or worst > self.bound
            what = f"batch loss {worst:.4g} (bound {self.bound:g})" if loss_bad else "non-finite gradient norm"
            raise Divergence(what, self.steps - 1)
