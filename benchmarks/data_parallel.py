"""Benchmark: training images per second of one run spread over 1, 2, ... processes (data-parallel,
trainables/distributed.py: what resources.train_workers does inside a sweep, without Ray).

    python -m benchmarks.data_parallel --device cpu --worlds 1 2 --images 2048
    python -m benchmarks.data_parallel --device cuda --worlds 1 2 4 8     (a GPU lease on a machine with several GPUs)

For each world size W it starts W processes (NCCL, one GPU each, on CUDA; gloo and --threads torch
threads each on CPU), trains `--preset` on a synthetic long-tailed set of about `--images` images
at the global batch `--batch` for `--epochs` epochs, and times rank 0's last epoch (the first pays
the start-up). Prints one JSON line per world size: the global batch's training images per second,
and the speed-up and efficiency against one process. On CPU the processes share the machine's
cores, so the figure says what the communication costs, not what more devices give.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from benchmarks.training import device_name
from trainables.cli import BAD_INPUT_EXIT, OneLineParser
from trainables.config import TrainConfig
from trainables.distributed import Shard
from trainables.loop import TrainingRun
from trainables.presets import build_preset


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _process(rank: int, world: int, port: int, config: TrainConfig, threads: int, out: Path) -> None:
    cuda = config.device == "cuda"
    if cuda:
        torch.cuda.set_device(rank)
    torch.set_num_threads(threads)
    dist.init_process_group("nccl" if cuda else "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        run = TrainingRun(dataclasses.replace(config, device=f"cuda:{rank}" if cuda else "cpu"), shard=Shard(rank, world))
        epochs = [run.run_epoch() for _ in range(config.epochs)]
        if rank == 0:
            out.write_text(json.dumps([{k: m[k] for k in ("train_seconds", "images_per_second", "steps")} for m in epochs]))
    finally:
        dist.destroy_process_group()


def measure(config: TrainConfig, world: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "rank0.json"
        started = time.perf_counter()
        mp.spawn(_process, args=(world, _free_port(), config, threads, out), nprocs=world)
        epochs = json.loads(out.read_text())
    last = epochs[-1]
    return {"world": world, "images_per_second": last["images_per_second"], "epoch_train_seconds": last["train_seconds"],
            "steps_per_epoch": last["steps"], "wall_seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m benchmarks.data_parallel", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--preset", default="hybrid_m4")
    parser.add_argument("--images", type=int, default=4096, help="training images (synthetic, balanced)")
    parser.add_argument("--batch", type=int, default=256, help="the global batch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process on CPU")
    args = parser.parse_args(argv)
    if args.device == "cuda" and max(args.worlds) > torch.cuda.device_count():
        print(f"benchmarks.data_parallel: --worlds {max(args.worlds)} needs as many GPUs; this machine has "
              f"{torch.cuda.device_count()}", file=sys.stderr)
        return BAD_INPUT_EXIT
    per_class = max(args.images // 10, 2)
    config = build_preset(args.preset, dataset="synthetic", synthetic_train_per_class=per_class, imbalance_ratio=1.0,
                          epochs=args.epochs, batch_size=args.batch, device=args.device, eval_every=args.epochs,
                          max_eval_images=500, autoaugment=False)
    base = None
    for world in args.worlds:
        line = {"preset": args.preset, "device": device_name(torch.device(args.device)), "batch": args.batch,
                **measure(config, world, args.threads)}
        base = base or line["images_per_second"] / world  # per process, from the first (smallest) world
        line["speedup"] = line["images_per_second"] / base
        line["efficiency"] = line["speedup"] / world
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
