"""Image-file sets streamed from disk: decoded batch by batch, never held whole in memory.

    data = load_streamed(config)                      # ImageListError / DataNotFoundError: bad input
    for x, y in data.train_batches(config, None):     # float, normalised, on config's device
    for x in data.eval_batches("val", 256, device):   # the evaluation transform, in the split's order

The same small interface as the resident CIFAR sets (trainables/data/datasets.py: LongTailedData):
`num_classes`, `class_counts`, `class_names`, `groups`, `describe()`, `train_batches`, `eval_batches`,
and each evaluation split's labels, so the training loop and the evaluation do not know which they have.

Transforms are ImageNet's standard (torchvision.transforms.v2 on uint8 tensors): RandomResizedCrop to
`image_size` and a horizontal flip for training; resize to image_size x 256/224 and a centre crop for
evaluation; ImageNet's mean and std. Files are decoded by torchvision.io.decode_image, which reads the
bytes, not the name (a PNG named .JPEG), and gives RGB for grayscale and CMYK JPEGs. Decoding and the
transforms run in DataLoader worker processes (`data_workers`), one batch ahead of the training step;
on a CUDA device the workers only read the files, and a batch's JPEGs are decoded there in one nvJPEG
call and transformed there (decode_on: other formats, and JPEGs nvJPEG refuses, by the CPU decoder).
docs/DATA.md has the measurements behind these choices. A file that cannot be decoded fails its run
with an ImageDecodeError naming the file.

Randomness: the epoch's order is drawn from the global torch generator in this process and each
worker's augmentation from a seed the DataLoader draws from it too, so a run's batches follow from its
seed and resume from its checkpoint's random state, as the resident sets' do. A data-parallel process
(trainables/distributed.py) reads only its parts of the global batches, in the order all processes share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainables.config import TrainConfig
from trainables.data.groups import class_groups
from trainables.data.image_lists import ImageListError, ImageLists, ImageSplit, read_image_lists

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet models and the OLTR split loaders
IMAGENET_STD = (0.229, 0.224, 0.225)
EVAL_RESIZE = 256 / 224  # resize the short side to image_size x 256/224, then centre-crop image_size (the standard)


class ImageDecodeError(RuntimeError):
    """An image file that cannot be decoded (mid-run: it fails its trial, naming the file)."""


def decode_rgb(path: Path) -> torch.Tensor:
    """(3, H, W) uint8 RGB of an image file, whatever its name says and whatever its colour model."""
    from torchvision.io import ImageReadMode, decode_image, read_file

    try:
        return decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
    except Exception as exc:  # noqa: BLE001 - torchvision raises RuntimeError or ValueError, by decoder
        raise ImageDecodeError(f"{path}: cannot decode it as an image ({type(exc).__name__}: {str(exc)[:120]})") from None


def eval_size(image_size: int) -> int:
    return round(image_size * EVAL_RESIZE)


def train_transform(image_size: int) -> Callable:
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomResizedCrop(image_size, antialias=True), v2.RandomHorizontalFlip()])


def eval_transform(image_size: int) -> Callable:
    """Resize the short side to image_size x 256/224, centre-crop image_size: how the registered model sees any image."""
    from torchvision.transforms import v2

    return v2.Compose([v2.Resize(eval_size(image_size), antialias=True), v2.CenterCrop(image_size)])


def normalize_imagenet(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float32 normalised with ImageNet's mean and std."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


class _Files(torch.utils.data.Dataset):
    """The files of one split, decoded and transformed to uint8 (3, S, S) in the worker that asks; with no
    transform, each file's encoded bytes (decoded later, on the GPU)."""

    def __init__(self, files: list[Path], transform: Callable | None):
        self.files, self.transform = files, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor | tuple[torch.Tensor, str]:
        if self.transform is None:
            from torchvision.io import read_file

            return read_file(str(self.files[i])), str(self.files[i])
        return self.transform(decode_rgb(self.files[i]))


def _as_list(batch: list) -> list:
    return batch


JPEG_MAGIC = b"\xff\xd8"


def decode_on(device: torch.device, encoded: list[tuple[torch.Tensor, str]]) -> list[torch.Tensor]:
    """(3, H, W) uint8 images on `device` from their files' bytes: the JPEGs in one batched nvJPEG call (what
    decoding on the GPU buys), anything else (a PNG named .JPEG) and any JPEG nvJPEG refuses (CMYK, say) by
    the CPU decoder, then moved there."""
    from torchvision.io import ImageReadMode, decode_image, decode_jpeg

    out: list[torch.Tensor | None] = [None] * len(encoded)
    jpegs = [i for i, (data, _) in enumerate(encoded) if bytes(data[:2].tolist()) == JPEG_MAGIC]
    if jpegs:
        try:
            for i, image in zip(jpegs, decode_jpeg([encoded[i][0] for i in jpegs], mode=ImageReadMode.RGB, device=device)):
                out[i] = image
        except RuntimeError:
            pass  # one file nvJPEG cannot take fails the call: those go to the CPU below
    for i, (data, path) in enumerate(encoded):
        if out[i] is None:
            try:
                out[i] = decode_image(data, mode=ImageReadMode.RGB).to(device, non_blocking=True)
            except Exception as exc:  # noqa: BLE001 - as decode_rgb
                raise ImageDecodeError(f"{path}: cannot decode it as an image ({type(exc).__name__}: {str(exc)[:120]})") from None
    return out


@dataclass
class StreamedData:
    lists: ImageLists
    image_size: int
    workers: int
    groups: dict[str, list[int]]

    @property
    def class_names(self) -> list[str]:
        return self.lists.class_names

    @property
    def class_counts(self) -> list[int]:
        return self.lists.train_counts

    @property
    def num_classes(self) -> int:
        return self.lists.num_classes

    @property
    def source(self) -> str:
        return self.lists.source

    @property
    def train_size(self) -> int:
        return len(self.lists.train)

    def labels(self, split: str) -> torch.Tensor:
        return torch.from_numpy(getattr(self.lists, split).labels)

    def describe(self) -> dict:
        return {"source": self.source, "train_images": len(self.lists.train), "val_images": len(self.lists.val),
                "test_images": len(self.lists.test), "class_counts": self.class_counts, "groups": self.groups,
                "image_size": self.image_size, "streamed": True}

    def _loader(self, files: list[Path], batches: list[list[int]] | None, transform: Callable | None,
                batch_size: int) -> torch.utils.data.DataLoader:
        """Batches of the files: the given index batches (training), or all in order in batch_size batches."""
        order = {"batch_sampler": batches} if batches is not None else {"batch_size": batch_size}
        return torch.utils.data.DataLoader(
            _Files(files, transform), **order, num_workers=self.workers,
            collate_fn=_as_list if transform is None else None, persistent_workers=False,
            pin_memory=transform is not None and torch.cuda.is_available(), prefetch_factor=4 if self.workers else None)

    def train_batches(self, config: TrainConfig, augment: object = None,
                      parts: list[torch.Tensor] | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The epoch's batches (images normalised on `config.device`'s device, labels there), in a fresh
        shuffle, or `parts` (a data-parallel process's parts of the global batches); `augment` is the
        resident sets' and not used: these sets bring ImageNet's own."""
        from trainables.device import resolve_device

        device = resolve_device(config.device)
        if parts is None:
            order = torch.randperm(self.train_size)
            parts = list(order.split(config.batch_size))
        batches = [part.tolist() for part in parts]
        all_labels = torch.from_numpy(self.lists.train.labels)
        transform = train_transform(self.image_size)
        on_gpu = device.type == "cuda"  # workers read the bytes; decoding and the transform happen on the GPU
        loader = self._loader(self.lists.train.files, batches, None if on_gpu else transform, config.batch_size)
        for idx, batch in zip(batches, loader):
            images = torch.stack([transform(image) for image in decode_on(device, batch)]) if on_gpu else batch
            yield normalize_imagenet(images.to(device, non_blocking=True)), all_labels[idx].to(device)

    def eval_images(self, split: str, batch_size: int, device: torch.device) -> Callable[[], Iterator[torch.Tensor]]:
        """The split as evaluate() takes it: a callable giving its normalised batches (never the whole split at once)."""
        return lambda: self.eval_batches(split, batch_size, device)

    def eval_batches(self, split: str, batch_size: int, device: torch.device) -> Iterator[torch.Tensor]:
        """The split's images through the evaluation transform, normalised on `device`, in the split's order."""
        transform = eval_transform(self.image_size)
        on_gpu = device.type == "cuda"
        for batch in self._loader(getattr(self.lists, split).files, None, None if on_gpu else transform, batch_size):
            images = torch.stack([transform(image) for image in decode_on(device, batch)]) if on_gpu else batch
            yield normalize_imagenet(images.to(device, non_blocking=True))


def capped(lists: ImageLists, config: TrainConfig) -> ImageLists:
    """max_train_images (class proportions kept) and max_eval_images (balanced), for quick runs, as on CIFAR."""
    from trainables.data.long_tail import cap_proportionally
    from trainables.data.splits import balanced_cap

    def keep(split: ImageSplit, idx: np.ndarray) -> ImageSplit:
        return ImageSplit([split.files[i] for i in idx], split.labels[idx])

    train, val, test = lists.train, lists.val, lists.test
    if config.max_train_images is not None:
        train = keep(train, np.sort(cap_proportionally(np.arange(len(train)), train.labels, config.max_train_images)))
    if config.max_eval_images is not None:
        val = keep(val, balanced_cap(np.arange(len(val)), val.labels, config.max_eval_images))
        test = keep(test, balanced_cap(np.arange(len(test)), test.labels, config.max_eval_images))
    return ImageLists(train, val, test, lists.class_names, lists.source)


CHECK_SAMPLE = 16  # images of each split decoded when a set is loaded: a broken file is found before any training


def load_streamed(config: TrainConfig, check_sample: int = CHECK_SAMPLE) -> StreamedData:
    """The image-file set `config` names, every listed file checked to exist and `check_sample` images of each
    split decoded (ImageListError naming the file when one fails)."""
    lists = capped(read_image_lists(config.dataset, config.data_dir, config.val_per_class or 20, config.split_seed), config)
    if check_sample:
        rng = np.random.RandomState(0)
        for split in (lists.train, lists.val, lists.test):
            for i in rng.choice(len(split), min(check_sample, len(split)), replace=False):
                try:
                    decode_rgb(split.files[i])
                except ImageDecodeError as exc:
                    raise ImageListError(str(exc)) from None
    return StreamedData(lists, config.image_size, config.data_workers, class_groups(config.class_groups, lists.train_counts))
