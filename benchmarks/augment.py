"""Benchmark: training augmentation of one batch, per-image torchvision AutoAugment against the batched one.

    python -m benchmarks.augment --device cuda
    python -m benchmarks.augment --device cpu --batch 128 --repeats 50

Both run crop, flip, AutoAugment (CIFAR-10 policy, one draw per image) and normalisation on a
uint8 batch already on the device: "per_image" calls torchvision's v2.AutoAugment once per image
(what the fast path did before), "batched" is trainables/data/autoaugment.py. Also times crop and
flip alone, so the AutoAugment share is visible. Prints one JSON object of milliseconds per batch
(median of five rounds).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torchvision.transforms import v2

from benchmarks.training import device_name
from trainables.cli import BAD_INPUT_EXIT, OneLineParser
from trainables.data.augment import TrainAugmentation, normalize, random_crop, random_flip
from trainables.device import resolve_device


def _per_image_reference() -> Callable[[torch.Tensor], torch.Tensor]:
    autoaugment = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)

    def augment(images: torch.Tensor) -> torch.Tensor:
        x = random_flip(random_crop(images, 4))
        return normalize(torch.stack([autoaugment(img) for img in x]))

    return augment


def _milliseconds(fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, repeats: int) -> float:
    def sync() -> None:
        if images.is_cuda:
            torch.cuda.synchronize(images.device)

    for _ in range(3):
        fn(images)
    rounds = []
    for _ in range(5):
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            fn(images)
        sync()
        rounds.append((time.perf_counter() - start) / repeats * 1000)
    return round(statistics.median(rounds), 3)


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m benchmarks.augment", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=20, help="batches per timed round")
    args = p.parse_args(argv)
    if args.batch < 1 or args.repeats < 1:
        p.error("--batch and --repeats must be at least 1")
    try:
        device = resolve_device(args.device)
    except RuntimeError as exc:
        print(f"benchmarks.augment: {exc}", file=sys.stderr)
        return BAD_INPUT_EXIT
    torch.manual_seed(0)
    images = torch.randint(0, 256, (args.batch, 3, 32, 32), dtype=torch.uint8, device=device)
    per_image = _milliseconds(_per_image_reference(), images, args.repeats)
    batched = _milliseconds(TrainAugmentation(4, True, autoaugment=True), images, args.repeats)
    crop_flip = _milliseconds(TrainAugmentation(4, True, autoaugment=False), images, args.repeats)
    print(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "device": device_name(device), "torch": torch.__version__, "batch": args.batch,
        "ms_per_batch": {"crop_flip_only": crop_flip, "per_image_autoaugment": per_image, "batched_autoaugment": batched},
        "autoaugment_speedup": round((per_image - crop_flip) / max(batched - crop_flip, 1e-9), 2),
        "speedup_whole_augmentation": round(per_image / batched, 2),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
