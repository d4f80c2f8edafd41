"""Benchmark: the plain PyTorch recipe against the fast path, in one process, one run.

    python -m benchmarks.training --preset hybrid_m4 --device cuda --epochs 30
    python -m benchmarks.training --preset hybrid_m4 --device cpu --epochs 2 --max-train-images 2000

Both train the same configuration (model, loss, optimizer, schedule) on the same long-tailed data:
the plain one with a DataLoader and torchvision PIL transforms (benchmarks/plain_loop.py), the
fast one with trainables.loop (data decoded once and resident on the device, augmentation on
tensors, device-side statistics; on CUDA also channels_last and torch.compile with CUDA graphs,
in float32; --fast-set bf16=true adds bf16 autocast, which changes the numerics). Prints one JSON object: seconds per epoch (median
of the epochs after the first, which pays for compilation and worker start-up), training images
per second, the speed-up, and both runs' final val_acc/test_acc.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import torch

from benchmarks.plain_loop import run_plain
from trainables.cli import BAD_INPUT_EXIT, key_values
from trainables.config import CUDA_FAST_PATH, ConfigError, with_overrides
from trainables.data.datasets import load_long_tailed
from trainables.data.sources import DataNotFoundError
from trainables.device import resolve_device
from trainables.loop import train
from trainables.presets import build_preset


def _steady(values: list[float]) -> float:
    return statistics.median(values[1:] if len(values) > 1 else values)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.training", description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="hybrid_m4")
    p.add_argument("--device", default="auto")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--data-dir")
    p.add_argument("--imbalance", type=float, default=100.0)
    p.add_argument("--max-train-images", type=int)
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers of the plain recipe")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for both runs")
    p.add_argument("--fast-set", action="append", default=[], metavar="KEY=VALUE", help="override for the fast run only")
    p.add_argument("--skip-plain", action="store_true")
    args = p.parse_args(argv)
    try:
        device = resolve_device(args.device)
        overrides: dict = key_values(args.set)
        overrides.update({"epochs": args.epochs, "imbalance_ratio": args.imbalance, "device": str(device)})
        if args.data_dir:
            overrides["data_dir"] = args.data_dir
        if args.max_train_images:
            overrides["max_train_images"] = args.max_train_images
        config = build_preset(args.preset, **overrides).validate()
        fast_overrides = dict(CUDA_FAST_PATH) if device.type == "cuda" else {}
        fast_overrides.update(key_values(args.fast_set, "--fast-set"))
        fast_config = with_overrides(config, fast_overrides).validate()
        data = load_long_tailed(config)
    except (ConfigError, DataNotFoundError, RuntimeError, ValueError) as exc:  # BadArgument is a ValueError
        print(f"benchmarks.training: {exc}", file=sys.stderr)
        return BAD_INPUT_EXIT
    n = len(data.train_labels)
    out: dict = {
        "date": time.strftime("%Y-%m-%d"), "device": device_name(device), "torch": torch.__version__,
        "preset": args.preset, "epochs": args.epochs, "train_images": n, "val_images": len(data.val_labels),
        "test_images": len(data.test_labels), "batch_size": config.batch_size, "fast_options": fast_overrides,
    }
    if not args.skip_plain:
        plain = run_plain(config, data, device, args.workers)
        train_s = _steady([e["train_seconds"] for e in plain["epochs"]])
        eval_s = _steady([e["eval_seconds"] for e in plain["epochs"]])
        out["plain"] = {"train_seconds_per_epoch": train_s, "eval_seconds_per_epoch": eval_s,
                        "epoch_seconds": train_s + eval_s, "train_images_per_second": n / train_s,
                        "val_acc": plain["val_acc"], "test_acc": plain["test_acc"], "workers": args.workers}
    reports: list[dict] = []
    summary = train(fast_config, lambda m, s: reports.append(m), data=data)
    train_s = _steady([r["train_seconds"] for r in reports])
    epoch_s = _steady([r["epoch_seconds"] for r in reports])
    out["fast"] = {"train_seconds_per_epoch": train_s, "eval_seconds_per_epoch": epoch_s - train_s,
                   "epoch_seconds": epoch_s, "first_epoch_seconds": reports[0]["epoch_seconds"],
                   "train_images_per_second": n / train_s, "val_acc": summary["val_acc"],
                   "test_acc": summary["test_acc"], "status": summary["status"]}
    if "plain" in out:
        out["speedup_epoch"] = out["plain"]["epoch_seconds"] / out["fast"]["epoch_seconds"]
        out["speedup_train"] = out["plain"]["train_seconds_per_epoch"] / out["fast"]["train_seconds_per_epoch"]
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
