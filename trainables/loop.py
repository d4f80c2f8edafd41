"""The training loop: train(config, report) runs one configuration and returns its summary.

Each epoch ends with `report(metrics, state)`: `metrics` is a flat JSON-able dict (names as in
DESIGN.md: val_acc, test_acc, many_acc, ..., flops_ratio, train_loss, epoch, status) and `state`
a TrainingState whose `checkpoint()` gives a dict for torch.save (weights_only-loadable) that
`train(..., resume=...)` continues from. The loop knows nothing of Ray or MLflow; the sweep
service binds `report` to them.

A run ends as 'completed', or 'diverged' when a batch loss is non-finite or above
`divergence_loss_bound` (the epoch stops at once on CPU, before the update; within
`divergence_check_every` steps on CUDA, see step.py) or when val_acc stays at chance for
`collapse_patience` evaluated epochs. A diverged run still reports numbers, never NaN:
the worst accuracy (0) and the worst FLOP ratio of the model, so searchers and schedulers go on.

Each epoch's metrics also say which early exits trained (`exit_loss_fractions`, and
`untrained_exits` for those whose loss fewer than 1% of the samples paid); the first epoch with
untrained exits, and each change after it, is also logged as a warning on the "trainables" logger.

Data-parallel (`shard`, trainables/distributed.py: one run over several processes), each process
trains on its part of every global batch, the epoch's statistics are summed over the processes, and
every process evaluates the whole validation and test splits with rank 0's weights and statistics,
so that all take the same decisions; rank 0's report is the run's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from trainables.config import TrainConfig
from trainables.data.augment import TrainAugmentation, mixup
from trainables.data.datasets import LongTailedData, cached_long_tailed
from trainables.data.streamed import StreamedData, load_streamed
from trainables.device import resolve_device
from trainables.distributed import SINGLE, Shard
from trainables.evaluate import evaluate
from trainables.flops import exit_flops, image_shape, reference_for
from trainables.losses.criterion import Criterion
from trainables.losses.elf import UNTRAINED_EXIT_SHARE, exit_loss_shares, untrained_exits
from trainables.models.network import build_model
from trainables.names import COMPLETED, COST, DIVERGED, OBJECTIVE, RESULT_METRICS, RUNNING, TEST_METRIC
from trainables.schedule import lr_at_epoch
from trainables.step import Divergence, TrainStep

Report = Callable[[dict, "TrainingState"], None]
RunData = LongTailedData | StreamedData  # the one data interface: held on the device, or streamed from files


def load_run_data(config: TrainConfig) -> RunData:
    """The data `config` names: an image-file set streamed from disk, or a CIFAR/synthetic set held whole."""
    return load_streamed(config) if config.streamed else cached_long_tailed(config)
log = logging.getLogger("trainables")


def rng_state() -> dict:
    """The process's random state (CPU, and every CUDA device's)."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class TrainingState:
    """What a checkpoint holds; `checkpoint()` is called only when someone saves one."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    config: TrainConfig
    epoch: int = 0  # epochs completed
    collapse_count: int = 0
    best: dict = field(default_factory=dict)  # metrics of the best-val_acc epoch so far
    class_names: list[str] = field(default_factory=list)
    inference_threshold: float | None = None  # s of the latest evaluation (selected on the validation split)

    def checkpoint(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "collapse_count": self.collapse_count,
            "best": self.best,
            "rng": rng_state(),
            "config": self.config.to_dict(),
            "class_names": self.class_names,
            "inference_threshold": self.inference_threshold,
        }

    def restore(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.epoch = int(ckpt["epoch"])
        self.collapse_count = int(ckpt.get("collapse_count", 0))
        self.best = dict(ckpt.get("best", {}))
        self.inference_threshold = ckpt.get("inference_threshold")
        set_rng_state(ckpt["rng"])


def _no_report(metrics: dict, state: TrainingState) -> None:
    pass


class EpochStats:
    """An epoch's training statistics, kept on the device until the end (no host read per step)."""

    def __init__(self, num_exits: int, aggregation: str, device: torch.device, shard: Shard = SINGLE):
        self.aggregation, self.shard = aggregation, shard
        self.n = torch.zeros((), device=device, dtype=torch.long)  # images trained on (all processes' at the end)
        self.loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.exit_counts = torch.zeros(num_exits, device=device, dtype=torch.long)
        self.grad_norm_sum = torch.zeros((), device=device, dtype=torch.float64)

    def add(self, loss: torch.Tensor, leave: torch.Tensor, predicted: torch.Tensor, dominant: torch.Tensor,
            grad_norm: torch.Tensor) -> None:
        self.loss_sum += loss.double() * leave.shape[0]
        self.n += leave.shape[0]
        self.correct += (predicted == dominant).sum()
        self.exit_counts.scatter_add_(0, leave, torch.ones_like(leave))  # bincount would read its max back to the host
        self.grad_norm_sum += grad_norm.double()

    def result(self, steps: int) -> dict:
        # The global batch's. A process's loss is its part's weighted sum over the global batch's weight sum
        # times the world size (Shard.loss_scale), so the parts' loss x images add up to the batch's; the
        # gradient norm is the same in every process already.
        self.shard.sum_(self.n, self.loss_sum, self.correct, self.exit_counts)
        n = self.n.clamp(min=1).double()
        return {
            "train_loss": (self.loss_sum / n).item(),
            "train_acc": (self.correct.double() / n).item(),
            "train_exit_fractions": (self.exit_counts.double() / n).tolist(),
            "exit_loss_fractions": exit_loss_shares(self.exit_counts, self.aggregation).tolist(),
            "grad_norm": (self.grad_norm_sum / max(steps, 1)).item(),
            "steps": steps,
        }


Batch = tuple[torch.Tensor, torch.Tensor, "torch.Tensor | None", "float | torch.Tensor"]  # x, y, y_b, lam


def epoch_batches(config: TrainConfig, data: RunData, augment: TrainAugmentation,
                  parts: list[torch.Tensor] | None = None) -> Iterator[Batch]:
    """The epoch's batches: a fresh shuffle, each batch augmented (and mixed), from the current random
    state, drawn one batch at a time as they are asked for (the data's own: held whole or streamed).
    Data-parallel, `parts` are this process's parts of the global batches (Shard.batches)."""
    for x, y in data.train_batches(config, augment, parts):
        y_b, lam = None, 1.0
        if config.mixup_alpha > 0:
            x, y, y_b, lam = mixup(x, y, config.mixup_alpha)
        yield x, y, y_b, lam


def _train_epoch(step: TrainStep, config: TrainConfig, data: RunData, augment: TrainAugmentation, num_exits: int,
                 epoch: int, shard: Shard | None) -> dict:
    """One pass over the shuffled training set (data-parallel: this process's part of each batch)."""
    stats = EpochStats(num_exits, config.exit_aggregation, step.device, shard or SINGLE)
    parts = None
    if shard is not None:
        parts = shard.batches(data.train_size, config.batch_size, config.seed, epoch)
        shard.seed_augmentation(config.seed, epoch)
    step.forward.train()
    steps_before = step.steps
    for x, y, y_b, lam in epoch_batches(config, data, augment, parts):
        stats.add(*step(x, y, y_b, lam))
    step.raise_if_diverged()  # the steps since the last check
    if shard is not None:
        shard.share_buffers(step.model)
    return stats.result(step.steps - steps_before)


def _worst_metrics(groups: dict, num_exits: int, exit_cost: list[int], base_cost: int) -> dict:
    """What a diverged run reports: the worst value of every objective, never NaN."""
    worst_flops = exit_cost[-1] / base_cost
    return {
        OBJECTIVE: 0.0, TEST_METRIC: 0.0, **{f"{g}_acc": 0.0 for g in groups},
        COST: worst_flops, "test_flops_ratio": worst_flops,
        "exit_fractions": [0.0] * (num_exits - 1) + [1.0],
    }


def on_device(data: RunData, device: torch.device) -> RunData:
    """The data's tensors moved to `device` (the rest shared); a streamed set streams to it batch by batch."""
    if isinstance(data, StreamedData):
        return data
    return LongTailedData(**{**data.__dict__, **{
        k: getattr(data, k).to(device) for k in
        ("train_images", "train_labels", "val_images", "val_labels", "test_images", "test_labels")
    }})


class TrainingRun:
    """One configuration trained an epoch at a time: `train()` loops over it, and a worker drives one
    for each of the trials it trains at once (trainables/members.py).

        run = TrainingRun(config, data=None, resume=None)   # model, loss, optimizer; resumed from a checkpoint
                                                             # (shard=Shard.current(): data-parallel)
        while not run.done:
            metrics = run.run_epoch()                        # train, evaluate, check for divergence
        summary = run.summary()
    """

    def __init__(self, config: TrainConfig, data: RunData | None = None, resume: dict | None = None,
                 shard: Shard | None = None):
        """`shard`: this process's place in a data-parallel run (None: one process, the batch order and
        augmentation from the process's random state, as always). `config`: checked by whoever made it
        (validate(): the CLI, a sweep's define-by-run function), not again here."""
        self.shard = shard
        self.config = config
        self.wall_start = time.time()
        self.device = device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.data = on_device(data if data is not None else load_run_data(config), device)
        model = build_model(config, self.data.num_classes).to(device)
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.criterion = Criterion(config, self.data.class_counts, model.exit_branches).to(device)
        self.optimizer = torch.optim.SGD(
            model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
            nesterov=config.nesterov, fused=device.type == "cuda",  # one kernel for the whole update on GPU
        )
        self.augment = TrainAugmentation(config.crop_padding, config.horizontal_flip, config.autoaugment)
        self.exit_cost = exit_flops(model, image_shape(config))
        self.base_cost = reference_for(config, self.data.num_classes)
        self.state = TrainingState(model, self.optimizer, config, class_names=list(self.data.class_names))
        if resume is not None:
            self.state.restore(resume)  # last, so that its random state is the one the next epoch starts from
        forward = model
        if shard is not None and shard.parallel:
            forward = shard.wrap(model, device, config.sync_batchnorm)  # after restoring: rank 0's weights are broadcast
            self.criterion.loss_scale = shard.loss_scale
        self.step = TrainStep(model, self.criterion, self.optimizer, config, device, shard or SINGLE, forward)
        self.thresholds = config.inference_threshold_candidates()
        self.curve_grid = tuple(sorted(set(config.threshold_grid) | set(self.thresholds)))  # the curve shows every candidate
        self.untrained_before: list[int] = []
        self.chance = 1.0 / self.data.num_classes
        self.eval_batch = 1024 if device.type == "cuda" else 128  # CPU: 128 measured fastest (512 is 1.6x slower)
        self.status, self.reason, self.last_eval = RUNNING, None, {}

    @property
    def done(self) -> bool:
        return self.status != RUNNING or self.state.epoch >= self.config.epochs

    def evaluate(self, curve: tuple[float, ...]) -> dict:
        """Every exit on the validation and test images, s chosen among the candidates, the curve over `curve`."""
        d, b = self.data, self.eval_batch
        return evaluate(self.model, (d.eval_images("val", b, self.device), d.labels("val")),
                        (d.eval_images("test", b, self.device), d.labels("test")), d.groups, self.thresholds,
                        self.exit_cost, self.base_cost, self.config.exit_confidence_scale, curve, b)

    def start_epoch(self) -> float:
        """Set the epoch's learning rate and loss weights (DRW); the learning rate."""
        lr = lr_at_epoch(self.config, self.state.epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.criterion.set_epoch(self.state.epoch)
        return lr

    def train_epoch(self) -> dict:
        """One pass over the training set (Divergence when a batch diverges)."""
        return _train_epoch(self.step, self.config, self.data, self.augment, self.model.num_exits, self.state.epoch,
                            self.shard)

    def run_epoch(self) -> dict:
        """Train and evaluate the next epoch; its metrics (`status` says whether the run goes on)."""
        epoch_start = time.time()
        lr = self.start_epoch()
        try:
            train_stats = self.train_epoch()
        except Divergence as div:
            return self.diverged_in_training(div, lr, epoch_start)
        return self.end_epoch(train_stats, lr, epoch_start, time.time() - epoch_start)

    def diverged_in_training(self, div: Divergence, lr: float, epoch_start: float) -> dict:
        """The epoch whose batch diverged ends the run: worst values for every objective."""
        epoch = self.state.epoch + 1
        metrics = {"epoch": epoch, "lr": lr, "train_loss": self.config.divergence_loss_bound, "train_acc": 0.0,
                   "epoch_seconds": time.time() - epoch_start}
        self._mark_diverged(metrics, f"{div.reason} at epoch {epoch}, step {div.step}", div.step)
        self.state.epoch = epoch
        self.last_eval = metrics
        return metrics

    def end_epoch(self, train_stats: dict, lr: float, epoch_start: float, train_seconds: float) -> dict:
        """Evaluate (when due), watch for a collapse to chance and untrained exits; the epoch's metrics."""
        config, state = self.config, self.state
        epoch = state.epoch + 1
        is_last = epoch == config.epochs
        eval_start = time.time()
        if epoch % config.eval_every == 0 or is_last:
            self.last_eval = self.evaluate(self.curve_grid if is_last else ())
            self.last_eval["eval_epoch"] = epoch
            state.inference_threshold = self.last_eval["inference_threshold_used"]
            if epoch > config.warmup_epochs and self.last_eval[OBJECTIVE] <= 1.1 * self.chance:
                state.collapse_count += 1
            else:
                state.collapse_count = 0
        state.epoch = epoch
        untrained = self._watch_untrained_exits(train_stats["exit_loss_fractions"], epoch)
        metrics = {
            "epoch": epoch, "lr": lr, **train_stats, "untrained_exits": untrained,
            **{k: v for k, v in self.last_eval.items() if k != "threshold_curve" or is_last},
            "train_seconds": train_seconds, "eval_seconds": time.time() - eval_start, "epoch_seconds": time.time() - epoch_start,
            "images_per_second": self.data.train_size / max(train_seconds, 1e-9),  # all processes' together
        }
        if config.collapse_patience and state.collapse_count >= config.collapse_patience:
            reason = f"collapse: val_acc at chance ({self.chance:.3f}) for {state.collapse_count} evaluated epochs"
            self._mark_diverged(metrics, reason, train_stats["steps"])
            return metrics
        if is_last:
            self.status = COMPLETED
        if OBJECTIVE in metrics and metrics[OBJECTIVE] > state.best.get(OBJECTIVE, -1.0):
            state.best = {k: metrics[k] for k in ("epoch", *RESULT_METRICS, "inference_threshold_used") if k in metrics}
        metrics["status"] = self.status
        return metrics

    def _mark_diverged(self, metrics: dict, reason: str, step: int) -> None:
        """The run ends as diverged: the reason, where, and the worst values (one place for both causes)."""
        self.status, self.reason = DIVERGED, reason
        metrics.update({"diverged_reason": reason, "diverged_epoch": metrics["epoch"], "diverged_step": step,
                        **_worst_metrics(self.data.groups, self.model.num_exits, self.exit_cost, self.base_cost),
                        "status": DIVERGED})

    def _watch_untrained_exits(self, loss_fractions: list[float], epoch: int) -> list[int]:
        """Exits whose loss fewer than 1% of the samples paid; logged when they first appear or change."""
        untrained = untrained_exits(loss_fractions)
        if untrained and untrained != self.untrained_before:
            log.warning(
                "epoch %d: early exit(s) %s trained on fewer than %g%% of the samples (%s loss, training threshold "
                "%.3g): they get almost no gradient", epoch, ", ".join(map(str, untrained)),
                100 * UNTRAINED_EXIT_SHARE, self.config.exit_aggregation, self.config.resolved_train_exit_threshold())
        self.untrained_before = untrained
        return untrained

    def summary(self) -> dict:
        """The run's final summary (the last evaluation; a run resumed after its last epoch is evaluated now)."""
        if not self.last_eval:  # resumed from a checkpoint of the last epoch: nothing trained, but the summary needs numbers
            self.last_eval = self.evaluate(self.curve_grid)
            self.last_eval["eval_epoch"] = self.state.epoch
        return {
            "status": COMPLETED if self.status == RUNNING else self.status,
            "epochs_run": self.state.epoch,
            **({"diverged_reason": self.reason} if self.reason else {}),
            **self.last_eval,
            "selected_by_val": self.state.best,
            "exit_flops": self.exit_cost,
            "reference_flops": self.base_cost,
            "wall_seconds": time.time() - self.wall_start,
            "device": str(self.device),
            "data": self.data.describe(),
            "config": self.config.to_dict(),
        }


def train(
    config: TrainConfig,
    report: Report | None = None,
    resume: dict | None = None,
    data: RunData | None = None,
    shard: Shard | None = None,
) -> dict:
    """Train `config`; call `report(metrics, state)` after every epoch; return the final summary.
    Data-parallel (`shard`), every process calls it, and each calls `report` (rank 0's is the run's)."""
    report = report or _no_report
    run = TrainingRun(config, data, resume, shard)
    while not run.done:
        report(run.run_epoch(), run.state)
    return run.summary()
