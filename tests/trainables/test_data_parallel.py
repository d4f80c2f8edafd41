"""Data-parallel training (trainables/distributed.py) on CPU with gloo, without Ray: two processes, each
on its part of the global batch, train the weights and report the losses of one process on the same
batches in the same order.

BatchNorm is the one layer that sees the batch as a whole: on CPU each process normalises over its own
part (torch's SyncBatchNorm has no CPU kernel), so the comparison puts GroupNorm in its place in both
runs (`per_sample_norms`), and checks everything else: the split of each batch,
the gradients averaged by DistributedDataParallel, the loss's global denominator under class weights,
the epoch's statistics summed, the evaluation on shared weights, and the processes' agreement to stop.
"""

from __future__ import annotations

import copy
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from trainables import loop
from trainables.config import TrainConfig
from trainables.distributed import Shard
from trainables.loop import TrainingRun

# Exits (ELF's multi-exit loss), class weights that switch on at epoch 1 (DRW), gradient clipping and no random
# augmentation: the batches are the order's alone, the same for one process and two.
CONFIG = dict(dataset="synthetic", synthetic_train_per_class=30, synthetic_test_per_class=20, imbalance_ratio=10,
              epochs=2, batch_size=16, warmup_epochs=1, backbone="resnet20", widths=(8, 16, 32), lr=0.05,
              grad_clip_norm=5.0, threshold_grid=(0.3, 0.6),
              exit_taps=("stage1",), class_weighting="inverse", drw_start_epoch=1, crop_padding=0,
              horizontal_flip=False, device="cpu")


def per_sample_norms(model: torch.nn.Module) -> torch.nn.Module:
    """The model with each BatchNorm replaced by a GroupNorm of 4 groups: normalised per sample, so that
    the math of a batch does not depend on how it is split."""
    for name, module in model.named_children():
        if isinstance(module, torch.nn.BatchNorm2d):
            setattr(model, name, torch.nn.GroupNorm(4, module.num_features))
        else:
            per_sample_norms(module)
    return model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_epochs(config: TrainConfig, shard: Shard, stop_after: int | None = None) -> tuple[list[dict], dict]:
    """The run's epochs' metrics and final weights, in float64: the two runs sum in different orders, and on
    these tiny, barely trainable sets a float32 difference of 1e-7 grows to 1e-3 within ten steps.
    `stop_after`: the run is made again from its checkpoint after that many epochs (a restarted trial)."""
    torch.set_num_threads(1)
    build, dtype = loop.build_model, torch.get_default_dtype()
    loop.build_model = lambda *args: per_sample_norms(build(*args))
    torch.set_default_dtype(torch.float64)
    try:
        run = TrainingRun(config, shard=shard)
        metrics = []
        while not run.done:
            if run.state.epoch == stop_after:
                checkpoint = copy.deepcopy(run.state.checkpoint())
                torch.manual_seed(12345)  # a new process's random state: the checkpoint's must not matter
                run = TrainingRun(config, shard=shard, resume=checkpoint)
            metrics.append(run.run_epoch())
    finally:
        loop.build_model = build
        torch.set_default_dtype(dtype)
    return metrics, {k: v.clone() for k, v in run.model.state_dict().items()}


def _process(rank: int, world: int, port: int, config: TrainConfig, folder: Path, stop_after: int | None) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.save(train_epochs(config, Shard(rank, world), stop_after), folder / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def train_in_processes(config: TrainConfig, world: int, folder: Path,
                       stop_after: int | None = None) -> dict[int, tuple[list[dict], dict]]:
    mp.spawn(_process, args=(world, free_port(), config, folder, stop_after), nprocs=world)  # raises if one fails
    return {rank: torch.load(folder / f"rank{rank}.pt", weights_only=False) for rank in range(world)}


def test_parts_of_each_global_batch_cover_it_once_in_one_order():
    n, batch = 53, 16  # batches of 16, 16, 16 and 5
    parts = [Shard(rank, 2).batches(n, batch, seed=3, epoch=4) for rank in range(2)]
    whole = Shard(0, 1).batches(n, batch, seed=3, epoch=4)
    assert len(parts[0]) == len(parts[1]) == len(whole) == 4  # every process takes the same number of steps
    for b, batch_idx in enumerate(whole):
        assert torch.equal(torch.cat([parts[0][b], parts[1][b]]), batch_idx)
        assert abs(len(parts[0][b]) - len(parts[1][b])) <= 1
    assert not torch.equal(whole[0], Shard(0, 1).batches(n, batch, seed=3, epoch=5)[0])  # a new order each epoch
    # A last batch smaller than the world is dropped, not given to some processes only.
    assert [len(p) for p in Shard(1, 4).batches(18, 8, seed=0, epoch=0)] == [2, 2]


@pytest.mark.slow
def test_two_processes_train_what_one_trains_on_the_global_batch(tmp_path):
    config = TrainConfig(**CONFIG)
    one_metrics, one_weights = train_epochs(config, Shard(0, 1))
    two = train_in_processes(config, 2, tmp_path)
    (metrics0, weights0), (metrics1, weights1) = two[0], two[1]
    for key in weights0:  # both processes hold the same model
        torch.testing.assert_close(weights0[key], weights1[key], rtol=0, atol=0)
    for key, value in one_weights.items():
        assert value.dtype != torch.float32
        torch.testing.assert_close(weights0[key], value, rtol=1e-9, atol=1e-10, msg=key)
    assert [m["status"] for m in one_metrics] == ["running", "completed"]
    assert len(metrics0) == 2
    for two_epoch, one_epoch in zip(metrics0, one_metrics):
        assert two_epoch["steps"] == one_epoch["steps"] > 1
        for key in ("train_loss", "train_acc", "grad_norm", "val_acc", "test_acc", "flops_ratio"):
            assert two_epoch[key] == pytest.approx(one_epoch[key], rel=1e-9, abs=1e-10), key
        assert two_epoch["train_exit_fractions"] == pytest.approx(one_epoch["train_exit_fractions"])
    assert metrics1[-1]["val_acc"] == metrics0[-1]["val_acc"]  # every process took the same decisions
    # Made again from its checkpoint after the first epoch, as a restarted trial is: the same second epoch.
    resumed = train_in_processes(config, 2, tmp_path, stop_after=1)
    (resumed_metrics, resumed_weights) = resumed[0]
    for key, value in weights0.items():
        torch.testing.assert_close(resumed_weights[key], value, rtol=0, atol=1e-12, msg=key)
    assert resumed_metrics[-1]["train_loss"] == pytest.approx(metrics0[-1]["train_loss"], rel=1e-12)


@pytest.mark.slow
def test_processes_stop_together_on_divergence(tmp_path):
    config = TrainConfig(**{**CONFIG, "divergence_loss_bound": 1e-3})  # every batch's loss is above it
    two = train_in_processes(config, 2, tmp_path)
    for metrics, _ in two.values():
        assert [m["status"] for m in metrics] == ["diverged"]
        assert metrics[0]["diverged_step"] == 0
