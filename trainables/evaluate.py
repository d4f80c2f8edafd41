"""Evaluation: one pass over the images gives every exit's output; any inference threshold after that.

ELF inference (Eq. 5-6): a sample leaves at the first exit whose top probability exceeds s (the
final exit if none does), and takes that exit's prediction. Because `predict_exits` keeps all
exits' probabilities, the accuracy and FLOPs for a whole grid of s come from the same pass, with
no retraining and no second forward pass.

When several thresholds are candidates (the ELF paper's line search over s), the one with the
best validation accuracy is taken, ties going to the one with fewer validation FLOPs, and every
metric is reported at it: the test images never take part in the choice.

Reported per evaluation (names as everywhere in the project):
    val_acc          accuracy on the balanced validation split (the objective)
    test_acc         accuracy on the remaining test images
    many/medium/few_acc, class_acc, exit_fractions   on the test images
    flops_ratio      mean inference FLOPs per validation image / FLOPs of the standard ResNet-32
    test_flops_ratio the same on the test images
    inference_threshold_used   the threshold s the numbers above are at
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from trainables.data.augment import normalize
from trainables.names import COST, OBJECTIVE, TEST_METRIC

# A split's images: uint8 (N, 3, H, W) held whole (CIFAR), or a callable giving normalised batches (image files).
Images = torch.Tensor | Callable[[], Iterable[torch.Tensor]]


@dataclass
class ExitPredictions:
    """Every exit's softmax output for N images: probs (K, N, C)."""

    probs: torch.Tensor

    @property
    def confidence(self) -> torch.Tensor:  # (K, N)
        return self.probs.max(dim=2).values

    def exit_index(self, threshold: float) -> torch.Tensor:
        """(N,) first exit whose top probability exceeds `threshold`; the final exit otherwise."""
        conf = self.confidence
        k = conf.shape[0]
        over = conf[:-1] > threshold  # (K-1, N); the final exit always takes what is left
        if k == 1:
            return torch.zeros(conf.shape[1], dtype=torch.long, device=conf.device)
        first = torch.where(over.any(0), over.float().argmax(0), torch.full_like(over[0], k - 1, dtype=torch.long))
        return first.long()

    def at_threshold(self, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(exit index (N,), probabilities of the exit taken (N, C))."""
        idx = self.exit_index(threshold)
        return idx, self.probs[idx, torch.arange(self.probs.shape[1], device=idx.device)]


def exit_probabilities(outputs: list[torch.Tensor], scale: float = 1.0) -> torch.Tensor:
    """(K, N, C) softmax of each exit's prediction (the sum of its branches) from model outputs."""
    return torch.stack([torch.softmax(scale * o.sum(1).float(), dim=1) for o in outputs])


@torch.no_grad()
def predict_exits(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 512, scale: float = 1.0) -> ExitPredictions:
    """Run uint8 images (N, 3, 32, 32) through the model in eval mode; probabilities stay on its device."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    chunks = []
    for start in range(0, images.shape[0], batch_size):
        x = normalize(images[start : start + batch_size].to(device, non_blocking=True))
        outs = model(x)
        chunks.append(exit_probabilities(outs, scale))
    model.train(was_training)
    return ExitPredictions(torch.cat(chunks, dim=1))


@torch.no_grad()
def predict_batches(model: torch.nn.Module, batches: Iterable[torch.Tensor], scale: float = 1.0) -> ExitPredictions:
    """Run already normalised batches (an image-file set's evaluation transform) through the model in eval mode."""
    was_training = model.training
    model.eval()
    chunks = [exit_probabilities(model(x), scale) for x in batches]
    model.train(was_training)
    return ExitPredictions(torch.cat(chunks, dim=1))


def _predict(model: torch.nn.Module, images: Images, batch_size: int, scale: float) -> ExitPredictions:
    return predict_exits(model, images, batch_size, scale) if isinstance(images, torch.Tensor) else \
        predict_batches(model, images(), scale)


def class_accuracy(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(C,) accuracy per class (NaN for a class with no images)."""
    correct = torch.bincount(labels[predicted == labels], minlength=num_classes).float()
    total = torch.bincount(labels, minlength=num_classes).float()
    return correct / total


def split_metrics(
    preds: ExitPredictions, labels: torch.Tensor, threshold: float, exit_flops: list[int], reference_flops: int
) -> dict:
    """Accuracy, per-class accuracy, exit fractions and FLOP ratio of one split at one threshold."""
    idx, probs = preds.at_threshold(threshold)
    predicted = probs.argmax(1)
    labels = labels.to(predicted.device)
    flops = torch.tensor(exit_flops, dtype=torch.float64, device=idx.device)[idx]
    fractions = torch.bincount(idx, minlength=len(exit_flops)).float() / len(idx)
    return {
        "acc": (predicted == labels).float().mean().item(),
        "class_acc": class_accuracy(predicted, labels, probs.shape[1]).tolist(),
        "exit_fractions": fractions.tolist(),
        COST: (flops.mean() / reference_flops).item(),
    }


def group_accuracy(class_acc: list[float], groups: dict[str, list[int]]) -> dict[str, float | None]:
    """Mean of per-class accuracies in each group (test splits are balanced); None for an empty group."""
    return {
        f"{name}_acc": (sum(class_acc[c] for c in members) / len(members) if members else None)
        for name, members in groups.items()
    }


def select_threshold(
    val_preds: ExitPredictions, val_labels: torch.Tensor, candidates: tuple[float, ...], exit_flops: list[int],
    reference_flops: int,
) -> tuple[float, dict]:
    """(s, its validation metrics): the candidate with the best val_acc, then the fewest FLOPs, then the lowest s."""
    scored = [(s, split_metrics(val_preds, val_labels, s, exit_flops, reference_flops)) for s in candidates]
    return min(scored, key=lambda item: (-item[1]["acc"], item[1][COST], item[0]))


def evaluate(
    model: torch.nn.Module,
    val: tuple[Images, torch.Tensor],
    test: tuple[Images, torch.Tensor],
    groups: dict[str, list[int]],
    thresholds: tuple[float, ...],
    exit_flops: list[int],
    reference_flops: int,
    scale: float = 1.0,
    curve_thresholds: tuple[float, ...] = (),
    batch_size: int = 512,
) -> dict:
    """Metrics at the threshold chosen on the validation split among `thresholds` (one value: that one),
    plus the accuracy/FLOPs curve over `curve_thresholds` when there are exits. Each split is (images,
    labels): uint8 images held whole, or a callable giving an image-file set's normalised batches."""
    val_preds = _predict(model, val[0], batch_size, scale)
    test_preds = _predict(model, test[0], batch_size, scale)
    threshold, v = select_threshold(val_preds, val[1], tuple(thresholds), exit_flops, reference_flops)
    t = split_metrics(test_preds, test[1], threshold, exit_flops, reference_flops)
    out = {
        OBJECTIVE: v["acc"],
        TEST_METRIC: t["acc"],
        **group_accuracy(t["class_acc"], groups),
        "class_acc": t["class_acc"],
        "exit_fractions": t["exit_fractions"],
        COST: v[COST],
        "test_flops_ratio": t[COST],
        "inference_threshold_used": threshold,
    }
    if len(exit_flops) > 1 and curve_thresholds:
        out["threshold_curve"] = [
            {
                "threshold": s,
                OBJECTIVE: (vs := split_metrics(val_preds, val[1], s, exit_flops, reference_flops))["acc"],
                COST: vs[COST],
                TEST_METRIC: (ts := split_metrics(test_preds, test[1], s, exit_flops, reference_flops))["acc"],
                "test_flops_ratio": ts[COST],
            }
            for s in curve_thresholds
        ]
    return out
