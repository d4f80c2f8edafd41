"""Benchmark: images per second of the image-file pipeline at 224, against a plain DataLoader with PIL.

    python -m benchmarks.streaming --device cpu --images 512 --workers 2
    python -m benchmarks.streaming --device cuda --images 2048 --workers 8      (a GPU lease)

Writes `--images` JPEGs of ImageNet's typical size (500x375, quality 90, ten class folders) into a
temporary folder, then times one pass of the training transform over them, batch `--batch`:
- "streamed": trainables/data/streamed.py as training uses it (torchvision.io decode_image, v2
  RandomResizedCrop(224) and flip on uint8 tensors, in `--workers` DataLoader processes; ImageNet's
  normalisation on the device; on CUDA the JPEGs are decoded there, batch by batch);
- "pil": the plain recipe (torchvision ImageFolder: PIL open and convert, RandomResizedCrop(224),
  RandomHorizontalFlip, ToTensor, Normalize, in the same number of DataLoader processes), its batches
  moved to the device.
Each is timed over three passes after a warm-up pass (the files are in the page cache for both); the
median pass counts. Prints one JSON object: images per second of each and their ratio.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.training import device_name
from trainables.cli import BAD_INPUT_EXIT, OneLineParser
from trainables.config import TrainConfig
from trainables.data.streamed import IMAGENET_MEAN, IMAGENET_STD, load_streamed
from trainables.device import DeviceUnavailable, resolve_device


def write_images(root: Path, n: int, classes: int = 10, size: tuple[int, int] = (500, 375)) -> None:
    """`n` JPEGs in root/train/classK/, and two per class in root/test/ (the folder format)."""
    from PIL import Image

    rng = np.random.RandomState(0)
    for i in range(n + 2 * classes):  # two test images per class: one carved off as validation
        split, c = ("test", (i - n) % classes) if i >= n else ("train", i % classes)
        folder = root / split / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = rng.randint(0, 256, (12, 16, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize(size, Image.BILINEAR)
        noisy = np.clip(np.asarray(image, dtype=np.int16) + rng.randint(-20, 21, (size[1], size[0], 3)), 0, 255)
        Image.fromarray(noisy.astype(np.uint8)).save(folder / f"{i}.JPEG", quality=90)


def _rate(one_pass, images: int) -> float:
    one_pass()  # warm-up: worker start-up paths, page cache
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        one_pass()
        seconds.append(time.perf_counter() - start)
    return images / statistics.median(seconds)


def streamed_pass(root: Path, device: torch.device, batch: int, workers: int):
    config = TrainConfig(dataset="folder", data_dir=str(root), image_size=224, batch_size=batch, data_workers=workers,
                         device=str(device), val_per_class=1)
    data = load_streamed(config)

    def one_pass() -> None:
        for _batch in data.train_batches(config):
            pass
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return one_pass, data.train_size


def pil_pass(root: Path, device: torch.device, batch: int, workers: int):
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                                    transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    folder = datasets.ImageFolder(str(root / "train"), transform=transform)
    loader = torch.utils.data.DataLoader(folder, batch_size=batch, shuffle=True, num_workers=workers,
                                         pin_memory=device.type == "cuda")

    def one_pass() -> None:
        for x, _ in loader:
            x.to(device, non_blocking=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return one_pass, len(folder)


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m benchmarks.streaming", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--images", type=int, default=512)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    if args.images < 10 or args.batch < 1 or args.workers < 0:
        p.error("--images must be at least 10, --batch at least 1, --workers at least 0")
    try:
        device = resolve_device(args.device)
    except DeviceUnavailable as exc:
        print(f"benchmarks.streaming: {exc}", file=sys.stderr)
        return BAD_INPUT_EXIT
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_images(root, args.images)
        rates = {}
        for name, make in (("streamed", streamed_pass), ("pil", pil_pass)):
            one_pass, n = make(root, device, args.batch, args.workers)
            rates[name] = round(_rate(one_pass, n), 1)
    print(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "device": device_name(device), "torch": torch.__version__, "images": args.images,
        "image_size": 224, "source_size": [500, 375], "batch": args.batch, "workers": args.workers,
        "images_per_second": rates, "streamed_over_pil": round(rates["streamed"] / rates["pil"], 3),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
