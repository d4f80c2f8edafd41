"""Several training runs in one process, each still its own run: what a per-device worker trains.

    member = Member("t01", config, data, resume=None)     # a TrainingRun with its own random state (member.py)
    results = run_epoch([m1, m2, m3], "fused")            # one epoch of each: {key: that epoch's metrics}
    m1.checkpoint(), m1.summary(), m1.done

A Member is one configuration's TrainingRun (trainables/loop.py) with its own random state: every
draw it makes (initial weights, data order, crops, flips, AutoAugment, Mixup) comes from its own
seed's stream, so it trains exactly what `python -m trainables.train` with its configuration
trains alone. Its learning-rate schedule, epochs, clip norm and divergence check are its own
config's; a member that diverges ends alone, with the worst values, as a solo run does. Members
join and leave between epochs (the worker decides which members an epoch includes).

Strategies (STRATEGIES), one epoch of several members:

    streams   each member's own training step. On CUDA the step (forward, loss, backward, clipping,
              the SGD update, the statistics) is captured once as a CUDA graph per member and replayed
              on that member's own CUDA stream, so the GPU overlaps the members; on a CPU the members
              run one after another. Either way each member's math is its solo run's: on CPU it is
              the same computation, bit for bit.
    fused     the members as one model (torch.func): parameters, BatchNorm buffers and momentum
              stacked along a first dimension of K, one vmapped forward (convolutions become grouped
              ones), each member's own loss, one backward, each member's own clipping and SGD update
              with its learning rate, momentum and weight decay as [K] tensors. Same math up to
              floating-point order (grouped convolutions sum differently).

All members of a fused epoch share the architecture, batch size and training set (the sweep spec
refuses searched values that change them when trials share a worker). Everything here runs in one
thread: the global random state is swapped in and out around each member's work.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator

import torch

from trainables.config import MEMBER_STRATEGIES as STRATEGIES
from trainables.loop import Batch, EpochStats, epoch_batches
from trainables.losses.criterion import dominant_labels
from trainables.member import Member, end_epochs, sgd_update_
from trainables.member_graphs import streams_epoch  # used on CUDA only
from trainables.step import Divergence


def run_epoch(members: list[Member], strategy: str) -> dict[str, dict]:
    """One epoch of every member (none of them done): {member key: the epoch's metrics}."""
    if strategy not in STRATEGIES:
        raise ValueError(f"worker strategy: unknown {strategy!r}; known: {', '.join(STRATEGIES)}")
    if strategy == "fused" and len(members) > 1:
        return fused_epoch(members)
    if strategy == "streams" and len(members) > 1 and members[0].run.device.type == "cuda":
        return streams_epoch(members)
    return {m.key: m.run_epoch() for m in members}  # one after another: each exactly its solo run


# ------------------------------------------------------------------------------------------------
# The fused strategy's tensors: clipping and hyperparameters for K members stacked along dimension 0.


def clip_coefficients(grads: list[torch.Tensor], max_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(total norm, clip coefficient) per member of stacked gradients (K, ...), as clip_grad_norm_ computes them."""
    norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads], dim=1)  # (K, tensors)
    total = norms.norm(dim=1)
    return total, (max_norm / (total + 1e-6)).clamp(max=1.0)


def _per_member(values: list[float], like: torch.Tensor, dims: int) -> torch.Tensor:
    """[K] values as a (K, 1, ..., 1) tensor that broadcasts against a stacked tensor of `dims` dimensions."""
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(-1, *([1] * (dims - 1)))


# ------------------------------------------------------------------------------------------------
# fused: the members as one vmapped model


class FusedGroup:
    """Live members' parameters, buffers and momentum stacked along dimension 0; written back to each
    member's own model and optimizer at the end of the epoch (or when one diverges)."""

    def __init__(self, members: list[Member], lrs: dict[str, float]):
        from torch.func import stack_module_state

        self.members = members
        models = [m.run.model for m in members]
        names = [n for n, _ in models[0].named_parameters()]
        for m in members[1:]:
            theirs = [(n, p.shape) for n, p in m.run.model.named_parameters()]
            if theirs != [(n, p.shape) for n, p in models[0].named_parameters()]:
                raise ValueError(f"fused: member {m.key} has another architecture than {members[0].key}")
        self.template = copy.deepcopy(models[0]).to("meta")
        params, buffers = stack_module_state(models)
        self.params = {n: params[n] for n in names}
        # Contiguous stacked buffers: with strided ones vmap's BatchNorm loses its running-statistics update.
        self.buffers = {n: b.contiguous() for n, b in buffers.items()}
        self.names = names
        self.momentum = {n: torch.stack([self._momentum_of(m, n) for m in members]) for n in names}
        configs = [m.config for m in members]
        like = self.params[names[0]]
        self.hyper = {
            "lr": [lrs[m.key] for m in members], "weight_decay": [c.weight_decay for c in configs],
            "momentum": [c.momentum for c in configs], "nesterov": [1.0 if c.nesterov else 0.0 for c in configs],
        }
        self.max_norm = torch.tensor([c.grad_clip_norm if c.grad_clip_norm is not None else math.inf for c in configs],
                                     device=like.device)
        self.bounds = torch.tensor([c.divergence_loss_bound for c in configs], device=like.device)
        self.bf16 = any(c.bf16 for c in configs)

    @staticmethod
    def _momentum_of(member: Member, name: str) -> torch.Tensor:
        param = dict(member.run.model.named_parameters())[name]
        buf = member.run.optimizer.state.get(param, {}).get("momentum_buffer")
        return buf.detach().clone() if buf is not None else torch.zeros_like(param)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(K, B, 3, H, W) images -> per exit (K, B, branches, C) logits, float32."""
        from torch.func import functional_call, vmap

        def one(p: dict, b: dict, xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return tuple(functional_call(self.template, (p, b), (xs,)))

        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            outs = vmap(one, in_dims=(0, 0, 0), randomness="error")(self.params, self.buffers, x)
        return tuple(o.float() for o in outs)

    def update(self) -> torch.Tensor:
        """Clip each member's gradients and apply its SGD update; the (K,) gradient norms before clipping."""
        grads = [self.params[n].grad for n in self.names]
        total, coef = clip_coefficients(grads, self.max_norm)
        for g in grads:
            g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))
        for n in self.names:
            p = self.params[n]
            h = {k: _per_member(v, p, p.dim()) for k, v in self.hyper.items()}
            sgd_update_([p], [p.grad], [self.momentum[n]], h["lr"], h["weight_decay"], h["momentum"], h["nesterov"])
            p.grad = None
        return total

    @torch.no_grad()
    def write_back(self) -> None:
        """Each member's slice into its own model and optimizer, so that it evaluates and checkpoints alone."""
        for k, m in enumerate(self.members):
            own = dict(m.run.model.named_parameters())
            for n in self.names:
                own[n].copy_(self.params[n][k])
                if m.config.momentum != 0:
                    m.run.optimizer.state[own[n]]["momentum_buffer"] = self.momentum[n][k].clone()
            own_buffers = dict(m.run.model.named_buffers())
            for n, b in self.buffers.items():
                own_buffers[n].copy_(b[k])


def fused_epoch(members: list[Member]) -> dict[str, dict]:
    """One epoch of each member through one vmapped model. Divergence is watched per member as a solo
    run watches it (every step on CPU, before the update; every `divergence_check_every` steps on
    CUDA); a member that diverges leaves the group at once, with its state as its solo run would
    have it, and the others go on."""
    epoch_start = time.time()
    lrs = {m.key: m.run.start_epoch() for m in members}
    for m in members:
        m.run.model.train()
    batches = {m.key: _epoch_batches(m) for m in members}
    stats = {m.key: EpochStats(m.run.model.num_exits, m.config.exit_aggregation, m.run.device) for m in members}
    steps_before = {m.key: m.run.step.steps for m in members}  # a run's step count goes on across epochs
    diverged: dict[str, Divergence] = {}
    check_every = members[0].run.step.check_every
    live, group = list(members), FusedGroup(members, lrs)
    bad = torch.zeros(len(live), dtype=torch.bool, device=members[0].run.device)
    worst = torch.zeros(len(live), device=members[0].run.device)
    while live:
        drawn = [m.next_batch(batches[m.key]) for m in live]
        if drawn[0] is None:
            break  # the epoch is over (every member has as many batches)
        outs = group.forward(torch.stack([x for x, _, _, _ in drawn]))
        losses, counted = [], []
        for k, (m, (_, y, y_b, lam)) in enumerate(zip(live, drawn)):
            loss, leave = m.run.criterion([o[k] for o in outs], y, y_b, lam)
            losses.append(loss)
            counted.append((leave, outs[-1][k].detach().sum(1).argmax(1), dominant_labels(y, y_b, lam)))
        loss_values = torch.stack([loss.detach() for loss in losses])
        loss_bad = ~torch.isfinite(loss_values) | (loss_values > group.bounds)
        if check_every == 1:  # CPU: a bad loss ends its member before its backward, as in a solo run
            ok = [loss for loss, b in zip(losses, loss_bad.tolist()) if not b]
        else:
            ok = losses
        if ok:
            sum(ok).backward()
        grads = [group.params[n].grad if group.params[n].grad is not None else torch.zeros_like(group.params[n])
                 for n in group.names]
        grad_norms, _ = clip_coefficients(grads, group.max_norm)
        bad_now = loss_bad | ~torch.isfinite(grad_norms)
        worst = torch.where(bad_now & ~bad, loss_values.float(), worst)
        bad = bad | bad_now
        for k, m in enumerate(live):
            m.run.step.steps += 1
            stats[m.key].add(loss_values[k], *counted[k], grad_norms[k].detach())
        gone: set[str] = set()
        if any(m.run.step.steps % check_every == 0 for m in live):
            gone = _new_divergences(live, bad, worst, group.bounds, diverged)
        if gone:
            group.write_back()  # before the update: a diverged member keeps its state of before this step
            keep = [k for k, m in enumerate(live) if m.key not in gone]
            live = [live[k] for k in keep]
            if not live:
                break
            old, group = group, FusedGroup(live, lrs)
            for n in group.names:
                group.params[n].grad = grads[old.names.index(n)][keep].clone()
            bad, worst = bad[keep], worst[keep]
        group.update()
    if live:
        _new_divergences(live, bad, worst, group.bounds, diverged)  # the steps since the last check
        group.write_back()
    return end_epochs(members, diverged, stats, steps_before, lrs, epoch_start, time.time() - epoch_start)


def _epoch_batches(member: Member) -> Iterator[Batch | None]:
    """The member's batches, each drawn under its own random state (Member.next_batch), then None."""
    yield from epoch_batches(member.config, member.run.data, member.run.augment)
    while True:
        yield None


def _new_divergences(live: list[Member], bad: torch.Tensor, worst: torch.Tensor, bounds: torch.Tensor,
                     diverged: dict[str, Divergence]) -> set[str]:
    """Members whose device-side flag is up and that have not diverged yet (one host read): recorded in
    `diverged` with the reason and step a solo run gives."""
    gone = set()
    for k, flagged in enumerate(bad.tolist()):
        key = live[k].key
        if flagged and key not in diverged:
            value, bound = float(worst[k]), float(bounds[k])
            loss_bad = not math.isfinite(value) or value > bound
            what = f"batch loss {value:.4g} (bound {bound:g})" if loss_bad else "non-finite gradient norm"
            diverged[key] = Divergence(what, live[k].run.step.steps - 1)
            gone.add(key)
    return gone
