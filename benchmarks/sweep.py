"""Benchmark the sweep service: K concurrent trials through Ray Tune, and what the sweep machinery costs.

    python -m benchmarks.sweep --trials 8 --gpu-per-trial 0.125 --epochs 10            # one GPU, packed
    python -m benchmarks.sweep --trials 2 --gpu-per-trial 0 --epochs 3 --dataset synthetic

Runs a real sweep (tuner.launch's code path: Ray Tune, OptunaSearch over the seed, MLflow in a
temporary SQLite file, checkpoints every --checkpoint-every epochs) with a FIFO scheduler, then
reads every trial's per-epoch results and prints one JSON object:
    summed_images_per_second   the trials' steady training throughputs added up
    trial_overhead_share       (trial wall time - time in training epochs) / time in training epochs,
                               summed over trials: Ray reports, MLflow logging, checkpoints, start-up
    sweep_seconds              the whole command, Ray start-up and the finish included
    slot_use                   the share of (the trials' wall time x trial slots) spent in epochs, in the
                               rest of the trials, and between trials (tuner/sweep/slot_use.py), as the
                               launcher's summary line prints it
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from trainables.cli import BadArgument, key_values
from trainables.config import CUDA_FAST_PATH
from tuner.exit_codes import ExitCode
from tuner.spec.schema import SpecError, parse_spec


def bench_spec(args: argparse.Namespace, folder: Path) -> dict:
    data = {"dataset": args.dataset, "imbalance_ratio": args.imbalance}
    if args.data_dir:
        data["data_dir"] = args.data_dir
    if args.max_train_images:
        data["max_train_images"] = args.max_train_images
    train = {"preset": args.preset, "epochs": args.epochs, **(CUDA_FAST_PATH if args.gpu_per_trial > 0 else {})}
    for key, value in key_values(args.set).items():
        train[key] = yaml.safe_load(value)  # as it would be written in a spec: 0.1, true, [16, 32, 48]
    return {
        "name": "bench", "data": data, "train": train,
        "search": {"seed": {"type": "int", "low": 0, "high": 1_000_000}},
        "scheduler": {"type": "fifo"},
        "resources": {"cpu": args.cpu_per_trial, "gpu": args.gpu_per_trial},
        "run": {"num_samples": args.trials, "max_concurrent": args.trials, "checkpoint_every": args.checkpoint_every,
                "storage_path": str(folder / "experiments")},
        "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}", "register_model": False},
    }


def summarize(exp: Path, train_images: int | None, sweep_seconds: float) -> dict:
    from ray.tune import ExperimentAnalysis

    analysis = ExperimentAnalysis(str(exp))
    per_trial, starts, ends = [], [], []
    for trial in analysis.trials:
        df = analysis.trial_dataframes.get(trial.trial_id)
        if df is None or df.empty:
            continue
        epochs = df.sort_values("epoch")
        steady = epochs["train_seconds"].tolist()
        steady = steady[1:] if len(steady) > 1 else steady
        n = train_images or int(round(statistics.median(epochs["images_per_second"] * epochs["train_seconds"])))
        in_epochs = float(epochs["epoch_seconds"].sum())
        total = float(epochs["time_total_s"].max())
        per_trial.append({"trial_id": trial.trial_id, "epochs": len(epochs), "steady_train_seconds": statistics.median(steady),
                          "images_per_second": n / statistics.median(steady), "seconds_in_epochs": in_epochs,
                          "trial_seconds": total})
        starts.append(float(epochs["timestamp"].min()) - float(epochs["time_this_iter_s"].iloc[0]))
        ends.append(float(epochs["timestamp"].max()))
    in_epochs = sum(t["seconds_in_epochs"] for t in per_trial)
    trial_total = sum(t["trial_seconds"] for t in per_trial)
    return {
        "trials": len(per_trial),
        "summed_images_per_second": sum(t["images_per_second"] for t in per_trial),
        "trial_overhead_share": (trial_total - in_epochs) / in_epochs if in_epochs else None,
        "trials_phase_seconds": (max(ends) - min(starts)) if starts else None,
        "sweep_seconds": sweep_seconds,
        "per_trial": per_trial,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--gpu-per-trial", type=float, default=0.125)
    p.add_argument("--cpu-per-trial", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--preset", default="hybrid_m4")
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--imbalance", type=float, default=100.0)
    p.add_argument("--data-dir")
    p.add_argument("--max-train-images", type=int)
    p.add_argument("--checkpoint-every", type=int, default=5)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="training override (YAML-like value)")
    p.add_argument("--address", help="Ray cluster address (default: this machine)")
    p.add_argument("--keep", help="keep the experiment folder and MLflow file here instead of a temporary folder")
    args = p.parse_args(argv)

    from tuner.launch import run_sweep
    from tuner.quiet import quiet_logs
    from tuner.sweep.experiment import ExperimentError, experiment_uri, read_state
    from tuner.sweep.preflight import PreflightError

    quiet_logs(False)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        try:
            spec = parse_spec(bench_spec(args, folder), "<benchmarks.sweep>")
        except (SpecError, BadArgument) as exc:
            print(f"benchmarks.sweep: {exc}", file=sys.stderr)
            return ExitCode.BAD_INPUT
        started = time.time()
        try:
            rc = run_sweep(spec, args.address, restart=True, verbose=False)
        except (PreflightError, ExperimentError) as exc:
            print(f"benchmarks.sweep: {exc}", file=sys.stderr)
            return ExitCode.BAD_INPUT
        if rc != 0:
            return rc
        result = summarize(Path(experiment_uri(spec)), None, time.time() - started)
        state = read_state(experiment_uri(spec))
        result["slot_use"] = state.finished.get("slot_use") if state and state.finished else None
    result.update({"date": time.strftime("%Y-%m-%d"), "preset": args.preset, "dataset": args.dataset,
                   "epochs": args.epochs, "gpu_per_trial": args.gpu_per_trial, "cpu_per_trial": args.cpu_per_trial,
                   "checkpoint_every": args.checkpoint_every})
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
