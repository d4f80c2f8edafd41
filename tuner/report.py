"""Report on a finished (or running) sweep: leaderboard, Parquet, plots, and optionally an ensemble.

    python -m tuner.report smoke                       # experiments/smoke, as launched from here
    python -m tuner.report experiments/smoke --top 5 --out report/
    python -m tuner.report search_spaces/hybrid.yaml --ensemble 3

Prints a leaderboard (rank, searched values, val_acc, test_acc, many/medium/few, flops_ratio,
epochs, status); writes `report.parquet` (all trials plus rank, Pareto-front membership and the
searched values as `param.*`), `accuracy_vs_flops.png` (every trial, and the val_acc/flops_ratio
Pareto front of the completed trials as a staircase; stopped ones apart), `learning_curves.png`
(the top K, every other trial faded), `group_accuracy.png` (top K), `threshold_curve.png`
(the best trial's saved model evaluated once, over a grid of inference thresholds: no retraining),
and logs all of them to the sweep's MLflow parent run under `report/`.

--ensemble K averages the softmax outputs of the top K trials' models (each at its own exit and
threshold), evaluates the ensemble on the same validation and test images, logs it as its own
MLflow run under the sweep, and registers it when its val_acc beats the best single trial's.
Exit 2 when the sweep cannot be found.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from trainables.cli import OneLineParser, first_line
from trainables.names import COMPLETED, RESULT_METRICS
from tuner.sweep.experiment import read_state
from tuner.sweep.trials_table import config_of, ranked, train_config_of
from tuner.trial.trainable import CHECKPOINT_FILE

METRICS = RESULT_METRICS


class ReportError(RuntimeError):
    pass


def locate(target: str) -> Path:
    """The experiment folder for a folder path, a spec file, or a sweep name under ./experiments."""
    path = Path(target).expanduser()
    candidates = []
    if path.suffix in (".yaml", ".yml") and path.is_file():
        from tuner.spec.schema import load_spec
        from tuner.sweep.experiment import experiment_uri

        exp = experiment_uri(load_spec(path))
        if "://" in exp:
            raise ReportError(f"{target}: the sweep lives at {exp}; copy it locally and pass the folder")
        candidates.append(Path(exp))
    else:
        candidates += [path, Path("experiments") / target]
    for c in candidates:
        if (c / "trials.parquet").is_file():
            return c.resolve()
    raise ReportError(f"no finished sweep at {' or '.join(str(c) for c in candidates)} (no trials.parquet); "
                      "pass the experiment folder, the spec file, or the name of a sweep run from this folder")


def pareto_front(rows: list[dict[str, Any]]) -> set[str]:
    """Completed trials no other completed trial beats on both val_acc (higher) and flops_ratio (lower).

    Only trials of one fidelity compare: a trial the scheduler stopped was measured after fewer
    epochs, and joining it to the front would set an early, low accuracy against a finished one."""
    pts = [r for r in rows if r["status"] == COMPLETED and _finite(r.get("val_acc")) and _finite(r.get("flops_ratio"))]
    front = set()
    for r in pts:
        dominated = any(o["val_acc"] >= r["val_acc"] and o["flops_ratio"] <= r["flops_ratio"]
                        and (o["val_acc"] > r["val_acc"] or o["flops_ratio"] < r["flops_ratio"]) for o in pts)
        if not dominated:
            front.add(r["trial_id"])
    return front


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def add_derived(rows: list[dict[str, Any]], searched: list[str]) -> list[dict[str, Any]]:
    """rank (1 = best val_acc among completed/stopped trials; None otherwise), on_pareto_front, param.*."""
    front = pareto_front(rows)
    ranks = {r["trial_id"]: i + 1 for i, r in enumerate(ranked(rows))}
    out = []
    for r in rows:
        d = dict(r)
        d["rank"] = ranks.get(r["trial_id"])
        d["on_pareto_front"] = r["trial_id"] in front
        d.update({f"param.{p}": r.get(f"config.{p}") for p in searched})
        out.append(d)
    return sorted(out, key=lambda r: (r["rank"] is None, r["rank"] or 0, r["trial_id"]))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.4f}".rstrip("0").rstrip(".")
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v)) or "[]"
    return str(v)


def leaderboard(rows: list[dict[str, Any]], searched: list[str], limit: int | None = None) -> str:
    cols = ["rank", "trial_id", *[f"param.{p}" for p in searched], *METRICS, "epochs_run", "status"]
    heads = ["rank", "trial", *searched, "val_acc", "test_acc", "many", "medium", "few", "flops", "epochs", "status"]
    body = [[_fmt(r.get(c)) for c in cols] for r in rows[:limit]]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(heads)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(heads), line(["-" * w for w in widths]), *map(line, body)])


class SweepTrials:
    """A sweep's trials through Ray Tune's public ExperimentAnalysis: each one's last checkpoint and
    its per-epoch val_acc (after a retry, the later value of an epoch wins)."""

    def __init__(self, exp: Path):
        from ray.tune import ExperimentAnalysis

        self.analysis = ExperimentAnalysis(str(exp))
        self.by_id = {t.trial_id: t for t in self.analysis.trials}

    def last_checkpoint(self, trial_id: str) -> Path | None:
        trial = self.by_id.get(trial_id)
        checkpoint = self.analysis.get_last_checkpoint(trial) if trial is not None else None
        return Path(checkpoint.path) / CHECKPOINT_FILE if checkpoint is not None else None

    def history(self, trial_id: str) -> list[tuple[int, float]]:
        frame = self.analysis.trial_dataframes.get(trial_id)
        if frame is None or frame.empty or not {"epoch", "val_acc"} <= set(frame.columns):
            return []
        by_epoch = {int(e): float(v) for e, v in zip(frame["epoch"], frame["val_acc"]) if _finite(v) and _finite(e)}
        return sorted(by_epoch.items())


def threshold_study(trials: SweepTrials, best: dict[str, Any]) -> tuple[list[dict], Any] | None:
    """(curve, data): the best trial's saved model on its validation/test images over a grid of thresholds."""
    from trainables.data.datasets import load_long_tailed
    from trainables.data.sources import DataNotFoundError
    from trainables.evaluate import evaluate
    from trainables.flops import exit_flops, reference_flops
    from tuner.tracking.winner import build_served

    state = trials.last_checkpoint(best["trial_id"])
    if state is None:
        return None
    served, config = build_served(config_of(best), state)
    try:
        data = load_long_tailed(config)
    except DataNotFoundError as exc:
        print(f"tuner.report: threshold curve skipped: {exc}", file=sys.stderr)
        return None
    grid = tuple(round(0.02 * i, 2) for i in range(1, 51))
    result = evaluate(served.model, (data.val_images, data.val_labels), (data.test_images, data.test_labels), data.groups,
                      (served.threshold,), exit_flops(served.model), reference_flops(data.num_classes),
                      config.exit_confidence_scale, grid, batch_size=256)
    return result.get("threshold_curve", []), data


def build_ensemble(trials: SweepTrials, members: list[dict[str, Any]], data) -> tuple[Any, dict[str, Any]]:
    """The top trials' models averaged, and its metrics on the same validation and test images."""
    from trainables.flops import exit_flops, reference_flops
    from trainables.inference import ExitEnsemble, evaluate_ensemble
    from tuner.tracking.winner import build_served

    served = []
    for m in members:
        state = trials.last_checkpoint(m["trial_id"])
        if state is None:
            raise ReportError(f"trial {m['trial_id']} has no checkpoint in {trials.analysis.experiment_path}")
        served.append(build_served(config_of(m), state)[0])
    ensemble = ExitEnsemble(served, data.class_names)
    metrics = evaluate_ensemble(ensemble, (data.val_images, data.val_labels), (data.test_images, data.test_labels), data.groups,
                                [exit_flops(m.model) for m in served], reference_flops(data.num_classes))
    return ensemble, metrics


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m tuner.report", description=__doc__.split("\n\n")[0])
    p.add_argument("target", metavar="NAME_OR_PATH", help="experiment folder, spec file, or sweep name")
    p.add_argument("--top", type=int, default=5, help="trials in the leaderboard and per-trial plots")
    p.add_argument("--out", help="folder for the report's files (default: the experiment folder)")
    p.add_argument("--ensemble", type=int, default=0, metavar="K", help="also build the top-K ensemble")
    p.add_argument("--no-mlflow", action="store_true", help="do not log the report to MLflow")
    args = p.parse_args(argv)
    from tuner.quiet import quiet_logs

    quiet_logs(False)
    try:
        exp = locate(args.target)
        if args.top < 1 or args.ensemble < 0:
            raise ReportError("--top must be >= 1 and --ensemble >= 0")
        return run_report(exp, args)
    except ReportError as exc:
        print(f"tuner.report: {exc}", file=sys.stderr)
        return 2


def run_report(exp: Path, args: argparse.Namespace) -> int:
    from tuner import report_plots

    try:
        table = pq.read_table(exp / "trials.parquet")
    except Exception as exc:  # noqa: BLE001 - whatever pyarrow makes of a damaged file
        raise ReportError(f"{exp / 'trials.parquet'} is damaged ({first_line(exc, 120)}); rerun the sweep's "
                          "launch command: for a finished sweep it remakes the table from Ray Tune's saved results, "
                          "without training or registering anything") from None
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    searched = json.loads(meta.get("searched", "[]"))
    rows = add_derived(table.to_pylist(), searched)
    out = Path(args.out or exp).resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(leaderboard(rows, searched, args.top if len(rows) > 3 * args.top else None))

    files = [out / "report.parquet", out / "leaderboard.txt"]
    pq.write_table(pa.Table.from_pylist(rows).replace_schema_metadata(table.schema.metadata), files[0])
    files[1].write_text(leaderboard(rows, searched) + "\n")
    leaders = [r for r in rows if r["rank"] is not None]
    top = leaders[: args.top]
    front = [r for r in rows if r["on_pareto_front"]]
    files.append(report_plots.accuracy_vs_flops(rows, front, out / "accuracy_vs_flops.png"))
    trials = SweepTrials(exp)
    drawn = [r for r in leaders if r["status"] == COMPLETED][: args.top]  # one fidelity: trials that ran every epoch
    drawn_ids = {r["trial_id"] for r in drawn}
    files.append(report_plots.learning_curves(
        {f"#{r['rank']} {r.get('trial_name') or r['trial_id']}": trials.history(r["trial_id"]) for r in drawn},
        [(r["status"], trials.history(r["trial_id"])) for r in rows if r["trial_id"] not in drawn_ids],
        out / "learning_curves.png"))
    files.append(report_plots.group_bars(top, out / "group_accuracy.png"))
    study = threshold_study(trials, top[0]) if top else None
    if study is not None:
        curve, _ = study
        (out / "threshold_curve.json").write_text(json.dumps(curve, indent=1))
        files.append(out / "threshold_curve.json")
        if curve:
            files.append(report_plots.threshold_curve(
                curve, top[0].get("inference_threshold_used") or top[0]["config.inference_exit_threshold"],
                f"Best trial {top[0]['trial_id']} ({meta.get('sweep', exp.name)}): inference threshold study", out / "threshold_curve.png"))
    state = read_state(str(exp)) or {}
    uri = os.environ.get("MLFLOW_TRACKING_URI") or state.get("tracking_uri")
    ensemble_info = None
    if args.ensemble:
        if len(leaders) < 2 or args.ensemble < 2:
            raise ReportError(f"--ensemble needs at least 2 usable trials and K >= 2 (have {len(leaders)})")
        members = leaders[: args.ensemble]
        if study:
            data = study[1]
        else:
            from trainables.data.datasets import load_long_tailed

            data = load_long_tailed(train_config_of(members[0]))
        ensemble, metrics = build_ensemble(trials, members, data)
        ensemble_info = {**metrics, "member_trials": [m["trial_id"] for m in members]}
        print(f"tuner.report: ensemble of {len(members)}: val_acc {metrics['val_acc']:.4f}, test_acc {metrics['test_acc']:.4f}, "
              f"flops_ratio {metrics['flops_ratio']:.3f} (best single: val_acc {leaders[0]['val_acc']:.4f}, "
              f"test_acc {leaders[0]['test_acc']:.4f})")
        (out / "ensemble.json").write_text(json.dumps(ensemble_info, indent=1))
        files.append(out / "ensemble.json")
    if not args.no_mlflow and uri and state.get("parent_run_id"):
        from tuner.tracking import TrackingUnreachable, check_reachable
        from tuner.tracking.report_run import log_report

        try:
            check_reachable(uri)
        except TrackingUnreachable as exc:
            raise ReportError(f"tracking: {exc}; the report's files are in {out} (rerun with --no-mlflow to skip MLflow)") from None

        members = leaders[: args.ensemble] if args.ensemble else []
        registered = log_report(uri, state["parent_run_id"], meta.get("sweep", exp.name), files, ensemble_info,
                                ensemble if args.ensemble else None, leaders[0]["val_acc"] if leaders else None,
                                [config_of(m) for m in members])
        if registered:
            print(f"tuner.report: the ensemble beats the best single trial on val_acc: registered as "
                  f"{registered['registered_model']} version {registered['version']}")
    print(f"tuner.report: {len(rows)} trials; files in {out}: {', '.join(f.name for f in files)}")
    if uri and state.get("parent_run_id") and state.get("experiment_id"):
        from tuner.tracking.ui_link import ui_lines

        objective = json.loads(meta.get("objective", "{}"))
        metric, mode = (objective.get("metrics") or ["val_acc"])[0], (objective.get("modes") or ["max"])[0]
        for line in ui_lines(uri, state["experiment_id"], state["parent_run_id"], metric, mode):
            print(f"tuner.report: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
