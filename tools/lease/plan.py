"""What the next GPU lease will do, read from the repository alone (no GPU, no Ray needed).

    python -m tools.lease plan            (bash scripts/gpu_lease.sh --plan)

A lease is one command of at most 10 minutes on a GPU machine. Its steps, in order of value:
1. the AutoAugment table check against that machine's torchvision (seconds; always); then, on the GPU
   and each only until docs/perf/ holds a GPU figure of its own: K trials per GPU
   (python -m benchmarks.workers) and the image-file pipeline at 224 against a plain DataLoader
   with PIL (python -m benchmarks.streaming), each a fixed share of the lease;
2. once every CIFAR-10-LT 100x seed-0 row exists and while docs/perf/ holds no benchmark figure:
   a short benchmark (the fast path against the plain recipe, packed trials, the batched
   AutoAugment on CUDA); until then the results runs measure the packing themselves
   (tools/lease/collect.py files their per-epoch times in docs/perf/ too), and those times size
   the next lease;
3. the results runs not yet in results/, every CIFAR-10-LT run before any CIFAR-100-LT run, and
   within each 100x first (seed 0, then seeds 1 and 2, then 50x and 10x), as many at once as the
   measured packing says is fastest, each started only when it can finish in the time left (a few
   more may fill idle slots: they come back as checkpoints and resume in a later lease); runs of a
   dataset the lease's data does not carry (CIFAR-100, see `carries`) wait, and the plan says so;
   the ELF paper's headline-table runs (ImageNet-LT, iNaturalist'18) come last and wait too: they
   need a multi-GPU machine with the dataset on its disk, not a lease (one GPU, 64 MiB of data);
3b. on a machine with several GPUs only (none of the lent kinds has: `--gpus N` plans for one), until
   docs/perf/ holds a figure of it: one run spread over 1, 2, ... all GPUs (python -m
   benchmarks.data_parallel: NCCL, what resources.train_workers does inside a sweep), a fixed share;
4. once every CIFAR-10-LT 100x seed-0 row exists: search_spaces/hybrid.yaml (on CIFAR-10-LT) under
   Ray Tune with the time left (needs ray, optuna and mlflow carried as .gpuwhl/); from then on the
   results runs of step 3 get half of the time after the benchmark and the sweep the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainables.data.image_lists import INAT_FILES, SPLIT_FILES
from trainables.data.sources import TORCHVISION_FOLDERS
from tuner.reproduce.command import Run, row_runs
from tuner.reproduce.rows import DATASETS, HEADLINE_DATASETS, ROWS, ROWS_BY_KEY, long_tailed_name

DEFAULT_BUDGET = 540.0  # seconds of work in one 10-minute command, leaving time to pack and send back
PACK_SECONDS = 20.0  # what packing the archive is given at the end
# The benchmark's share of a lease, at most. Measured on an H200 (2026-11-28): a cold process takes
# 60-110 s to its first epoch (torch.compile, the decode cache), so 180 s measured nothing.
BENCH_SECONDS = 300.0
SWEEP_SHARE = 0.5  # once every 100x seed-0 row exists, the results runs get half the time left and the sweep the rest
MIN_SWEEP_SECONDS = 120.0  # a sweep shorter than this ends before ASHA's first rung: not worth starting
PERF_DIR = Path("docs") / "perf"  # benchmark JSON brought back by leases: the sources of PERFORMANCE.md's GPU figures
RESULTS_DIR = Path("results")
SWEEP_SPEC = Path("search_spaces") / "hybrid.yaml"
SWEEPS_DIR = RESULTS_DIR / "sweeps"  # what leases brought back of the sweep: trials.parquet, mlflow.db, log
WHEELHOUSE = Path(".gpuwhl")
DATA_COPY = Path(".gpudata")
RESULTS_KIND = "results"  # a docs/perf/ document measured by a lease's results runs rather than its benchmark
WORKERS_KIND = "workers"  # a docs/perf/ document of benchmarks.workers: K trials per GPU, each way
WORKERS_SECONDS = 240.0  # the workers benchmark's share of a lease: streams and fused at K 1..32, processes at 1 and 8
WORKERS_KS = (1, 4, 8, 16, 32)
WORKERS_PROCESS_KS = (1, 8)  # K cold processes (torch.compile each) cost a minute to start: two points are the yardstick
STREAMING_KIND = "streaming"  # a docs/perf/ document of benchmarks.streaming: the image-file pipeline against PIL
# The streaming benchmark's share of a lease: 2048 JPEGs written, then a warm-up and three timed passes of each
# pipeline (8 DataLoader workers each); not yet run on a GPU, so a guess with room.
STREAMING_SECONDS = 90.0
DATA_PARALLEL_KIND = "data_parallel"  # a docs/perf/ document of benchmarks.data_parallel: one run over 1..N GPUs
# Its share of a lease: process start-up (CUDA, NCCL) and two short epochs per world size, four sizes at most.
DATA_PARALLEL_SECONDS = 150.0
LENT_GPUS = 1  # GPUs of the machines lent to leases today (nvidia-h100-x1, nvidia-h200: the device README)
STREAMING_IMAGES = 2048
STREAMING_WORKERS = 8
EPOCHS = 200  # every CIFAR results row trains 200 epochs (the headline rows 100; a lease runs none: waiting_for_data)
# Order of the results runs of each CIFAR dataset: 100x seed 0, then seeds 1 and 2, then 50x and 10x (seed 0 first).
# A headline row has one imbalance, its published ratio, and takes the seeds of the first (seed 0 of every row first).
RUN_ORDER: tuple[tuple[int, tuple[int, ...]], ...] = ((100, (0,)), (100, (1, 2)), (50, (0,)), (10, (0,)), (50, (1, 2)), (10, (1, 2)))
# Before any GPU figure exists: the project's targets (0.4 s per epoch alone; 200,000 images/s summed
# over packed trials, i.e. 8 CIFAR-10-LT-100 runs of 12,406 images at 0.5 s per epoch), doubled.
ASSUMED_EPOCH_SECONDS = {1: 0.8, 8: 1.0}
ASSUMED_STARTUP_SECONDS = 60.0  # process start, data load, FLOP count and torch.compile before the first epoch


@dataclass
class Timing:
    """Seconds per epoch of one results run (with evaluation) when `parallel` run together on one GPU."""

    epoch_seconds: dict[int, float]
    source: str  # which figure it comes from, or that it is assumed
    startup_seconds: float = ASSUMED_STARTUP_SECONDS  # what a run costs before its epochs (the first epoch's extra time)

    @property
    def parallel(self) -> int:
        """How many at once give the most epochs per second in all."""
        return max(self.epoch_seconds, key=lambda p: p / self.epoch_seconds[p])

    def run_seconds(self, epochs_left: int, parallel: int | None = None) -> float:
        return self.startup_seconds + epochs_left * self.epoch_seconds[parallel or self.parallel]


@dataclass
class Step:
    name: str  # check | workers | streaming | bench | results | sweep
    seconds: float  # expected
    what: str  # one line for the plan
    runs: list[Run] = field(default_factory=list)  # runs expected to finish
    fillers: list[Run] = field(default_factory=list)  # runs expected to be cut at the deadline, to resume next lease
    skipped: str | None = None  # why it will not run
    waiting: str | None = None  # one line: runs this lease cannot start, and what they wait for


def gpu_figures(repo: Path) -> list[dict[str, Any]]:
    """Benchmark files of docs/perf/ measured on a GPU, oldest first."""
    found = []
    for path in sorted((repo / PERF_DIR).glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):  # unreadable or not JSON: not a figure
            continue
        if isinstance(doc, dict) and "cuda" in str(doc.get("device_type", "")):
            found.append({**doc, "file": path.name})
    return found


def workers_figures(repo: Path) -> list[dict[str, Any]]:
    """The workers benchmarks of docs/perf/ measured on a GPU that measured something."""
    return [doc for doc in gpu_figures(repo) if doc.get("kind") == WORKERS_KIND
            and any(line.get("summed_train_images_per_second") for line in doc.get("lines", []))]


def workers_due(repo: Path) -> bool:
    """No GPU has measured the workers yet: the lease measures them first (issue 22), before the results runs."""
    return not workers_figures(repo)


def streaming_figures(repo: Path) -> list[dict[str, Any]]:
    """The streaming benchmarks of docs/perf/ measured on a GPU that timed both pipelines."""
    return [doc for doc in gpu_figures(repo) if doc.get("kind") == STREAMING_KIND
            and isinstance(doc.get("images_per_second"), dict)
            and all(doc["images_per_second"].get(name) for name in ("streamed", "pil"))]


def streaming_due(repo: Path) -> bool:
    """No GPU has timed the image-file pipeline yet: the lease does, once, after the workers."""
    return not streaming_figures(repo)


def data_parallel_due(repo: Path) -> bool:
    """No machine with several GPUs has measured one run spread over them yet (issue 32)."""
    return not any(doc.get("kind") == DATA_PARALLEL_KIND and doc.get("lines") for doc in gpu_figures(repo))


def data_parallel_worlds(gpus: int) -> list[int]:
    """World sizes to measure on a machine of `gpus` GPUs: 1, then doubling, and all of them."""
    worlds = [1]
    while worlds[-1] * 2 < gpus:
        worlds.append(worlds[-1] * 2)
    return worlds + [gpus] if gpus > 1 else worlds


def bench_figures(repo: Path) -> list[dict[str, Any]]:
    """The GPU benchmarks of docs/perf/ that measured something (one cut before any figure does not count)."""
    return [doc for doc in gpu_figures(repo) if doc.get("kind") not in (RESULTS_KIND, WORKERS_KIND, STREAMING_KIND,
                                                                        DATA_PARALLEL_KIND)
            and ((doc.get("trainables_bench") or {}).get("fast", {}).get("epoch_seconds")
                 or any(v.get("complete") for v in (doc.get("packed") or {}).values()))]


def bench_due(repo: Path, rows: list[str] | None = None, common: list[str] | None = None) -> bool:
    """No benchmark figure yet, and the 100x seed-0 rows (issue 15's first goal) are done."""
    return not bench_figures(repo) and first_rows_done(repo, rows, common)


def timing(repo: Path, measured: dict[str, Any] | None = None) -> Timing:
    """Per-epoch times from this lease's benchmark, else the latest in docs/perf/ (a benchmark's or the
    results runs' own), else the assumption."""
    for doc in ([measured] if measured else []) + list(reversed(gpu_figures(repo))):
        packed = {int(p): float(v["epoch_seconds"]) for p, v in (doc.get("packed") or {}).items() if v.get("epoch_seconds")}
        fast = (doc.get("trainables_bench") or {}).get("fast", {})
        if fast.get("epoch_seconds"):
            packed.setdefault(1, float(fast["epoch_seconds"]))
        if packed:
            startup = (fast["first_epoch_seconds"] - fast["epoch_seconds"] if fast.get("first_epoch_seconds")
                       else ASSUMED_STARTUP_SECONDS)
            return Timing(packed, f"measured on {doc.get('device', 'a GPU')} on {doc.get('date', '?')}", max(startup, 0.0))
    return Timing(dict(ASSUMED_EPOCH_SECONDS), "assumed from the targets (no GPU figure yet)")


def epochs_left(run: Run, repo: Path, epochs: int = EPOCHS) -> int:
    """Epochs a run of `epochs` still needs after its checkpoint in results/partial/."""
    return epochs - run.files(repo / RESULTS_DIR).checkpoint_epoch()


def carries(repo: Path, dataset: str) -> bool:
    """Whether the lease's data folder (DATA_COPY) gives runs on `dataset` their images.

    On the GPU machine the runs read DATA_COPY only (scripts/gpu_lease.sh sets TUNER_DATA_DIR to it)
    and nothing can be downloaded. `--prepare` always writes CIFAR-10 there (train.parquet and
    test.parquet, from ../shared/data/cifar10), and synthetic data needs no files; nothing writes
    CIFAR-100, so it counts as carried only where trainables/data/sources.py would find it in that
    folder: torchvision's `cifar-100-python/`, or a Parquet pair one folder down,
    `cifar100/train.parquet` and `cifar100/test.parquet` (the pair at the top is CIFAR-10's).
    The headline tables' sets count where their training list is (`train_list`); in practice never:
    ImageNet-LT's training images alone are over 10 GB, and a device call carries 64 MiB.
    The plan (here) and the lease (there) read the same folder: the one the device call carries.
    """
    if dataset in ("cifar10", "synthetic"):
        return True
    if dataset in HEADLINE_DATASETS:
        return (repo / train_list(dataset)).is_file()
    folder = repo / DATA_COPY
    return (folder / TORCHVISION_FOLDERS[dataset]).is_dir() or \
        all((folder / dataset / name).is_file() for name in ("train.parquet", "test.parquet"))


def train_list(dataset: str) -> Path:
    """Where the lease's data holds a headline set's training list: trainables/data/image_lists.py reads
    TUNER_DATA_DIR/<dataset>/, and on the GPU machine TUNER_DATA_DIR is DATA_COPY."""
    return DATA_COPY / dataset / (SPLIT_FILES[dataset].format(split="train") if dataset in SPLIT_FILES else INAT_FILES["train"])


def _not_done(repo: Path, rows: list[str] | None, common: list[str] | None,
              order: tuple[tuple[int, tuple[int, ...]], ...]) -> list[Run]:
    """The results runs not done yet, in rows.DATASETS' order (every CIFAR-10 row's before any CIFAR-100 row's,
    the headline rows' last), each dataset's in `order`: a headline row at its published ratio with the seeds
    `order` gives its first imbalance."""
    keys = rows or [r.key for r in ROWS]
    headline = [k for k in keys if ROWS_BY_KEY[k].dataset in HEADLINE_DATASETS]
    queue = []
    for imbalance, seeds in order:
        queue += row_runs(keys, [float(imbalance)], list(seeds), common or [])  # a headline row: none (not its ratio)
        if imbalance == order[0][0]:
            queue += row_runs(headline, None, list(seeds), common or [])
    queue = [r for r in queue if not r.files(repo / RESULTS_DIR).done()]
    return sorted(queue, key=lambda r: list(DATASETS).index(ROWS_BY_KEY[r.row].dataset))  # stable: `order` within each


def result_queue(repo: Path, rows: list[str] | None = None, common: list[str] | None = None,
                 order: tuple[tuple[int, tuple[int, ...]], ...] = RUN_ORDER) -> list[Run]:
    """The results runs not done yet that the lease's data lets it run, in the order a lease runs them."""
    return [r for r in _not_done(repo, rows, common, order) if carries(repo, r.dataset)]


def waiting_for_data(repo: Path, rows: list[str] | None = None, common: list[str] | None = None) -> str | None:
    """One line on the runs not done yet that the lease's data does not let it run (None: there are none)."""
    held = [r for r in _not_done(repo, rows, common, RUN_ORDER) if not carries(repo, r.dataset)]
    parts = []
    for dataset, name in DATASETS.items():
        if dataset not in HEADLINE_DATASETS and (n := sum(r.dataset == dataset for r in held)):
            parts.append(f"{n} {name}-LT runs wait for a {name} copy in the lease's data ({DATA_COPY}/"
                         f"{TORCHVISION_FOLDERS[dataset]}/ or {DATA_COPY}/{dataset}/train.parquet and test.parquet)")
    # The headline tables' runs: a lease cannot carry their data, and on its one GPU a 100-epoch ResNet-50 run on
    # ImageNet-LT would take many leases (the paper trained on a DGX-1, eight V100s).
    if headline := [r for r in held if r.dataset in HEADLINE_DATASETS]:
        datasets = [d for d in HEADLINE_DATASETS if any(r.dataset == d for r in headline)]
        backbones = dict.fromkeys(ROWS_BY_KEY[r.row].backbone for r in headline)
        parts.append(f"{len(headline)} headline-table runs ({' / '.join(backbones)} on {', '.join(map(long_tailed_name, datasets))}) "
                     f"need a multi-GPU machine (the paper's: eight V100s) with the dataset on its disk, not a lease "
                     f"(no {', '.join(str(train_list(d)) for d in datasets)})")
    return "; ".join(parts) or None


def first_rows_done(repo: Path, rows: list[str] | None = None, common: list[str] | None = None) -> bool:
    """Every CIFAR-10 row (the sweep's data) at 100x, seed 0, has finished: the sweep's turn has come."""
    imbalance, seeds = RUN_ORDER[0]
    keys = [k for k in rows or [r.key for r in ROWS] if ROWS_BY_KEY[k].dataset == "cifar10"]
    return all(r.files(repo / RESULTS_DIR).done() for r in row_runs(keys, [float(imbalance)], list(seeds), common or []))


def plan(repo: Path, budget: float = DEFAULT_BUDGET, bench: bool | None = None, rows: list[str] | None = None,
         common: list[str] | None = None, sweep_spec: Path = SWEEP_SPEC, epochs: int = EPOCHS,
         workers: bool | None = None, streaming: bool | None = None, gpus: int = LENT_GPUS) -> list[Step]:
    """The lease's steps with their expected seconds; `bench` None: benchmark while no GPU figure exists;
    `workers` None: measure the workers while no GPU has; `streaming` None: time the image-file pipeline
    while no GPU has; `gpus`: the lease machine's (the data-parallel step needs two or more)."""
    left = budget - PACK_SECONDS
    steps = [Step("check", 10.0, "AutoAugment table and operations against this machine's torchvision")]
    left -= 10.0
    if workers if workers is not None else workers_due(repo):
        steps.append(Step("workers", WORKERS_SECONDS, "benchmark: K trials per GPU (python -m benchmarks.workers: "
                                                      "streams, fused and processes, hybrid_m4 and ldam_drw)"))
        left -= WORKERS_SECONDS
    if streaming if streaming is not None else streaming_due(repo):
        steps.append(Step("streaming", STREAMING_SECONDS, "benchmark: the image-file pipeline at 224 (torchvision.io + nvJPEG "
                                                          "on the GPU) against a plain DataLoader with PIL "
                                                          "(python -m benchmarks.streaming)"))
        left -= STREAMING_SECONDS
    if data_parallel_due(repo):
        over = ", ".join(map(str, data_parallel_worlds(gpus))) if gpus > 1 else "1, 2, 4, ... (every one)"
        what = f"benchmark: one run over {over} GPUs (python -m benchmarks.data_parallel: NCCL, hybrid_m4 on the global batch 256)"
        skipped = None if gpus > 1 else f"needs a machine with 2 or more GPUs (this plan's has {gpus}; --gpus N)"
        steps.append(Step(DATA_PARALLEL_KIND, DATA_PARALLEL_SECONDS if skipped is None else 0.0, what, skipped=skipped))
        left -= steps[-1].seconds
    if bench is None:
        bench = bench_due(repo, rows, common)
    if bench:
        steps.append(Step("bench", BENCH_SECONDS, "benchmark: fast path against the plain recipe (hybrid_m4, CIFAR-10-LT-100), "
                                                  "packed runs (4, 8, 16 at once), batched AutoAugment on CUDA"))
        left -= BENCH_SECONDS
    t = timing(repo)
    queue = result_queue(repo, rows, common)
    waiting = waiting_for_data(repo, rows, common)
    sweep_turn = first_rows_done(repo, rows, common)
    results_left = left * SWEEP_SHARE if sweep_turn else left
    fitting, slots = [], [0.0] * t.parallel
    for run in queue:  # fill the parallel slots in order; a run goes where it can finish soonest
        i = min(range(len(slots)), key=slots.__getitem__)
        need = t.run_seconds(epochs_left(run, repo, epochs))
        if slots[i] + need > results_left:
            continue
        slots[i] += need
        fitting.append(run)
    # Slots that would idle take the next runs anyway (at most one per slot): they are cut at the
    # deadline and come back as checkpoints that the next lease resumes (tuner.reproduce.execute).
    fillers = [r for r in queue if r not in fitting][: t.parallel]
    if queue:
        what = (f"{len(queue)} results runs still to do, {len(fitting)} of them to the end in this lease, {t.parallel} at once, "
                f"{t.epoch_seconds[t.parallel]:.2f} s per epoch each ({t.source})"
                + (f"; then {len(fillers)} more fill idle slots until the deadline and resume next lease" if fillers else ""))
    else:
        what = "every results run is done" if waiting is None else "every results run the lease's data allows is done"
    steps.append(Step("results", results_left if fillers else (max(slots) if fitting else 0.0), what, fitting, fillers,
                      None if queue else "nothing to run", waiting))
    left -= steps[-1].seconds
    if not sweep_turn:
        reason = "waits for every CIFAR-10-LT 100x seed-0 results row (until then the results runs take the lease)"
    elif left < MIN_SWEEP_SECONDS:
        reason = f"too little time left ({left:.0f} s < {MIN_SWEEP_SECONDS:.0f} s)"
    else:
        reason = None
    steps.append(Step("sweep", max(left, 0.0) if reason is None else 0.0,
                      f"{sweep_spec} under Ray Tune with the time left (needs {WHEELHOUSE}/ carried)", skipped=reason))
    return steps


def carry_needed(steps: list[Step]) -> list[str]:
    """What the device call must carry for these steps."""
    carry = [str(DATA_COPY)]
    if any(s.name == "sweep" and s.skipped is None for s in steps):
        carry.append(str(WHEELHOUSE))
    return carry


def describe(steps: list[Step], budget: float) -> str:
    lines = [f"The next GPU lease ({budget:.0f} s of work, {PACK_SECONDS:.0f} s to pack what it made):"]
    for i, step in enumerate(steps, 1):
        when = f"skipped: {step.skipped}" if step.skipped else f"~{step.seconds:.0f} s"
        lines.append(f"{i}. {step.name}: {step.what} [{when}]")
        lines += [f"   {step.waiting}; not scheduled"] if step.waiting else []
        lines += [f"     {run.name}" for run in step.runs]
        lines += [f"     {run.name}  (cut at the deadline; resumes next lease)" for run in step.fillers]
    lines.append(f"Carry: {', '.join(carry_needed(steps))}  (bash scripts/gpu_lease.sh --prepare makes them)")
    return "\n".join(lines)
