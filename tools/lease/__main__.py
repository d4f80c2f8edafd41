"""GPU leases: plan the next one, run one, land what one brought back.

    python -m tools.lease plan                      what the next lease does, with expected times (any machine)
    python -m tools.lease run --out DIR             the lease itself, on the GPU machine (within --budget seconds)
    python -m tools.lease collect DIR               land the returned files here, rebuild the docs

scripts/gpu_lease.sh and scripts/gpu_collect.sh wrap these with the carrying and unpacking the
device machines need. The steps and their order: tools/lease/plan.py. Quick checks on a CPU take
the same options the CI test uses (--device cpu --epochs 1 --set dataset=synthetic ...).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tools.lease import plan as lease_plan
from trainables.cli import OneLineParser
from tuner.exit_codes import ExitCode


def _common(p: OneLineParser) -> None:
    p.add_argument("--repo", default=".", help="the project folder (default: here)")
    p.add_argument("--budget", type=float, default=lease_plan.DEFAULT_BUDGET, help="seconds the lease may take in all")
    p.add_argument("--rows", nargs="+", help="results rows to run (default: all of docs/RESULTS.md)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run (quick checks)")
    p.add_argument("--epochs", type=int, help="override the rows' 200 epochs (quick checks only)")
    p.add_argument("--device", default="cuda", help="cuda (the lease) or cpu (quick checks)")
    p.add_argument("--bench", action="store_true", default=None, help="benchmark even if docs/perf/ has GPU figures")
    p.add_argument("--no-bench", dest="bench", action="store_false", help="never benchmark")
    p.add_argument("--workers-bench", dest="workers", action="store_true", default=None,
                   help="measure the workers (benchmarks.workers) even if docs/perf/ has their GPU figures, or on a CPU")
    p.add_argument("--no-workers-bench", dest="workers", action="store_false", help="never measure the workers")
    p.add_argument("--streaming-bench", dest="streaming", action="store_true", default=None,
                   help="time the image-file pipeline (benchmarks.streaming) even if docs/perf/ has its GPU figure, or on a CPU")
    p.add_argument("--no-streaming-bench", dest="streaming", action="store_false", help="never time the image-file pipeline")
    p.add_argument("--workers-ks", nargs="+", type=int, default=list(lease_plan.WORKERS_KS), help="trials per worker to measure")
    p.add_argument("--gpus", type=int, default=None,
                   help=f"GPUs of the lease machine (plan: default {lease_plan.LENT_GPUS}, the lent kinds'; run: what it has)")
    p.add_argument("--sweep-spec", default=str(lease_plan.SWEEP_SPEC), help="the sweep of step 4")
    p.add_argument("--no-sweep", action="store_true", help="no sweep step")


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m tools.lease", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    plan_p = sub.add_parser("plan", help="print what the next lease does")
    _common(plan_p)
    run_p = sub.add_parser("run", help="run a lease (on the GPU machine)")
    _common(run_p)
    run_p.add_argument("--out", required=True, help="folder for the files to bring back (the device call's $OUT)")
    run_p.add_argument("--bench-epochs", type=int, default=3)
    run_p.add_argument("--packed", nargs="+", type=int, default=[4, 8, 16], help="runs at once to measure")
    collect_p = sub.add_parser("collect", help="land a lease's returned files in results/ and docs/")
    collect_p.add_argument("folder", help="the folder the device call's files came back to")
    collect_p.add_argument("--repo", default=".", help="the project folder (default: here)")
    args = p.parse_args(argv)
    repo = Path(args.repo)
    if args.command == "collect":
        from tools.lease.collect import CollectError, collect, summary_lines

        try:
            result = collect(Path(args.folder), repo)
        except CollectError as exc:
            print(f"tools.lease collect: {exc}", file=sys.stderr)
            return ExitCode.BAD_INPUT
        print("\n".join(summary_lines(result)))
        return 0
    if args.budget <= lease_plan.PACK_SECONDS + 10:
        print(f"tools.lease: --budget must exceed {lease_plan.PACK_SECONDS + 10:.0f} seconds", file=sys.stderr)
        return ExitCode.BAD_INPUT
    from tools.lease.run import LeaseOptions, run_lease, train_args, wants_bench, wants_streaming, wants_workers

    opts = LeaseOptions(budget=args.budget, device=args.device, rows=args.rows, sets=args.set, epochs=args.epochs,
                        bench=args.bench, sweep_spec=Path(args.sweep_spec), sweep=not args.no_sweep, workers=args.workers,
                        workers_ks=tuple(args.workers_ks), streaming=args.streaming, gpus=args.gpus)
    if args.command == "plan":
        steps = lease_plan.plan(repo, args.budget, wants_bench(opts, repo), args.rows, train_args(opts), opts.sweep_spec,
                                opts.epochs or lease_plan.EPOCHS, wants_workers(opts, repo), wants_streaming(opts, repo),
                                args.gpus or lease_plan.LENT_GPUS)
        if not opts.sweep:
            steps[-1].skipped, steps[-1].seconds = "--no-sweep", 0.0
        print(lease_plan.describe(steps, args.budget))
        return 0
    opts.bench_epochs, opts.packed = args.bench_epochs, tuple(args.packed)
    manifest = run_lease(repo, Path(args.out), opts)
    print(f"tools.lease: wrote {', '.join(manifest['files'])} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
