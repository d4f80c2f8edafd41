"""Data-parallel training of one run over several processes (torch.distributed, set up by whoever starts
them: Ray Train in the sweep, or a test): which part of each batch a process trains on, its gradients
averaged (DistributedDataParallel), its statistics summed and its decisions agreed.

    shard = Shard.current()                 # rank and world size of the process group (world 1 without one)
    run = TrainingRun(config, shard=shard)  # trainables/loop.py

`config.batch_size` is the global batch: each step, the processes train on one batch of that many
images split between them (Shard.batches), so the optimisation (learning rate, warm-up, decay) is the
one of a single process on the same batch, whatever the world size. Every process draws the same order
from a generator seeded by (seed, epoch), and its own augmentation from (seed, epoch, rank): the data
order follows from the epoch alone, so a resumed run goes on with the same batches.

What differs from one process: BatchNorm normalises over a process's part of the batch, unless
`sync_batchnorm` (CUDA only: torch's SyncBatchNorm has no CPU kernel) makes it the global batch, as
torchvision's reference ImageNet recipe offers with --sync-bn.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

ORDER_SEED_STRIDE = 1_000_003  # seeds (seed, epoch[, rank]) apart: a prime larger than any epoch count


@dataclass(frozen=True)
class Shard:
    rank: int = 0
    world: int = 1

    @staticmethod
    def current() -> Shard:
        """This process's place in the default process group (rank 0 of 1 when there is none)."""
        if dist.is_available() and dist.is_initialized():
            return Shard(dist.get_rank(), dist.get_world_size())
        return Shard()

    @property
    def parallel(self) -> bool:
        return self.world > 1

    @property
    def leader(self) -> bool:
        """The process that reports and writes checkpoints."""
        return self.rank == 0

    def epoch_order(self, n: int, seed: int, epoch: int) -> torch.Tensor:
        """The epoch's order of the n training images, the same in every process."""
        generator = torch.Generator().manual_seed(seed * ORDER_SEED_STRIDE + epoch)
        return torch.randperm(n, generator=generator)

    def seed_augmentation(self, seed: int, epoch: int) -> None:
        """This process's own random stream for the epoch's augmentation and Mixup (not the other ranks')."""
        torch.manual_seed((seed * ORDER_SEED_STRIDE + epoch) * ORDER_SEED_STRIDE + self.rank + 1)

    def batches(self, n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
        """This process's part of each global batch of the epoch (indices into the training set). The parts of
        a batch differ by at most one image; a last batch smaller than the world is dropped, so that every
        process takes the same number of steps (their gradients are averaged at each)."""
        order = self.epoch_order(n, seed, epoch)
        parts = []
        for start in range(0, n, batch_size):
            batch = order[start: start + batch_size]
            if batch.shape[0] < self.world:
                break
            parts.append(batch.tensor_split(self.world)[self.rank])
        return parts

    def _reduce(self, op: dist.ReduceOp, tensors: tuple[torch.Tensor, ...]) -> None:
        if self.parallel:
            for t in tensors:
                dist.all_reduce(t, op=op)

    def sum_(self, *tensors: torch.Tensor) -> None:
        """Each tensor summed over the processes, in place."""
        self._reduce(dist.ReduceOp.SUM, tensors)

    def max_(self, *tensors: torch.Tensor) -> None:
        """Each tensor's elementwise maximum over the processes, in place."""
        self._reduce(dist.ReduceOp.MAX, tensors)

    def loss_scale(self, weight_sum: torch.Tensor) -> torch.Tensor:
        """What a process divides its summed, weighted loss by so that the average of the processes' gradients
        is the gradient of the global batch's weighted mean: the global weight sum over the world size (the
        parts' weight sums differ under class weights and uneven parts)."""
        if not self.parallel:
            return weight_sum
        total = weight_sum.detach().clone()
        self.sum_(total)
        return total / self.world

    def wrap(self, model: torch.nn.Module, device: torch.device, sync_batchnorm: bool) -> torch.nn.Module:
        """The module the training step calls: the model itself, or DistributedDataParallel around it (which
        averages the gradients during backward; rank 0's weights and buffers are broadcast at the start)."""
        if not self.parallel:
            return model
        if sync_batchnorm and device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)

    def share_buffers(self, model: torch.nn.Module) -> None:
        """Rank 0's BatchNorm statistics in every process: each updated its own during the epoch, and the
        evaluation (done by every process, so that all take the same decisions) must see one model."""
        if self.parallel:
            for buffer in model.buffers():
                dist.broadcast(buffer, 0)


SINGLE = Shard()
