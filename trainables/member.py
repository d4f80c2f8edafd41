"""One trial's training run with its own random state, and what every strategy of
trainables/members.py shares: the SGD update on tensors and the end of an epoch.

A Member is one configuration's TrainingRun (trainables/loop.py) with its own random state: every
draw it makes (initial weights, data order, crops, flips, AutoAugment, Mixup) comes from its own
seed's stream, so it trains exactly what `python -m trainables.train` with its configuration trains
alone. The strategies (members.py; member_graphs.py for CUDA streams) build on these.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from trainables.config import TrainConfig
from trainables.data.datasets import LongTailedData
from trainables.loop import Batch, TrainingRun, rng_state, set_rng_state


class Member:
    """One trial's TrainingRun with its own random state (see the module docstring)."""

    def __init__(self, key: str, config: TrainConfig, data: LongTailedData | None = None, resume: dict | None = None):
        self.key = key
        self.device_step = None  # a strategy's per-member state kept across epochs (the streams strategy's CUDA graph)
        outside = rng_state()
        try:
            self.run = TrainingRun(config, data, resume)  # seeds, draws the weights, restores a checkpoint's state
            self.rng = rng_state()
        finally:
            set_rng_state(outside)

    @contextlib.contextmanager
    def own_random_state(self) -> Iterator[None]:
        outside = rng_state()
        set_rng_state(self.rng)
        try:
            yield
        finally:
            self.rng = rng_state()
            set_rng_state(outside)

    @property
    def done(self) -> bool:
        return self.run.done

    @property
    def config(self) -> TrainConfig:
        return self.run.config

    def run_epoch(self) -> dict:
        with self.own_random_state():
            return self.run.run_epoch()

    def checkpoint(self) -> dict:
        """What a solo run's checkpoint holds (its random state is this member's)."""
        with self.own_random_state():
            return self.run.state.checkpoint()

    def summary(self) -> dict:
        with self.own_random_state():
            return self.run.summary()

    def next_batch(self, batches: Iterator[Batch]) -> Batch:
        with self.own_random_state():
            return next(batches)


# ------------------------------------------------------------------------------------------------
# The SGD update of torch.optim.SGD (dampening 0), on tensors: one member's, or K members' stacked
# along dimension 0 with [K, 1, ...] hyperparameters. A learning rate held in a tensor also serves a
# captured CUDA graph, whose replays read it anew each epoch.


@torch.no_grad()
def sgd_update_(params: list[torch.Tensor], grads: list[torch.Tensor], buffers: list[torch.Tensor], lr: torch.Tensor,
                weight_decay: torch.Tensor, momentum: torch.Tensor, nesterov: torch.Tensor) -> None:
    """p -= lr * d, with g = grad + wd * p, buf = momentum * buf + g, d = g + momentum * buf (nesterov) or buf.

    A zero buffer gives torch's first step (buf = g). `nesterov` is 1.0 or 0.0."""
    for p, g, buf in zip(params, grads, buffers):
        d = g + weight_decay * p
        buf.mul_(momentum).add_(d)
        p.sub_(lr * (buf + nesterov * (d + momentum * buf - buf)))


def end_epochs(members: list[Member], diverged: dict, stats: dict, steps_before: dict, lrs: dict, epoch_start: float,
               train_seconds: float) -> dict:
    """Each member's epoch summary (evaluation included, in its own random state): the diverged ones end
    as diverged, the rest with their training statistics. Every strategy ends an epoch this way."""
    out = {}
    for m in members:
        with m.own_random_state():
            if m.key in diverged:
                out[m.key] = m.run.diverged_in_training(diverged[m.key], lrs[m.key], epoch_start)
            else:
                epoch_steps = m.run.step.steps - steps_before[m.key]
                out[m.key] = m.run.end_epoch(stats[m.key].result(epoch_steps), lrs[m.key], epoch_start, train_seconds)
    return out
