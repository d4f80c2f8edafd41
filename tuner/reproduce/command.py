"""Run the rows of docs/RESULTS.md (and the sweep's best trial, retrained), resumably, several at once.

    python -m tuner.reproduce --plan
    python -m tuner.reproduce --imbalance 100 --seeds 0 1 2 --parallel 8 --device cuda --time-budget 600
    python -m tuner.reproduce --rows ldam_drw_c100 elf_ldam_drw_c100 --imbalance 100 --device cuda
    python -m tuner.reproduce --rows r50_ldam_drw_inlt r50_elf_ldam_drw_inlt --device cuda
    python -m tuner.reproduce --from-sweep hybrid --seeds 1 2 --device cuda
    python -m tuner.reproduce.tables results --out docs/RESULTS.md

Each run is `python -m trainables.train` on its row's dataset (`--set dataset=...`; a `--set
dataset=...` here wins, as for quick checks), one per seed at each of its row's imbalances (those of
--imbalance, if given), its per-epoch JSON lines kept in results/{row}-ir{imbalance}-seed{seed}.jsonl.
Without --rows the CIFAR rows run; the headline rows (ImageNet-LT, iNaturalist'18: ResNet-50 and
DenseNet-169, each at its published ratio only) run when named, on a machine with their data on disk
(TUNER_DATA_DIR/<dataset>, or --set data_dir=...). A run is done when its file ends with the summary
line; done runs are skipped, so the command picks up where an interrupted one (Ctrl-C, SIGTERM, a
lost machine, the time budget) stopped. An unfinished run resumes from its checkpoint, saved after
every epoch in results/partial/ beside its lines so far (`.jsonl.part`); both go when the run
finishes (tuner/reproduce/run_file.py). Runs share the device (`--parallel`): a CIFAR ResNet-32
leaves most of a GPU idle. Exit 0, 1 when a run failed, 2 for bad input, 130/143 when stopped by
SIGINT/SIGTERM (every run keeps its checkpoint; rerun to resume).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trainables.cli import BadArgument, OneLineParser, key_values
from trainables.config import ConfigError, with_overrides
from trainables.names import OBJECTIVE
from trainables.presets import build_preset
from tuner.exit_codes import ExitCode
from tuner.reproduce.rows import HEADLINE_DATASETS, ROWS, ROWS_BY_KEY, SWEEP_BEST, long_tailed_name
from tuner.reproduce.run_file import RunFiles, run_name
from tuner.reproduce.supervisor import Stopped, Supervisor


class ReproduceError(Exception):
    """Bad input: one line, exit 2."""


@dataclass
class Run:
    row: str
    imbalance: float
    seed: int
    args: list[str]  # trainables.train arguments
    preset: str | None = None  # None: the run's config comes from a file (the sweep's best)
    dataset: str = "cifar10"  # what it trains on: its row's (the sweep's best: its trial's), unless a --set of `args` says otherwise

    @property
    def name(self) -> str:
        return run_name(self.row, self.imbalance, self.seed)

    def files(self, out: Path) -> RunFiles:
        return RunFiles(out, self.name)


def published_text(run: Run) -> str:
    """What the run is compared with: 'vs 80.44 (published ResLT, CIFAR-10-LT)', 'vs 50.80 (ELF paper, Table 1, ImageNet-LT)'."""
    row = ROWS_BY_KEY.get(run.row)
    number = row.published.get(int(run.imbalance)) if row else None
    if number is None:
        return "vs —"
    return f"vs {number:.2f} ({row.versus}, {long_tailed_name(row.dataset)})"


def set_value(args: list[str], key: str) -> str | None:
    """What the last `--set KEY=VALUE` of `args` gives KEY (a later one wins, as in trainables.train); None without one."""
    values = [item.partition("=")[2] for flag, item in zip(args, args[1:])
              if flag == "--set" and item.partition("=")[0].strip() == key]
    return values[-1] if values else None


def row_runs(keys: list[str], imbalances: list[float] | None, seeds: list[int], common: list[str]) -> list[Run]:
    """The runs of rows `keys` at those of `imbalances` each row has (None: all it has), one per seed."""
    runs = []
    for key in keys:
        row = ROWS_BY_KEY[key]
        # The row's dataset goes before `common`, so that a --set dataset=... there (quick checks) wins.
        data = ["--set", f"dataset={row.dataset}"]
        dataset = set_value(common, "dataset") or row.dataset
        for imbalance in sorted(row.presets, reverse=True) if imbalances is None else imbalances:
            if int(imbalance) not in row.presets:  # a headline row has its published ratio only
                continue
            preset = row.presets[int(imbalance)]
            for seed in seeds:
                runs.append(Run(key, imbalance, seed,
                                ["--preset", preset, "--imbalance", f"{imbalance:g}", "--seed", str(seed), *data, *common], preset,
                                dataset))
    return runs


def sweep_runs(target: str, seeds: list[int], out: Path, common: list[str]) -> list[Run]:
    """The sweep's best trial (by val_acc), its config written beside the results, one run per seed."""
    from tuner.sweep.experiment import ExperimentError, locate_experiment
    from tuner.sweep.trials_table import TableUnreadable, config_of, ranked, read_trials_table

    try:
        exp = locate_experiment(target)
        best = ranked(read_trials_table(exp).to_pylist())
    except (ExperimentError, TableUnreadable) as exc:
        raise ReproduceError(str(exc)) from None
    if not best:
        raise ReproduceError(f"{exp}: no completed or stopped trial to retrain")
    config = config_of(best[0])
    imbalance = float(config["imbalance_ratio"])
    config_file = out / f"{SWEEP_BEST}-ir{imbalance:g}.config.json"
    out.mkdir(parents=True, exist_ok=True)
    config_file.write_text(json.dumps({"sweep": str(exp), "trial_id": best[0]["trial_id"], OBJECTIVE: best[0][OBJECTIVE],
                                       "config": config}, indent=1, default=str) + "\n")
    dataset = set_value(common, "dataset") or str(config.get("dataset", Run.dataset))
    return [Run(SWEEP_BEST, imbalance, seed, ["--config", str(config_file), "--seed", str(seed), *common], dataset=dataset)
            for seed in seeds]


def check(run: Run, overrides: dict[str, str]) -> None:
    """Build the run's config here, so that a bad override fails before anything starts."""
    if run.preset is None:
        return  # its config came from a trial that ran
    try:
        build_preset(run.preset, **{"dataset": run.dataset, **overrides, "imbalance_ratio": run.imbalance, "seed": run.seed}).validate()
    except ConfigError as exc:
        raise ReproduceError(f"{run.name}: {exc}") from None


def threads_per_run(parallel: int) -> str:
    """OMP_NUM_THREADS of each of `parallel` runs sharing this machine: its cores split between them."""
    return str(max(1, (os.cpu_count() or 1) // parallel))


def _start(sup: Supervisor, run: Run, out: Path, threads: str):
    files = run.files(out)
    with files.open_lines() as stdout, open(files.errors, "w") as stderr:
        return sup.start([sys.executable, "-m", "trainables.train", *run.args, "--checkpoint", str(files.checkpoint)],
                         stdout=stdout, stderr=stderr, env={**os.environ, "OMP_NUM_THREADS": threads})


def execute(runs: list[Run], out: Path, parallel: int, budget: float | None,
            estimate: Callable[[Run], float] | None = None, unfinishable: int | None = None) -> dict[str, list[str]]:
    """Run what is not done yet, `parallel` at a time, within `budget` seconds.

    With `estimate` (seconds a run still needs), a run starts only when it can finish inside the
    budget, except for at most `unfinishable` runs (None: any number) that fill otherwise idle slots
    and resume later from their checkpoints. Returns the names of the runs that finished, failed,
    were cut by the budget (they keep their checkpoints) and were never started. On SIGINT or
    SIGTERM every run still going is stopped (each keeps its checkpoint) and `Stopped` is raised.
    """
    start = time.monotonic()
    waiting = [r for r in runs if not r.files(out).done()]
    running: list[tuple[Run, object, float]] = []
    ended: dict[str, list[str]] = {"finished": [], "failed": [], "cut": [], "not_started": []}
    spare = unfinishable
    threads = threads_per_run(parallel)
    with Supervisor() as sup:
        while waiting or running:
            elapsed = time.monotonic() - start
            over = budget is not None and elapsed > budget
            for run in list(waiting):
                if over or len(running) >= parallel:
                    break
                fits = budget is None or estimate is None or elapsed + estimate(run) <= budget
                if not fits:
                    if spare is not None and spare <= 0:
                        continue
                    spare = None if spare is None else spare - 1
                waiting.remove(run)
                running.append((run, _start(sup, run, out, threads), time.monotonic()))
                print(f"tuner.reproduce: started {run.name}" + ("" if fits else " (cannot finish in this budget: it will resume)"),
                      flush=True)
            if over or not running:  # over the budget, or nothing that is left can start
                ended["not_started"] += [r.name for r in waiting]
                waiting = []
            for run, proc, began in list(running):
                if over and proc.poll() is None:
                    sup.stop(proc)
                    ended["cut"].append(run.name)
                elif proc.poll() is None:
                    continue
                elif proc.returncode == 0 and run.files(out).finish():
                    ended["finished"].append(run.name)
                    print(f"tuner.reproduce: finished {run.name} in {time.monotonic() - began:.0f} s", flush=True)
                else:
                    ended["failed"].append(run.name)
                    print(f"tuner.reproduce: FAILED {run.name} (exit {proc.returncode}); see {run.files(out).errors}", flush=True)
                running.remove((run, proc, began))
            time.sleep(0.5 if running else 0.0)
    return ended


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m tuner.reproduce", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", nargs="+", choices=[r.key for r in ROWS],
                   help="rows to run (default: every CIFAR row, unless --from-sweep; name a headline row to run it)")
    p.add_argument("--imbalance", nargs="+", type=float, choices=sorted({i for r in ROWS for i in r.presets}, reverse=True),
                   help="only these imbalances (default: every one each row has)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--from-sweep", metavar="NAME_OR_PATH", help="also retrain this sweep's best trial with --seeds")
    p.add_argument("--epochs", type=int, help="override the presets' 200 (CIFAR) or 100 (headline rows): quick checks only")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--parallel", type=int, default=1, help="runs at once (on one GPU: 4-8)")
    p.add_argument("--time-budget", type=float, metavar="SECONDS", help="start nothing after this; stop what still runs")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    p.add_argument("--out", default="results", help="folder of the JSON lines (default: results)")
    p.add_argument("--plan", action="store_true", help="list the runs and whether each is done, then exit")
    args = p.parse_args(argv)
    try:
        if args.parallel < 1 or (args.epochs is not None and args.epochs < 1):
            raise ReproduceError("--parallel and --epochs must be at least 1")
        overrides = key_values(args.set)
        common = ["--device", args.device] + (["--epochs", str(args.epochs)] if args.epochs else [])
        common += [a for item in args.set for a in ("--set", item)]
        out = Path(args.out)
        keys = args.rows or ([] if args.from_sweep else [r.key for r in ROWS if r.dataset not in HEADLINE_DATASETS])
        runs = row_runs(keys, args.imbalance, args.seeds, common)
        if none := [k for k in keys if k not in {r.row for r in runs}]:  # e.g. a headline row at a CIFAR imbalance
            theirs = sorted({i for k in none for i in ROWS_BY_KEY[k].presets}, reverse=True)
            raise ReproduceError(f"rows {' '.join(none)}: no run at --imbalance {' '.join(f'{i:g}' for i in args.imbalance)} "
                                 f"(their imbalances: {', '.join(map(str, theirs))})")
        for run in runs:
            check(run, {**overrides, **({"epochs": args.epochs} if args.epochs else {})})
        if args.from_sweep:
            runs += sweep_runs(args.from_sweep, args.seeds, out, common)
            with_overrides(build_preset("ldam_drw"), overrides)  # the --set keys exist
    except (ReproduceError, ConfigError, BadArgument) as exc:
        print(f"tuner.reproduce: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    if args.plan:
        try:
            for run in runs:
                done = "done   " if run.files(out).done() else "to run "
                print(f"{done} {run.name:40s} {published_text(run):44s} python -m trainables.train {' '.join(run.args)}",
                      flush=True)
        except BrokenPipeError:  # `--plan | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    out.mkdir(parents=True, exist_ok=True)
    try:
        ended = execute(runs, out, args.parallel, args.time_budget)
    except Stopped as stop:
        print(f"tuner.reproduce: stopped ({stop}); every unfinished run keeps its checkpoint in {out / 'partial'}: "
              "rerun the same command to resume", file=sys.stderr)
        return stop.exit_code
    done = sum(r.files(out).done() for r in runs)
    print(f"tuner.reproduce: {done}/{len(runs)} runs done ({len(ended['finished'])} now), {len(ended['failed'])} failed, "
          f"{len(ended['cut']) + len(ended['not_started'])} left for later (time budget; {len(ended['cut'])} resume from "
          f"checkpoints); rebuild the tables with: python -m tuner.reproduce.tables {out}")
    return ExitCode.FAILED if ended["failed"] else ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
