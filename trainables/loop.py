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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from trainables.config import TrainConfig
from trainables.data.augment import TrainAugmentation, mixup
from trainables.data.datasets import LongTailedData, cached_long_tailed
from trainables.evaluate import evaluate
from trainables.flops import exit_flops, reference_flops
from trainables.losses.criterion import Criterion
from trainables.losses.elf import UNTRAINED_EXIT_SHARE, exit_loss_shares, untrained_exits
from trainables.models.network import build_model
from trainables.names import COMPLETED, COST, DIVERGED, OBJECTIVE, RESULT_METRICS, RUNNING, TEST_METRIC
from trainables.schedule import lr_at_epoch
from trainables.step import Divergence, TrainStep

Report = Callable[[dict, "TrainingState"], None]
log = logging.getLogger("trainables")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device: {name!r} asked for, but this machine has no CUDA GPU; use --device cpu")
    return torch.device(name)


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
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "collapse_count": self.collapse_count,
            "best": self.best,
            "rng": rng,
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
        torch.set_rng_state(ckpt["rng"]["cpu"])
        if "cuda" in ckpt["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])


def _no_report(metrics: dict, state: TrainingState) -> None:
    pass


def _train_epoch(step: TrainStep, config: TrainConfig, data: LongTailedData, augment: TrainAugmentation, num_exits: int) -> dict:
    """One pass over the shuffled training set; statistics stay on the device until the end."""
    device = data.train_images.device
    n = data.train_labels.shape[0]
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.long)
    exit_counts = torch.zeros(num_exits, device=device, dtype=torch.long)
    grad_norm_sum = torch.zeros((), device=device, dtype=torch.float64)
    step.model.train()
    steps_before = step.steps
    order = torch.randperm(n, device=device)
    for start in range(0, n, config.batch_size):
        idx = order[start : start + config.batch_size]
        x, y = augment(data.train_images[idx]), data.train_labels[idx]
        y_b, lam = None, 1.0
        if config.mixup_alpha > 0:
            x, y, y_b, lam = mixup(x, y, config.mixup_alpha)
        loss, leave, predicted, dominant, grad_norm = step(x, y, y_b, lam)
        loss_sum += loss.double() * y.shape[0]
        correct += (predicted == dominant).sum()
        exit_counts.scatter_add_(0, leave, torch.ones_like(leave))  # bincount would read its max back to the host
        grad_norm_sum += grad_norm.double()
    step.raise_if_diverged()  # the steps since the last check
    steps = step.steps - steps_before
    return {
        "train_loss": (loss_sum / n).item(),
        "train_acc": (correct.double() / n).item(),
        "train_exit_fractions": (exit_counts.double() / n).tolist(),
        "exit_loss_fractions": exit_loss_shares(exit_counts, config.exit_aggregation).tolist(),
        "grad_norm": (grad_norm_sum / max(steps, 1)).item(),
        "steps": steps,
    }


def _worst_metrics(groups: dict, num_exits: int, exit_cost: list[int], base_cost: int) -> dict:
    """What a diverged run reports: the worst value of every objective, never NaN."""
    worst_flops = exit_cost[-1] / base_cost
    return {
        OBJECTIVE: 0.0, TEST_METRIC: 0.0, **{f"{g}_acc": 0.0 for g in groups},
        COST: worst_flops, "test_flops_ratio": worst_flops,
        "exit_fractions": [0.0] * (num_exits - 1) + [1.0],
    }


def train(
    config: TrainConfig,
    report: Report | None = None,
    resume: dict | None = None,
    data: LongTailedData | None = None,
) -> dict:
    """Train `config`; call `report(metrics, state)` after every epoch; return the final summary."""
    config.validate()
    report = report or _no_report
    wall_start = time.time()
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)

    data = data if data is not None else cached_long_tailed(config)
    data = LongTailedData(**{**data.__dict__, **{
        k: getattr(data, k).to(device) for k in
        ("train_images", "train_labels", "val_images", "val_labels", "test_images", "test_labels")
    }})
    model = build_model(config, data.num_classes).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    criterion = Criterion(config, data.class_counts, model.exit_branches).to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
        nesterov=config.nesterov, fused=device.type == "cuda",  # one kernel for the whole update on GPU
    )
    augment = TrainAugmentation(config.crop_padding, config.horizontal_flip, config.autoaugment)
    exit_cost = exit_flops(model)
    base_cost = reference_flops(data.num_classes)
    state = TrainingState(model, optimizer, config, class_names=list(data.class_names))
    step = TrainStep(model, criterion, optimizer, config, device)
    if resume is not None:
        state.restore(resume)  # last, so that its random state is the one the next epoch starts from
    thresholds = config.inference_threshold_candidates()
    curve_grid = tuple(sorted(set(config.threshold_grid) | set(thresholds)))  # the curve shows every candidate
    untrained_before: list[int] = []
    chance = 1.0 / data.num_classes
    eval_batch = 1024 if device.type == "cuda" else 128  # CPU: 128 measured fastest (512 is 1.6x slower)

    def evaluate_now(curve: tuple[float, ...]) -> dict:
        """Every exit on the validation and test images, s chosen among `thresholds`, the curve over `curve`."""
        return evaluate(model, (data.val_images, data.val_labels), (data.test_images, data.test_labels), data.groups,
                        thresholds, exit_cost, base_cost, config.exit_confidence_scale, curve, eval_batch)

    status, reason, last_eval = RUNNING, None, {}
    for epoch in range(state.epoch, config.epochs):
        epoch_start = time.time()
        lr = lr_at_epoch(config, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        criterion.set_epoch(epoch)
        try:
            train_stats = _train_epoch(step, config, data, augment, model.num_exits)
        except Divergence as div:
            status, reason = DIVERGED, f"{div.reason} at epoch {epoch + 1}, step {div.step}"
            metrics = {
                "epoch": epoch + 1, "status": status, "diverged_reason": reason,
                "diverged_epoch": epoch + 1, "diverged_step": div.step, "lr": lr,
                "train_loss": config.divergence_loss_bound, "train_acc": 0.0,
                **_worst_metrics(data.groups, model.num_exits, exit_cost, base_cost),
                "epoch_seconds": time.time() - epoch_start,
            }
            state.epoch = epoch + 1
            report(metrics, state)
            last_eval = metrics
            break
        train_seconds = time.time() - epoch_start
        is_last = epoch + 1 == config.epochs
        if (epoch + 1) % config.eval_every == 0 or is_last:
            last_eval = evaluate_now(curve_grid if is_last else ())
            last_eval["eval_epoch"] = epoch + 1
            state.inference_threshold = last_eval["inference_threshold_used"]
            if epoch + 1 > config.warmup_epochs and last_eval[OBJECTIVE] <= 1.1 * chance:
                state.collapse_count += 1
            else:
                state.collapse_count = 0
        state.epoch = epoch + 1
        untrained = untrained_exits(train_stats["exit_loss_fractions"])
        if untrained and untrained != untrained_before:
            log.warning(
                "epoch %d: early exit(s) %s trained on fewer than %g%% of the samples (%s loss, training threshold "
                "%.3g): they get almost no gradient", epoch + 1, ", ".join(map(str, untrained)),
                100 * UNTRAINED_EXIT_SHARE, config.exit_aggregation, config.resolved_train_exit_threshold())
        untrained_before = untrained
        metrics = {
            "epoch": epoch + 1, "lr": lr, **train_stats, "untrained_exits": untrained,
            **{k: v for k, v in last_eval.items() if k != "threshold_curve" or is_last},
            "train_seconds": train_seconds, "epoch_seconds": time.time() - epoch_start,
            "images_per_second": len(data.train_labels) / max(train_seconds, 1e-9),
        }
        if config.collapse_patience and state.collapse_count >= config.collapse_patience:
            status = DIVERGED
            reason = f"collapse: val_acc at chance ({chance:.3f}) for {state.collapse_count} evaluated epochs"
            metrics.update({"diverged_reason": reason, "diverged_epoch": epoch + 1, "diverged_step": train_stats["steps"]})
            metrics.update(_worst_metrics(data.groups, model.num_exits, exit_cost, base_cost))
        elif is_last:
            status = COMPLETED
        if status != DIVERGED and OBJECTIVE in metrics and metrics[OBJECTIVE] > state.best.get(OBJECTIVE, -1.0):
            state.best = {k: metrics[k] for k in ("epoch", *RESULT_METRICS, "inference_threshold_used") if k in metrics}
        metrics["status"] = status
        report(metrics, state)
        if status == DIVERGED:
            break

    if not last_eval:  # resumed from a checkpoint of the last epoch: nothing trained, but the summary needs numbers
        last_eval = evaluate_now(curve_grid)
        last_eval["eval_epoch"] = state.epoch
    return {
        "status": COMPLETED if status == RUNNING else status,
        "epochs_run": state.epoch,
        **({"diverged_reason": reason} if reason else {}),
        **last_eval,
        "selected_by_val": state.best,
        "exit_flops": exit_cost,
        "reference_flops": base_cost,
        "wall_seconds": time.time() - wall_start,
        "device": str(device),
        "data": data.describe(),
        "config": config.to_dict(),
    }
