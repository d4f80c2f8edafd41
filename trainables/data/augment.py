"""Training augmentation on batches of uint8 image tensors, on whatever device holds them.

The dataset is decoded once and kept as one uint8 tensor (on the GPU when there is one); each
batch is cropped, flipped and (optionally) AutoAugmented there, per image and without a loop over
images (trainables/data/autoaugment.py), then normalised. This
does what the reference's PIL pipeline does (RandomCrop(32, padding=4), RandomHorizontalFlip,
AutoAugment CIFAR-10 policy, Normalize) without a DataLoader or a JPEG decode per epoch.
"""

from __future__ import annotations

import torch

# LDAM-DRW's normalisation constants (cifar_train.py); ResLT uses the same.
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)


def random_crop(images: torch.Tensor, padding: int) -> torch.Tensor:
    """Per-image random 32x32 crop of the zero-padded batch (B, C, H, W), as torchvision RandomCrop."""
    if padding == 0:
        return images
    b = images.shape[0]
    dy = torch.randint(0, 2 * padding + 1, (b,), device=images.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), device=images.device)
    return crop_at(images, padding, dy, dx)


def crop_at(images: torch.Tensor, padding: int, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Crop image i of the zero-padded batch at row dy[i], column dx[i] (offsets into the padded image)."""
    b, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
    rows = (dy[:, None] + torch.arange(h, device=images.device))[:, :, None]  # (B, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, :]  # (B, 1, W)
    batch = torch.arange(b, device=images.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)  # gather (B, H, W, C)


def random_flip(images: torch.Tensor) -> torch.Tensor:
    """Flip each image left-right with probability 1/2."""
    flip = torch.rand(images.shape[0], device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(3), images)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float32 normalised with the CIFAR mean and std."""
    mean = torch.tensor(CIFAR_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


class TrainAugmentation:
    """crop -> flip -> AutoAugment (per image) -> normalise, in the reference's order."""

    def __init__(self, crop_padding: int = 4, horizontal_flip: bool = True, autoaugment: bool = False):
        self.crop_padding = crop_padding
        self.horizontal_flip = horizontal_flip
        self.autoaugment = None
        if autoaugment:
            # Imported here: AutoAugment needs torchvision, whose import brings torch._dynamo (about 1.2 CPU-s
            # in every trial process, 2026-12-07); a run without AutoAugment never pays it.
            from trainables.data.autoaugment import BatchAutoAugment

            self.autoaugment = BatchAutoAugment()

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = random_crop(images, self.crop_padding)
        if self.horizontal_flip:
            x = random_flip(x)
        if self.autoaugment is not None:
            x = self.autoaugment(x)  # one policy draw per image, as the reference's per-sample PIL transform
        return normalize(x)


def mixup(images: torch.Tensor, labels: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mixup (Zhang et al. 2018): (mixed images, labels, partner labels, lam), one lam per batch.

    lam is a 0-d tensor drawn on the images' device: a compiled step does not recompile per value,
    and a GPU step waits neither for a host-to-device copy nor for argument validation (which
    reads a value back).
    """
    concentration = torch.full((), float(alpha), device=images.device)
    lam = torch.distributions.Beta(concentration, concentration, validate_args=False).sample()
    perm = torch.randperm(images.shape[0], device=images.device)
    return lam * images + (1 - lam) * images[perm], labels, labels[perm], lam
