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
the search space's figures (tuner/report/importance.py: Optuna's parameter importances, also in
`importance.json` and report.parquet's metadata; `param_importance.png`, `param_slices.png`,
`parallel_coordinates.png`), how well each ASHA rung's ranking predicted the final one
(tuner/report/rung_correlation.py: in the leaderboard, `rung_correlation.json`, report.parquet's
metadata and the parent run's `rung_spearman_epoch_E` metrics), and logs all of them to the sweep's
MLflow parent run under `report/`.

--ensemble K averages the softmax outputs of the top K trials' models (each at its own exit and
threshold), evaluates the ensemble on the same validation and test images, logs it as its own
MLflow run under the sweep, and registers it when its val_acc beats the best single trial's.
Exit 2 when the sweep cannot be found.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from trainables.cli import OneLineParser, first_line
from trainables.names import COMPLETED, COST, OBJECTIVE, TEST_METRIC
from tuner.exit_codes import ExitCode
from tuner.report import plots, rung_correlation, search_plots
from tuner.report.importance import Importances, param_importances
from tuner.report.leaderboard import add_derived, leaderboard
from tuner.report.sweep_trials import ReportError, SweepTrials, build_ensemble, threshold_study
from tuner.spec.schema import Param
from tuner.spec.space import search_from_json
from tuner.sweep.experiment import ExperimentError, locate_experiment, read_state
from tuner.sweep.trials_table import TableUnreadable, config_of, read_trials_table, train_config_of


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
        exp = locate_experiment(args.target)
        if args.top < 1 or args.ensemble < 0:
            raise ReportError("--top must be >= 1 and --ensemble >= 0")
        return run_report(exp, top=args.top, out=Path(args.out) if args.out else None, ensemble=args.ensemble,
                          log_to_mlflow=not args.no_mlflow)
    except (ReportError, ExperimentError) as exc:
        print(f"tuner.report: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT


def run_report(exp: Path, top: int = 5, out: Path | None = None, ensemble: int = 0, log_to_mlflow: bool = True) -> int:
    """The report of the sweep in `exp`: files into `out` (default: `exp`), the top-`ensemble` ensemble
    when ensemble >= 2, everything logged to the sweep's MLflow parent run unless `log_to_mlflow` is off."""
    table, meta, searched = _read_trials(exp)
    rows = add_derived(table.to_pylist(), searched)
    out = (out or exp).resolve()
    out.mkdir(parents=True, exist_ok=True)
    trials = SweepTrials(exp)
    objectives = _objectives(meta)
    params = _search(meta)
    importances = _importances(rows, params, objectives, trials)
    correlations = rung_correlation.rung_correlations(rows, json.loads(meta.get("rungs", "[]")), trials.history, objectives[0][0])
    lines = importances.lines(objectives[0][0]) + rung_correlation.lines(correlations, objectives[0][0])
    print("\n".join([leaderboard(rows, searched, top if len(rows) > 3 * top else None), *lines]))
    files = [out / "report.parquet", out / "leaderboard.txt", out / "importance.json", out / "rung_correlation.json"]
    metadata = {**(table.schema.metadata or {}), b"importances": json.dumps(importances.to_json()).encode(),
                b"rung_correlation": json.dumps(rung_correlation.to_json(correlations)).encode()}
    pq.write_table(pa.Table.from_pylist(rows).replace_schema_metadata(metadata), files[0])
    files[1].write_text("\n".join([leaderboard(rows, searched), *lines]) + "\n")
    files[2].write_text(json.dumps(importances.to_json(), indent=1))
    files[3].write_text(json.dumps(rung_correlation.to_json(correlations), indent=1))
    leaders = [r for r in rows if r["rank"] is not None]
    files += _plots(rows, leaders[:top], trials, out)
    if params:
        drawn = leaders[:max(top, math.ceil(len(leaders) / 4))]  # the top quarter, and never fewer than --top
        files += [search_plots.importance_bars(importances, out / "param_importance.png"),
                  search_plots.slices(rows, params, objectives[0][0], out / "param_slices.png"),
                  search_plots.parallel_coordinates(drawn, params, objectives[0][0], out / "parallel_coordinates.png")]
    study = threshold_study(trials, leaders[0]) if leaders else None
    if study is not None:
        files += _threshold_files(study[0], leaders[0], meta.get("sweep", exp.name), out)
    members, built, ensemble_info = [], None, None
    if ensemble:
        if len(leaders) < 2 or ensemble < 2:
            raise ReportError(f"--ensemble needs at least 2 usable trials and K >= 2 (have {len(leaders)})")
        members = leaders[:ensemble]
        built, ensemble_info = _ensemble(trials, members, study[1] if study else None, leaders[0])
        (out / "ensemble.json").write_text(json.dumps(ensemble_info, indent=1))
        files.append(out / "ensemble.json")
    state = read_state(str(exp))
    uri = os.environ.get("MLFLOW_TRACKING_URI") or (state.tracking_uri if state else None)
    if log_to_mlflow and uri and state and state.parent_run_id:
        _log_to_mlflow(uri, state.parent_run_id, meta.get("sweep", exp.name), files, ensemble_info, built, leaders, members, out,
                       rung_correlation.mlflow_metrics(correlations))
    print(f"tuner.report: {len(rows)} trials; files in {out}: {', '.join(f.name for f in files)}")
    if uri and state and state.parent_run_id and state.experiment_id:
        from tuner.tracking.ui_link import ui_lines

        metric, mode = objectives[0]
        for line in ui_lines(uri, state.experiment_id, state.parent_run_id, metric, mode):
            print(f"tuner.report: {line}")
    return ExitCode.OK


def _read_trials(exp: Path) -> tuple[pa.Table, dict[str, str], list[str]]:
    """(trials table, its metadata, the searched fields); a damaged table is refused in one line."""
    try:
        table = read_trials_table(exp)
    except TableUnreadable as exc:
        raise ReportError(f"{exc}; rerun the sweep's launch command: for a finished sweep it remakes the table from "
                          "Ray Tune's saved results, without training or registering anything") from None
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    return table, meta, json.loads(meta.get("searched", "[]"))


def _objectives(meta: dict[str, str]) -> list[tuple[str, str]]:
    """(metric, mode) of each objective, as the sweep's table records them."""
    objective = json.loads(meta.get("objective", "{}"))
    return list(zip(objective.get("metrics") or [OBJECTIVE], objective.get("modes") or ["max"]))


def _search(meta: dict[str, str]) -> list[Param]:
    """The searched parameters with their distributions: from the table, else from its spec file (older tables)."""
    if meta.get("search"):
        return search_from_json(meta["search"])
    spec_file = meta.get("spec_file")
    if spec_file and Path(spec_file).is_file():
        from tuner.spec.schema import SpecError, load_spec

        try:
            return list(load_spec(spec_file).search)
        except SpecError:
            return []
    return []


def _importances(rows: list[dict[str, Any]], params: list[Param], objectives: list[tuple[str, str]],
                 trials: SweepTrials) -> Importances:
    """Optuna's importances, or a note saying why there are none: they never fail the report."""
    try:
        return param_importances(rows, params, objectives, trials.history)
    except Exception as exc:  # noqa: BLE001 - a figure of the report, not the report
        return Importances(notes=[f"importances could not be computed: {first_line(exc, 160)}"])


def _plots(rows: list[dict[str, Any]], top: list[dict[str, Any]], trials: SweepTrials, out: Path) -> list[Path]:
    """The accuracy/FLOPs front, the learning curves and the group accuracies."""
    front = [r for r in rows if r["on_pareto_front"]]
    drawn = [r for r in top if r["status"] == COMPLETED]  # one fidelity: trials that ran every epoch
    drawn_ids = {r["trial_id"] for r in drawn}
    return [
        plots.accuracy_vs_flops(rows, front, out / "accuracy_vs_flops.png"),
        plots.learning_curves(
            {f"#{r['rank']} {r.get('trial_name') or r['trial_id']}": trials.history(r["trial_id"]) for r in drawn},
            [(r["status"], trials.history(r["trial_id"])) for r in rows if r["trial_id"] not in drawn_ids],
            out / "learning_curves.png"),
        plots.group_bars(top, out / "group_accuracy.png"),
    ]


def _threshold_files(curve: list[dict], best: dict[str, Any], sweep: str, out: Path) -> list[Path]:
    (out / "threshold_curve.json").write_text(json.dumps(curve, indent=1))
    files = [out / "threshold_curve.json"]
    if curve:
        files.append(plots.threshold_curve(
            curve, best.get("inference_threshold_used") or best["config.inference_exit_threshold"],
            f"Best trial {best['trial_id']} ({sweep}): inference threshold study", out / "threshold_curve.png"))
    return files


def _ensemble(trials: SweepTrials, members: list[dict[str, Any]], data: Any, best: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(the ensemble, its metrics and members) on the images the threshold study loaded (else loaded here)."""
    if data is None:
        from trainables.data.datasets import load_long_tailed

        data = load_long_tailed(train_config_of(members[0]))
    built, metrics = build_ensemble(trials, members, data)
    print(f"tuner.report: ensemble of {len(members)}: {OBJECTIVE} {metrics[OBJECTIVE]:.4f}, {TEST_METRIC} {metrics[TEST_METRIC]:.4f}, "
          f"{COST} {metrics[COST]:.3f} (best single: {OBJECTIVE} {best[OBJECTIVE]:.4f}, {TEST_METRIC} {best[TEST_METRIC]:.4f})")
    return built, {**metrics, "member_trials": [m["trial_id"] for m in members]}


def _log_to_mlflow(uri: str, parent_run_id: str, sweep: str, files: list[Path], ensemble_info: dict[str, Any] | None,
                   built: Any, leaders: list[dict[str, Any]], members: list[dict[str, Any]], out: Path,
                   metrics: dict[str, float]) -> None:
    from tuner.tracking import TrackingUnreachable, check_reachable
    from tuner.tracking.report_run import log_report

    try:
        check_reachable(uri)
    except TrackingUnreachable as exc:
        raise ReportError(f"tracking: {exc}; the report's files are in {out} (rerun with --no-mlflow to skip MLflow)") from None
    registered = log_report(uri, parent_run_id, sweep, files, ensemble_info, built,
                            leaders[0][OBJECTIVE] if leaders else None, [config_of(m) for m in members], metrics)
    if registered:
        print(f"tuner.report: the ensemble beats the best single trial on {OBJECTIVE}: registered as "
              f"{registered['registered_model']} version {registered['version']}")
