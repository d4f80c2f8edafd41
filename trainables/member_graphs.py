"""CUDA only: the `streams` strategy of trainables/members.py. Each member's training step (forward,
loss, backward, clipping, the SGD update, the divergence flags) is captured once as a CUDA graph and
replayed on the member's own CUDA stream, so that the GPU overlaps K small members instead of
running their kernels one after another.

The math is the member's solo step (trainables/step.py) in float32: its batches are drawn as a solo
run draws them (under its own random state, outside the graph) and copied into the graph's static
inputs; the update is torch.optim.SGD's (member.sgd_update_) with the learning rate in a device
tensor, so one graph serves every epoch of the schedule. The few warm-up steps that must precede a
capture run on the first batch and are then undone (weights, BatchNorm statistics, momentum,
divergence flags put back), so they change nothing. The epoch's last, smaller batch runs eagerly.
"""

from __future__ import annotations

import math
import time

import torch

from trainables.loop import Batch, EpochStats, epoch_batches
from trainables.losses.criterion import dominant_labels
from trainables.member import Member, end_epochs, sgd_update_
from trainables.step import Divergence

WARMUP_STEPS = 3  # before a capture, as PyTorch's whole-network capture recipe does (cuDNN choices, allocations)


class GraphedStep:
    """One member's training step as a CUDA graph on its own stream (its static inputs shaped as `batch`)."""

    def __init__(self, member: Member, batch: Batch):
        run = member.run
        self.run, self.stream = run, torch.cuda.Stream(device=run.device)
        self.params = [p for p in run.model.parameters() if p.requires_grad]
        cfg = run.config
        dev = run.device
        self.lr = torch.zeros((), device=dev)
        self.hyper = {k: torch.tensor(v, device=dev) for k, v in (
            ("weight_decay", cfg.weight_decay), ("momentum", cfg.momentum), ("nesterov", 1.0 if cfg.nesterov else 0.0),
            ("max_norm", cfg.grad_clip_norm if cfg.grad_clip_norm is not None else math.inf),
            ("bound", cfg.divergence_loss_bound))}
        self.buffers = []
        for p in self.params:  # the optimizer's own momentum buffers, so that checkpoints hold them
            state = run.optimizer.state[p]
            if state.get("momentum_buffer") is None:
                state["momentum_buffer"] = torch.zeros_like(p)
            self.buffers.append(state["momentum_buffer"])
        self.full_batch = batch[0].shape[0]
        self.static = [t.clone() if isinstance(t, torch.Tensor) else t for t in batch]
        if not isinstance(self.static[3], torch.Tensor):
            self.static[3] = torch.tensor(float(self.static[3]), device=dev)
        saved = self._snapshot()
        self.stream.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(self.stream):
            for _ in range(WARMUP_STEPS):
                run.optimizer.zero_grad(set_to_none=True)
                self._step(*self.static)
        torch.cuda.current_stream(dev).wait_stream(self.stream)
        self._restore(saved)
        run.optimizer.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, stream=self.stream):
            self.outputs = self._step(*self.static)

    def _snapshot(self) -> list[torch.Tensor]:
        step = self.run.step
        return [t.detach().clone() for t in (*self.params, *self.run.model.buffers(), *self.buffers, step.bad, step.worst)]

    @torch.no_grad()
    def _restore(self, saved: list[torch.Tensor]) -> None:
        step = self.run.step
        for target, value in zip((*self.params, *self.run.model.buffers(), *self.buffers, step.bad, step.worst), saved):
            target.copy_(value)

    def _step(self, x: torch.Tensor, y: torch.Tensor, y_b: torch.Tensor | None, lam: torch.Tensor):
        """The solo step without its host reads: (loss, exit per sample, prediction, dominant label, grad norm)."""
        run, h = self.run, self.hyper
        if run.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss, leave, predicted = run.step.loss_of(x, y, y_b, lam)  # eager: a compiled step does not go inside a graph
        loss.backward()
        grads = [p.grad for p in self.params]
        grad_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        coef = (h["max_norm"] / (grad_norm + 1e-6)).clamp(max=1.0)
        torch._foreach_mul_(grads, coef)
        value = loss.detach()
        bad_now = ~torch.isfinite(value) | (value > h["bound"]) | ~torch.isfinite(grad_norm)
        step = run.step
        step.worst.copy_(torch.where(bad_now & ~step.bad, value.float(), step.worst))
        step.bad.copy_(step.bad | bad_now)
        sgd_update_(self.params, grads, self.buffers, self.lr, h["weight_decay"], h["momentum"], h["nesterov"])
        return value, leave, predicted, dominant_labels(y, y_b, lam), grad_norm.detach()

    def __call__(self, batch: Batch):
        """One step on `batch`, queued on this member's stream: the graph for a full batch, eager for the last."""
        x, y, y_b, lam = batch
        if x.shape[0] != self.full_batch:
            for p in self.params:
                if p.grad is not None:
                    p.grad.zero_()
            return self._step(x, y, y_b, lam if isinstance(lam, torch.Tensor) else torch.tensor(float(lam), device=x.device))
        for static, value in zip(self.static, batch):
            if isinstance(static, torch.Tensor) and value is not None:
                static.copy_(value, non_blocking=True)
        self.graph.replay()
        return self.outputs


def streams_epoch(members: list[Member]) -> dict[str, dict]:
    """One epoch of each member, their steps interleaved, each member's on its own stream."""
    epoch_start = time.time()
    lrs = {m.key: m.run.start_epoch() for m in members}
    batches = {m.key: epoch_batches(m.config, m.run.data, m.run.augment) for m in members}
    stats = {m.key: EpochStats(m.run.model.num_exits, m.config.exit_aggregation, m.run.device) for m in members}
    steps_before = {m.key: m.run.step.steps for m in members}
    diverged: dict[str, Divergence] = {}
    for m in members:
        m.run.model.train()
        if m.device_step is not None:
            with torch.cuda.stream(m.device_step.stream):
                m.device_step.lr.fill_(lrs[m.key])
    active = list(members)
    while active:
        for m in list(active):
            graph: GraphedStep | None = m.device_step
            with torch.cuda.stream(graph.stream if graph is not None else torch.cuda.current_stream(m.run.device)):
                batch = _next(m, batches[m.key])
            if batch is None:
                active.remove(m)
                continue
            if graph is None:  # the member's first step in this worker: capture its graph (kept across epochs)
                graph = m.device_step = GraphedStep(m, batch)
                with torch.cuda.stream(graph.stream):
                    graph.lr.fill_(lrs[m.key])
            step = m.run.step
            with torch.cuda.stream(graph.stream):
                stats[m.key].add(*graph(batch))
                step.steps += 1
                if step.steps % step.check_every == 0:
                    try:
                        step.raise_if_diverged()  # reads the flag on this member's stream
                    except Divergence as div:
                        diverged[m.key] = div
                        active.remove(m)
    for m in members:
        if m.key not in diverged and m.device_step is not None:
            with torch.cuda.stream(m.device_step.stream):
                try:
                    m.run.step.raise_if_diverged()  # the steps since the last check
                except Divergence as div:
                    diverged[m.key] = div
    torch.cuda.synchronize()
    return end_epochs(members, diverged, stats, steps_before, lrs, epoch_start, time.time() - epoch_start)


def _next(member: Member, batches) -> Batch | None:
    try:
        return member.next_batch(batches)
    except StopIteration:
        return None
