"""Benchmark: K trials on one device, three ways, in one run: a worker's two strategies
(trainables/members.py: streams, fused) against today's process packing (K processes of
`python -m trainables.train`, as the results runs and fractional-GPU trials share a GPU).

    python -m benchmarks.workers --device cuda --ks 1 4 8 16 32                      # hybrid_m4 and ldam_drw
    python -m benchmarks.workers --device cpu --ks 1 2 4 --epochs 2 --max-train-images 1000

Every member is its preset with its own seed and learning rate (as a sweep's trials differ), on the
same long-tailed training set (CIFAR-10-LT-100 by default). Each (preset, way, K) prints one JSON
line: seconds per epoch of each member when the K train together (training and evaluation; the
median of the epochs after the first, which pays for CUDA graph capture and start-up), its training
part, summed training images per second over the K members (K x training images / the training
part), and peak device memory. A strategy that fails at
some K is a result too (its line says the error); `--seconds` ends the run in time, marking what it
cut. The last line is a summary: the fastest strategy per preset and the largest K that still added
throughput.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.training import device_name
from trainables.cli import BAD_INPUT_EXIT, BadArgument, OneLineParser, key_values
from trainables.config import CUDA_FAST_PATH, ConfigError, TrainConfig, with_overrides
from trainables.data.datasets import cached_long_tailed
from trainables.data.sources import DataNotFoundError
from trainables.device import resolve_device
from trainables.loop import on_device
from trainables.members import STRATEGIES, Member, run_epoch
from trainables.presets import build_preset

PRESETS = ("hybrid_m4", "ldam_drw")  # the seeds' routed hybrid, and LDAM-DRW's ResNet-32
WAYS = (*STRATEGIES, "processes")


def _steady(values: list[float]) -> float:
    return statistics.median(values[1:] if len(values) > 1 else values)


def member_configs(base: TrainConfig, k: int) -> list[TrainConfig]:
    """K members that differ as a sweep's trials do: seed and learning rate."""
    return [with_overrides(base, {"seed": i, "lr": round(base.lr * (0.5 + i / max(k, 1)), 5)}) for i in range(k)]


def run_members(base: TrainConfig, k: int, strategy: str, data, deadline: float) -> dict:
    """K members trained together: the wall time of one epoch of all of them (a round), and its training part."""
    device = resolve_device(base.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    members = [Member(f"m{i}", c, data) for i, c in enumerate(member_configs(base, k))]
    rounds: list[float] = []
    evals: list[float] = []
    while not all(m.done for m in members):
        if time.monotonic() > deadline:
            return {"cut": f"out of time after {len(rounds)} epochs"}
        started = time.monotonic()
        results = run_epoch([m for m in members if not m.done], strategy)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rounds.append(time.monotonic() - started)
        evals.append(sum(r["eval_seconds"] for r in results.values()))  # each member is evaluated on its own
    return {"epoch_seconds": _steady(rounds), "train_seconds": _steady([r - e for r, e in zip(rounds, evals)]),
            "first_epoch_seconds": rounds[0], "epochs": len(rounds),
            "peak_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 3) if device.type == "cuda" else None}


def run_processes(base: TrainConfig, k: int, deadline: float, folder: Path) -> dict:
    """K `python -m trainables.train` processes at once, their cores (or the GPU) shared, as tuner.reproduce runs them."""
    from tuner.reproduce.command import threads_per_run
    from tuner.reproduce.supervisor import Supervisor

    env = {**os.environ, "OMP_NUM_THREADS": threads_per_run(k)}
    with Supervisor() as sup:
        procs = []
        for i, config in enumerate(member_configs(base, k)):
            path = folder / f"config-{k}-{i}.json"
            path.write_text(json.dumps({"config": config.to_dict()}))
            with open(folder / f"lines-{k}-{i}.jsonl", "w") as out:
                procs.append(sup.start([sys.executable, "-m", "trainables.train", "--config", str(path)], stdout=out,
                                       stderr=subprocess.DEVNULL, env=env))
        codes = [sup.wait(p, deadline) for p in procs]
    if any(c is None for c in codes):
        return {"cut": "out of time"}
    if any(codes):
        return {"error": f"a process exited {max(codes)}"}
    runs = [[json.loads(x) for x in (folder / f"lines-{k}-{i}.jsonl").read_text().splitlines()] for i in range(k)]
    runs = [[e for e in r if not e.get("summary")] for r in runs]
    return {"epoch_seconds": statistics.median(_steady([e["epoch_seconds"] for e in r]) for r in runs),
            "train_seconds": statistics.median(_steady([e["train_seconds"] for e in r]) for r in runs),
            "first_epoch_seconds": statistics.median(r[0]["epoch_seconds"] for r in runs), "epochs": len(runs[0])}


def summarise(lines: list[dict]) -> dict:
    """Per preset: the way and K with the most summed training images/s, and per way the largest K that still gained."""
    out: dict = {}
    for preset in sorted({line["preset"] for line in lines}):
        mine = [x for x in lines if x["preset"] == preset and x.get("summed_train_images_per_second")]
        if not mine:
            continue
        best = max(mine, key=lambda x: x["summed_train_images_per_second"])
        useful = {}
        for way in WAYS:
            curve = sorted((x["k"], x["summed_train_images_per_second"]) for x in mine if x["way"] == way)
            gained = [k for (k, ips), (_, before) in zip(curve[1:], curve) if ips > 1.05 * before]
            if curve:
                useful[way] = max(gained, default=curve[0][0])
        out[preset] = {"fastest": {"way": best["way"], "k": best["k"],
                                   "summed_train_images_per_second": best["summed_train_images_per_second"]},
                       "largest_useful_k": useful}
    return out


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m benchmarks.workers", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--ks", nargs="+", type=int, default=[1, 4, 8, 16, 32], help="members per device")
    p.add_argument("--presets", nargs="+", default=list(PRESETS))
    p.add_argument("--ways", nargs="+", default=list(WAYS), choices=WAYS)
    p.add_argument("--epochs", type=int, default=3, help="epochs per member (the first is not counted)")
    p.add_argument("--imbalance", type=float, default=100.0)
    p.add_argument("--max-train-images", type=int, help="a smaller training set (quick checks on a CPU)")
    p.add_argument("--data-dir")
    p.add_argument("--seconds", type=float, default=1e9, help="stop starting measurements after this long")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override of every member")
    args = p.parse_args(argv)
    try:
        device = resolve_device(args.device)
        if min(args.ks) < 1 or args.epochs < 1:
            raise BadArgument("--ks and --epochs must be at least 1")
        overrides: dict = {"epochs": args.epochs, "imbalance_ratio": args.imbalance, "device": str(device),
                           **({"max_train_images": args.max_train_images} if args.max_train_images else {}),
                           **({"data_dir": args.data_dir} if args.data_dir else {}),
                           **(CUDA_FAST_PATH if device.type == "cuda" else {}), **key_values(args.set)}
        bases = {name: build_preset(name, **overrides).validate() for name in args.presets}
        datasets = {name: cached_long_tailed(b) for name, b in bases.items()}
    except (ConfigError, DataNotFoundError, BadArgument, RuntimeError, ValueError) as exc:
        print(f"benchmarks.workers: {exc}", file=sys.stderr)
        return BAD_INPUT_EXIT
    deadline = time.monotonic() + args.seconds
    head = {"date": time.strftime("%Y-%m-%d"), "device": device_name(device), "torch": torch.__version__,
            "command": "python -m benchmarks.workers " + " ".join(argv if argv is not None else sys.argv[1:])}
    print(json.dumps(head), flush=True)
    lines = []
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"benchmarks-workers-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, base in bases.items():
        data = on_device(datasets[name], device)
        n = len(data.train_labels)
        for way in args.ways:
            for k in args.ks:
                started = time.monotonic()
                if started > deadline:
                    result = {"cut": "out of time before it started"}
                else:
                    try:
                        result = (run_processes(base, k, deadline, folder) if way == "processes"
                                  else run_members(base, k, way, data, deadline))
                    except Exception as exc:  # noqa: BLE001 - a way that fails at some K is a result too
                        result = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"}
                line = {"preset": name, "way": way, "k": k, "train_images": n, **result,
                        "wall_seconds": round(time.monotonic() - started, 1)}
                if "train_seconds" in result:
                    line["summed_train_images_per_second"] = round(k * n / result["train_seconds"])
                lines.append(line)
                print(json.dumps(line), flush=True)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    print(json.dumps({"summary": summarise(lines)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
