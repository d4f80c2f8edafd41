"""Run one GPU lease: the steps lease_plan lists, inside a deadline, then pack what they made.

    python -m tools.lease run --out "$OUT"          (bash scripts/gpu_lease.sh on the GPU machine)

Needs PyTorch, torchvision, numpy and pyarrow (the GPU image has them); the sweep step also
needs ray, optuna and mlflow (carried as .gpuwhl/, unpacked by scripts/gpu_lease.sh). Every step
gets what is left of the budget; a step that overruns is stopped and says so. What comes back is
at most 8 files (tools/lease/pack.py): the runs' lines and checkpoints, the benchmark, the sweep, and
manifest.json, which says what finished, what was cut and why.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.lease import plan as lease_plan
from tools.lease.pack import pack
from trainables.cli import set_arguments
from trainables.config import CUDA_FAST_PATH
from tuner.reproduce.command import Run, execute, threads_per_run
from tuner.reproduce.run_file import RunFiles, epoch_lines
from tuner.reproduce.supervisor import Supervisor

BENCH_PRESET = "hybrid_m4"  # the seeds' routed hybrid: four exits, grouped ResLT head (PERFORMANCE.md's preset)


@dataclass
class LeaseOptions:
    budget: float = lease_plan.DEFAULT_BUDGET
    device: str = "cuda"
    rows: list[str] | None = None  # None: every row
    sets: list[str] = field(default_factory=list)  # KEY=VALUE for every training command (quick checks)
    epochs: int | None = None  # override the rows' 200 (quick checks only)
    bench: bool | None = None  # None: lease_plan.bench_due
    workers: bool | None = None  # None: on a GPU while lease_plan.workers_due
    workers_ks: tuple[int, ...] = lease_plan.WORKERS_KS
    streaming: bool | None = None  # None: on a GPU while lease_plan.streaming_due
    streaming_images: int = lease_plan.STREAMING_IMAGES
    gpus: int | None = None  # None: what torch sees (the data-parallel step needs two or more)
    bench_epochs: int = 3
    packed: tuple[int, ...] = (4, 8, 16)
    sweep_spec: Path = lease_plan.SWEEP_SPEC
    sweep: bool = True


class Clock:
    def __init__(self, budget: float):
        self.start, self.budget = time.monotonic(), budget

    @property
    def left(self) -> float:
        return self.budget - (time.monotonic() - self.start)


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def _run(cmd: list[str], timeout: float, cwd: Path | None = None, env: dict | None = None) -> tuple[int | None, str, str]:
    """(exit code or None when stopped at the timeout, stdout, stderr) of a command in its own process group."""
    with Supervisor() as sup:
        return sup.run(cmd, timeout, env=env, cwd=cwd)


def device_info(device: str) -> dict[str, Any]:
    import torch
    import torchvision

    info = {"torch": torch.__version__, "torchvision": torchvision.__version__, "python": platform.python_version(),
            "host": platform.node(), "device_type": "cuda" if device.startswith("cuda") else "cpu"}
    if info["device_type"] == "cuda" and torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name()
    else:
        info["device"] = f"{platform.machine()} CPU ({os.cpu_count()} cores)"
    return info


def train_args(opts: LeaseOptions, epochs: int | None = None) -> list[str]:
    args = ["--device", opts.device] + (set_arguments(CUDA_FAST_PATH) if opts.device.startswith("cuda") else [])
    if epochs or opts.epochs:
        args += ["--epochs", str(epochs or opts.epochs)]
    return args + [a for item in opts.sets for a in ("--set", item)]


def wants_bench(opts: LeaseOptions, repo: Path) -> bool:
    """--bench / --no-bench, else: on a GPU when lease_plan.bench_due says so."""
    if opts.bench is not None:
        return opts.bench
    return opts.device.startswith("cuda") and lease_plan.bench_due(repo, opts.rows, train_args(opts))


def wants_workers(opts: LeaseOptions, repo: Path) -> bool:
    """--workers-bench / --no-workers-bench, else: on a GPU while no GPU has measured the workers."""
    if opts.workers is not None:
        return opts.workers
    return opts.device.startswith("cuda") and lease_plan.workers_due(repo)


def wants_streaming(opts: LeaseOptions, repo: Path) -> bool:
    """--streaming-bench / --no-streaming-bench, else: on a GPU while no GPU has timed the image-file pipeline."""
    if opts.streaming is not None:
        return opts.streaming
    return opts.device.startswith("cuda") and lease_plan.streaming_due(repo)


def streaming_step(clock: Clock, opts: LeaseOptions) -> tuple[dict[str, Any], dict[str, Any]]:
    """(step record, benchmark document): benchmarks.streaming within lease_plan.STREAMING_SECONDS; stopped
    there, it says so (its one JSON object comes at the end, so a cut run has no figure)."""
    timeout = max(min(lease_plan.STREAMING_SECONDS, clock.left), 1.0)
    cmd = _python("benchmarks.streaming", "--device", opts.device, "--images", str(opts.streaming_images),
                  "--workers", str(lease_plan.STREAMING_WORKERS))
    doc: dict[str, Any] = {"kind": lease_plan.STREAMING_KIND, "date": time.strftime("%Y-%m-%d"), **device_info(opts.device),
                           "command": " ".join(cmd[1:])}
    try:
        code, out, err = _run(cmd, timeout)
    except OSError as exc:  # it could not start: the step fails, the lease goes on
        code, out, err = -1, "", f"{type(exc).__name__}: {exc}"
    measured = next((r for r in reversed(_json_records(out)) if isinstance(r.get("images_per_second"), dict)), None)
    if code == 0 and measured is not None:
        # The benchmark's own fields (images, batch, workers, images_per_second, streamed_over_pil); the lease's
        # date, device and versions win where both say them.
        doc.update({k: v for k, v in measured.items() if k not in doc})
        return {"name": "streaming", "status": "done", "why": None}, doc
    if code is None:
        status, why = "cut", f"stopped at its time ({timeout:.0f} s) before it printed its figures"
    else:
        last = (err or out).strip().splitlines()[-1:] or ["no output"]
        status, why = "failed", f"benchmarks.streaming exit {code}: {last[0]}"[:500]
    doc["why"] = why
    return {"name": "streaming", "status": status, "why": why}, doc


def data_parallel_step(clock: Clock, opts: LeaseOptions, gpus: int) -> dict[str, Any]:
    """benchmarks.data_parallel over 1, 2, ... `gpus` GPUs within lease_plan.DATA_PARALLEL_SECONDS; its
    document rides in the step record (small), which tools/lease/collect.py lands in docs/perf/."""
    timeout = max(min(lease_plan.DATA_PARALLEL_SECONDS, clock.left), 1.0)
    cmd = _python("benchmarks.data_parallel", "--device", opts.device, "--worlds",
                  *map(str, lease_plan.data_parallel_worlds(gpus)))
    doc: dict[str, Any] = {"kind": lease_plan.DATA_PARALLEL_KIND, "date": time.strftime("%Y-%m-%d"),
                           **device_info(opts.device), "gpus": gpus, "command": " ".join(cmd[1:]), "lines": []}
    try:
        code, out, err = _run(cmd, timeout)
    except OSError as exc:  # it could not start: the step fails, the lease goes on
        code, out, err = -1, "", f"{type(exc).__name__}: {exc}"
    doc["lines"] = [r for r in _json_records(out) if "world" in r]
    if code == 0 and doc["lines"]:
        return {"name": lease_plan.DATA_PARALLEL_KIND, "status": "done", "why": None, "document": doc}
    last = (err or out).strip().splitlines()[-1:] or ["no output"]
    why = (f"stopped at its time ({timeout:.0f} s) after {len(doc['lines'])} world sizes" if code is None
           else f"benchmarks.data_parallel exit {code}: {last[0]}"[:500])
    return {"name": lease_plan.DATA_PARALLEL_KIND, "status": "cut" if code is None else "failed", "why": why,
            "document": {**doc, "why": why}}


def workers_step(clock: Clock, opts: LeaseOptions) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(step record, benchmark document): benchmarks.workers within lease_plan.WORKERS_SECONDS, the
    worker strategies first, today's process packing as the yardstick after them."""
    end = time.monotonic() + min(lease_plan.WORKERS_SECONDS, clock.left)
    sets = [a for item in opts.sets for a in ("--set", item)]
    doc: dict[str, Any] = {"kind": lease_plan.WORKERS_KIND, "date": time.strftime("%Y-%m-%d"), **device_info(opts.device),
                           "commands": [], "lines": []}
    runs = [("--ways", "streams", "fused", "--ks", *map(str, opts.workers_ks)),
            ("--ways", "processes", "--ks", *map(str, [k for k in lease_plan.WORKERS_PROCESS_KS if k <= max(opts.workers_ks)]))]
    cut = False
    for i, ways in enumerate(runs):
        share = (end - time.monotonic()) * (0.7 if i == 0 else 1.0)
        cmd = _python("benchmarks.workers", "--device", opts.device, *ways, "--epochs", str(opts.bench_epochs),
                      "--seconds", f"{max(share - 30.0, 1.0):.0f}", *sets)  # 30 s to finish what it began
        doc["commands"].append(" ".join(cmd[1:]))
        code, out, err = _run(cmd, max(share, 1.0))
        for record in _json_records(out):
            if "way" in record:
                doc["lines"].append(record)
                cut = cut or "cut" in record
        cut = cut or code != 0
    measured = [x for x in doc["lines"] if x.get("summed_train_images_per_second")]
    status = "done" if measured and not cut else ("cut" if measured else "failed")
    why = None if status == "done" else f"{len(measured)} of {len(doc['lines'])} measurements complete"
    return {"name": "workers", "status": status, "why": why}, doc


def _json_records(out: str) -> list[dict[str, Any]]:
    """The JSON objects a benchmark printed, one a line, in order (other lines, and one the deadline cut
    short, are not records)."""
    records = []
    for line in out.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count()


def check_step(clock: Clock) -> dict[str, Any]:
    code, out, err = _run(_python("trainables.data.autoaugment_policy"), min(60.0, clock.left))
    status = "done" if code == 0 else "failed"
    return {"name": "check", "status": status, "result": (out or err).strip().splitlines()[-1:] or [""]}


def _packed(n: int, opts: LeaseOptions, timeout: float, folder: Path) -> dict[str, Any]:
    """n bench-preset runs at once: per-epoch seconds each and the summed training images per second."""
    cmd = _python("trainables.train", "--preset", BENCH_PRESET, *train_args(opts, opts.bench_epochs))
    env = {**os.environ, "OMP_NUM_THREADS": threads_per_run(n)}  # as tuner.reproduce runs them
    deadline = time.monotonic() + timeout
    with Supervisor() as sup:
        procs = []
        for i in range(n):
            with open(folder / f"packed{n}-{i}.jsonl", "w") as out:  # the process keeps its own copy of the file
                procs.append(sup.start(cmd + ["--seed", str(i)], stdout=out, stderr=subprocess.DEVNULL, env=env))
        for proc in procs:
            sup.wait(proc, deadline)
    epochs = []
    for i in range(n):
        epochs.append([e for e in epoch_lines(folder / f"packed{n}-{i}.jsonl") if "epoch_seconds" in e])
    steady = [e[1:] for e in epochs if len(e) > 1]  # the first epoch pays for compilation
    if len(steady) < n:
        return {"processes": n, "complete": False, "runs_with_two_epochs": len(steady)}
    return {"processes": n, "complete": True,
            "epoch_seconds": statistics.median(x["epoch_seconds"] for run in steady for x in run),
            "summed_train_images_per_second": sum(statistics.median(x["images_per_second"] for x in run) for run in steady)}


def bench_step(clock: Clock, opts: LeaseOptions, folder: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(step record, benchmark document) within lease_plan.BENCH_SECONDS."""
    import torch

    end = time.monotonic() + min(lease_plan.BENCH_SECONDS, clock.left)
    doc: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), **device_info(opts.device), "preset": BENCH_PRESET,
                           "commands": {}}
    cut = []

    def slice_(share: float) -> float:
        return max((end - time.monotonic()) * share, 1.0)

    cmd = _python("benchmarks.augment", "--device", opts.device, "--repeats", "20")
    doc["commands"]["bench_augment"] = " ".join(cmd[1:])
    code, out, _ = _run(cmd, slice_(0.15))
    doc["bench_augment"] = json.loads(out) if code == 0 else None
    cut += [] if code == 0 else ["bench_augment"]
    cmd = _python("benchmarks.training", "--preset", BENCH_PRESET, "--device", opts.device, "--epochs", str(opts.bench_epochs),
                  "--workers", "4", *[a for item in opts.sets for a in ("--set", item)])
    doc["commands"]["trainables_bench"] = " ".join(cmd[1:])
    code, out, _ = _run(cmd, slice_(0.5))
    doc["trainables_bench"] = json.loads(out) if code == 0 else None
    cut += [] if code == 0 else ["trainables_bench"]
    doc["packed"] = {}
    doc["commands"]["packed"] = (f"N x python -m trainables.train --preset {BENCH_PRESET} "
                                 f"{' '.join(train_args(opts, opts.bench_epochs))} --seed I, all at once")
    for k, n in enumerate(opts.packed):
        result = _packed(n, opts, slice_(1.0 / (len(opts.packed) - k)), folder)
        doc["packed"][str(n)] = result
        cut += [] if result["complete"] else [f"packed {n}"]
    doc["cuda_available"] = torch.cuda.is_available()
    status = "done" if not cut else "cut"
    return {"name": "bench", "status": status, "why": f"time ran out for: {', '.join(cut)}" if cut else None}, doc


def results_step(clock: Clock, opts: LeaseOptions, repo: Path, measured: dict[str, Any] | None) -> dict[str, Any]:
    timing = lease_plan.timing(repo, measured)
    common = train_args(opts)
    queue = lease_plan.result_queue(repo, opts.rows, common)
    waiting = lease_plan.waiting_for_data(repo, opts.rows, common)  # not started: they would fail without their data
    if not queue:
        return {"name": "results", "status": "skipped", "why": waiting or "every results run is done", "finished": [], "cut": [],
                "waiting_for_data": waiting}
    out = repo / lease_plan.RESULTS_DIR

    def estimate(run: Run) -> float:
        return timing.run_seconds(lease_plan.epochs_left(run, repo, opts.epochs or lease_plan.EPOCHS))

    # Until every CIFAR-10-LT 100x seed-0 row exists the results take all the time (the sweep waits for them);
    # after that the sweep gets half of what is left.
    sweep_turn = opts.sweep and lease_plan.first_rows_done(repo, opts.rows, common)
    budget = clock.left * (lease_plan.SWEEP_SHARE if sweep_turn else 1.0)
    ended = execute(queue, out, timing.parallel, budget, estimate=estimate, unfinishable=timing.parallel)
    cut = [{"name": name, "epochs_done": RunFiles(out, name).checkpoint_epoch()} for name in ended["cut"]]
    why = []
    if cut:
        over = sum(1 for c in cut if not c["epochs_done"])  # cut before their first checkpoint: nothing to resume from
        why.append(f"{len(cut)} started runs were cut at the deadline and resume from their checkpoints"
                   + (f" ({over} before their first: they start over)" if over else ""))
    if ended["not_started"]:
        why.append(f"{len(ended['not_started'])} runs did not fit in the time left and wait for the next lease")
    if ended["failed"]:
        why.append(f"{len(ended['failed'])} failed (their .err files are in results.tar.gz)")
    return {"name": "results", "status": "failed" if ended["failed"] else ("cut" if why else "done"),
            "why": "; ".join(why) or None, "parallel": timing.parallel,
            "epoch_seconds": timing.epoch_seconds[timing.parallel], "timing_source": timing.source,
            "finished": ended["finished"], "failed": ended["failed"], "cut": cut, "not_started": ended["not_started"],
            "waiting_for_data": waiting}


def sweep_step(clock: Clock, opts: LeaseOptions, repo: Path, folder: Path) -> dict[str, Any]:
    common = train_args(opts)
    if not opts.sweep:
        return {"name": "sweep", "status": "skipped", "why": "--no-sweep"}
    if not lease_plan.first_rows_done(repo, opts.rows, common):
        return {"name": "sweep", "status": "skipped", "why": "waits for every CIFAR-10-LT 100x seed-0 results row"}
    budget = clock.left - 45.0  # Ray's start and the table at the end
    if budget < lease_plan.MIN_SWEEP_SECONDS:
        return {"name": "sweep", "status": "skipped", "why": f"too little time left ({clock.left:.0f} s)"}
    try:
        import mlflow  # noqa: F401
        import optuna  # noqa: F401
        import ray  # noqa: F401
    except ImportError as exc:
        return {"name": "sweep", "status": "skipped", "why": f"{exc.name} is not installed here (carry {lease_plan.WHEELHOUSE}/)"}
    spec = (repo / opts.sweep_spec).resolve()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"}
    cmd = _python("tuner.launch", str(spec), "--time-budget", f"{budget:.0f}")
    code, out, err = _run(cmd, budget + 40.0, cwd=folder, env=env)
    (folder / "launch.log").write_text(out + err)
    status = {0: "done", 3: "cut"}.get(code, "failed")
    why = {None: "stopped at the lease's deadline", 3: f"its time budget ({budget:.0f} s) ended it"}.get(code)
    if status == "failed":
        why = f"tuner.launch exit {code}: {(err or out).strip().splitlines()[-1:]}"
    return {"name": "sweep", "status": status, "why": why, "spec": str(opts.sweep_spec), "command": " ".join(cmd[1:])}


def run_lease(repo: Path, out: Path, opts: LeaseOptions) -> dict[str, Any]:
    clock = Clock(opts.budget - lease_plan.PACK_SECONDS)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lease-"))
    before = {p: p.stat().st_mtime for p in (repo / lease_plan.RESULTS_DIR).rglob("*") if p.is_file()}
    manifest: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "budget_seconds": opts.budget,
                                **device_info(opts.device), "steps": []}
    steps = manifest["steps"]
    steps.append(check_step(clock))
    print(f"lease: check {steps[-1]['status']}: {steps[-1]['result']}", flush=True)
    if wants_workers(opts, repo):
        record, workers_doc = workers_step(clock, opts)
        (work / "workers.json").write_text(json.dumps(workers_doc, indent=1))
        steps.append(record)
    else:
        steps.append({"name": "workers", "status": "skipped", "why": "not on a GPU" if not opts.device.startswith("cuda")
                      else "--no-workers-bench" if opts.workers is False else "docs/perf/ already holds worker figures"})
    print(f"lease: workers {steps[-1]['status']} ({clock.left:.0f} s left)", flush=True)
    if wants_streaming(opts, repo):
        record, streaming_doc = streaming_step(clock, opts)
        # streaming.json for bench.tar.gz where tools/lease/pack.py packs it; the manifest carries the (small)
        # document too, so that collect lands it either way.
        (work / "streaming.json").write_text(json.dumps(streaming_doc, indent=1))
        steps.append({**record, "document": streaming_doc})
    else:
        steps.append({"name": "streaming", "status": "skipped", "why": "not on a GPU" if not opts.device.startswith("cuda")
                      else "--no-streaming-bench" if opts.streaming is False else "docs/perf/ already holds a streaming figure"})
    print(f"lease: streaming {steps[-1]['status']}" + (f": {steps[-1]['why']}" if steps[-1].get("why") else "")
          + f" ({clock.left:.0f} s left)", flush=True)
    gpus = opts.gpus if opts.gpus is not None else (_cuda_count() if opts.device.startswith("cuda") else 0)
    if gpus > 1 and lease_plan.data_parallel_due(repo):
        steps.append(data_parallel_step(clock, opts, gpus))
    else:
        steps.append({"name": lease_plan.DATA_PARALLEL_KIND, "status": "skipped",
                      "why": f"{gpus} GPU(s) here; it needs 2 or more" if gpus < 2 else "docs/perf/ already holds its figures"})
    print(f"lease: {lease_plan.DATA_PARALLEL_KIND} {steps[-1]['status']}" + (f": {steps[-1]['why']}" if steps[-1].get("why") else "")
          + f" ({clock.left:.0f} s left)", flush=True)
    measured = None
    if wants_bench(opts, repo):
        record, measured = bench_step(clock, opts, work)
        (work / "bench.json").write_text(json.dumps(measured, indent=1))
        steps.append(record)
    else:
        why = ("not on a GPU" if not opts.device.startswith("cuda") else "--no-bench" if opts.bench is False
               else "docs/perf/ already holds benchmark figures" if lease_plan.bench_figures(repo)
               else "waits for every CIFAR-10-LT 100x seed-0 results row")
        steps.append({"name": "bench", "status": "skipped", "why": why})
    print(f"lease: bench {steps[-1]['status']} ({clock.left:.0f} s left)", flush=True)
    steps.append(results_step(clock, opts, repo, measured))
    print(f"lease: results {steps[-1]['status']}: {len(steps[-1].get('finished', []))} finished, "
          f"{len(steps[-1].get('cut', []))} cut ({clock.left:.0f} s left)", flush=True)
    sweep_folder = work / "sweep"
    sweep_folder.mkdir()
    steps.append(sweep_step(clock, opts, repo, sweep_folder))
    print(f"lease: sweep {steps[-1]['status']}" + (f": {steps[-1]['why']}" if steps[-1].get("why") else ""), flush=True)
    changed = [p for p in (repo / lease_plan.RESULTS_DIR).rglob("*") if p.is_file() and before.get(p) != p.stat().st_mtime]
    manifest["ended"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    manifest["files"] = pack(out, repo, changed, work, manifest)
    return manifest
