"""The plain PyTorch recipe the fast path is measured against: LDAM-DRW's way of feeding a model.

A Dataset of PIL images with torchvision transforms (RandomCrop(32, padding=4),
RandomHorizontalFlip, AutoAugment when configured, ToTensor, Normalize), a DataLoader with worker
processes, eager float32 steps, and evaluation through a DataLoader too. Same model, loss,
optimizer and schedule as trainables.loop; only the engineering differs. Used by
`python -m benchmarks.training` and by the equivalence tests.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from trainables.config import TrainConfig
from trainables.data.augment import CIFAR_MEAN, CIFAR_STD
from trainables.data.datasets import LongTailedData
from trainables.evaluate import ExitPredictions, exit_probabilities, select_threshold, split_metrics
from trainables.losses.criterion import Criterion
from trainables.models.network import build_model
from trainables.schedule import lr_at_epoch


class ArrayImages(Dataset):
    """uint8 images (N, 3, 32, 32) as PIL images through a transform, like torchvision's CIFAR10."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images = images.permute(0, 2, 3, 1).numpy()  # HWC for PIL
        self.labels = labels.numpy()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(np.ascontiguousarray(self.images[i]))), int(self.labels[i])


def reference_transforms(config: TrainConfig) -> tuple[transforms.Compose, transforms.Compose]:
    train = []
    if config.crop_padding:
        train.append(transforms.RandomCrop(32, padding=config.crop_padding))
    if config.horizontal_flip:
        train.append(transforms.RandomHorizontalFlip())
    if config.autoaugment:
        train.append(transforms.AutoAugment(transforms.AutoAugmentPolicy.CIFAR10))
    tail = [transforms.ToTensor(), transforms.Normalize(CIFAR_MEAN, CIFAR_STD)]
    return transforms.Compose(train + tail), transforms.Compose(tail)


def plain_step(model, criterion, optimizer, x, y, clip: float | None):
    """The reference step: eager float32 forward, loss, backward, optional clipping, update."""
    outputs = model(x)
    loss, _ = criterion(outputs, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return loss.detach(), outputs


@torch.no_grad()
def plain_predict(model, loader: DataLoader, device: torch.device, scale: float) -> tuple[ExitPredictions, torch.Tensor]:
    model.eval()
    probs, labels = [], []
    for x, y in loader:
        probs.append(exit_probabilities(model(x.to(device)), scale))
        labels.append(y)
    model.train()
    return ExitPredictions(torch.cat(probs, dim=1)), torch.cat(labels)


def run_plain(config: TrainConfig, data: LongTailedData, device: torch.device, workers: int = 4) -> dict:
    """Train `config.epochs` epochs the plain way; per-epoch train and evaluation seconds, final accuracy."""
    torch.manual_seed(config.seed)
    train_tf, eval_tf = reference_transforms(config)
    kw = dict(num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    train_loader = DataLoader(ArrayImages(data.train_images, data.train_labels, train_tf), batch_size=config.batch_size, shuffle=True, **kw)
    val_loader = DataLoader(ArrayImages(data.val_images, data.val_labels, eval_tf), batch_size=100, **kw)
    test_loader = DataLoader(ArrayImages(data.test_images, data.test_labels, eval_tf), batch_size=100, **kw)
    model = build_model(config, data.num_classes).to(device)
    criterion = Criterion(config, data.class_counts, model.exit_branches).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay, nesterov=config.nesterov)
    epochs = []
    for epoch in range(config.epochs):
        for group in optimizer.param_groups:
            group["lr"] = lr_at_epoch(config, epoch)
        criterion.set_epoch(epoch)
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        for x, y in train_loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss, _ = plain_step(model, criterion, optimizer, x, y, config.grad_clip_norm)
            loss_sum += loss * len(y)
        train_loss = float(loss_sum) / len(data.train_labels)  # the reference prints it: a sync per epoch
        t1 = time.perf_counter()
        val_preds, val_labels = plain_predict(model, val_loader, device, config.exit_confidence_scale)
        test_preds, test_labels = plain_predict(model, test_loader, device, config.exit_confidence_scale)
        t2 = time.perf_counter()
        epochs.append({"train_seconds": t1 - t0, "eval_seconds": t2 - t1, "train_loss": train_loss,
                       "val_preds": val_preds, "test_preds": test_preds, "labels": (val_labels, test_labels)})
    last = epochs[-1]
    cost = [1] * len(last["val_preds"].probs)  # FLOPs do not matter here: only accuracy is compared
    threshold, val = select_threshold(last["val_preds"], last["labels"][0], config.inference_threshold_candidates(), cost, 1)
    return {
        "epochs": [{k: e[k] for k in ("train_seconds", "eval_seconds", "train_loss")} for e in epochs],
        "val_acc": val["acc"],
        "test_acc": split_metrics(last["test_preds"], last["labels"][1], threshold, cost, 1)["acc"],
    }
