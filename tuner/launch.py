"""Run or resume the sweep a YAML spec describes: Ray Tune + Optuna + ASHA, tracked in MLflow.

    python -m tuner.launch search_spaces/hybrid.yaml                 # this machine
    python -m tuner.launch search_spaces/hybrid.yaml --address ray://head:10001
    python -m tuner.launch search_spaces/smoke.yaml --restart        # forget the old sweep, start over

Rerunning the same command resumes an interrupted sweep (trials from their checkpoints, the
Optuna searcher from its saved state). Exit 0 when the sweep finished (stopped or diverged trials
are results), 2 for a bad spec or a failed pre-flight check (nothing started), 3 when it ran out
of `--time-budget` (the trials table so far is written; rerun to go on), 4 when a folder it writes
ran short of space (run.min_free_mb; rerun once there is space), 130 when interrupted by Ctrl-C and
143 when stopped by SIGTERM (every trial keeps its last checkpoint; rerun to resume). The codes are
tuner.exit_codes.ExitCode.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from trainables.cli import OneLineParser, first_line
from trainables.config import with_overrides
from tuner.exit_codes import ExitCode
from tuner.quiet import quiet_logs
from tuner.spec.schema import SpecError, SweepSpec, load_spec
from tuner.sweep.disk_space import is_disk_full, shortages, storage_full_message, sweep_folders, unwritable
from tuner.sweep.experiment import (
    DriverLock,
    ExperimentError,
    SweepState,
    damaged_ray_state,
    delete_experiment,
    experiment_uri,
    read_state,
    spec_fingerprint,
    take_stop_request,
    write_state,
)
from tuner.sweep.grow import trials_made
from tuner.sweep.preflight import PreflightError, preflight_cluster, preflight_local
from tuner.sweep.ray_tune import bind_trainable, build_tuner, start_ray, start_sweep_workers
from tuner.sweep.stop import STOPPED_BY, TERMINATED, deliver_pending, quiet_dropped_interrupts, terminate
from tuner.sweep.trials_table import table_readable
from tuner.tracking import resolve_tracking_uri


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="python -m tuner.launch", description=__doc__.split("\n\n")[0])
    p.add_argument("spec", help="the sweep's YAML file (see docs/SPEC.md)")
    p.add_argument("--address", help="Ray cluster address, or auto for the one `ray start` made on this machine "
                                      "(default: RAY_ADDRESS, else start a new Ray here)")
    p.add_argument("--name", help="override the spec's name (the experiment folder and MLflow names)")
    p.add_argument("--restart", action="store_true", help="delete this sweep's experiment folder and start over")
    p.add_argument("--num-samples", type=int, help="override run.num_samples")
    p.add_argument("--storage-path", help="override run.storage_path (e.g. s3://bucket/experiments on a cluster)")
    p.add_argument("--verbose", action="store_true", help="show Ray's own logs and trial output")
    p.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="end the sweep after this long (Ray Tune's time budget): trials still running end as stopped")
    return p.parse_args(argv)


def _absolute_paths(spec: SweepSpec) -> SweepSpec:
    """Trials run in other working directories: make every local path absolute."""
    if os.environ.get("TUNER_DATA_DIR"):
        os.environ["TUNER_DATA_DIR"] = str(Path(os.environ["TUNER_DATA_DIR"]).expanduser().resolve())
    base = spec.base_config
    if base.data_dir:
        base = with_overrides(base, {"data_dir": str(Path(base.data_dir).expanduser().resolve())})
    return dataclasses.replace(spec, base_config=base)


def run_sweep(spec: SweepSpec, address: str | None, restart: bool, verbose: bool, time_budget: float | None = None) -> int:
    spec = _absolute_paths(spec)
    uri = resolve_tracking_uri(spec.tracking.uri)
    exp = experiment_uri(spec)
    preflight_local(spec, uri, address)
    denied = unwritable(sweep_folders(exp, uri))
    if denied:
        raise PreflightError(f"cannot write {'; '.join(denied)}: choose folders you can write (run.storage_path / "
                             "--storage-path, tracking.uri / MLFLOW_TRACKING_URI, TUNER_CACHE_DIR)")
    short = shortages(sweep_folders(exp, uri), spec.run.min_free_mb)
    if short:
        raise PreflightError(storage_full_message(short, spec.run.min_free_mb, started=False))
    from tuner.sweep.warm_start import warm_start

    warm = warm_start(spec)  # read now: a source that cannot be read is one line before anything starts
    with DriverLock(exp):  # one sweep, one driver: a second launch of this sweep is refused while this one runs
        take_stop_request(exp)  # one left from a driver that stopped before it read it is not for this one
        state = _resumable_state(spec, exp, restart)
        if state is not None and state.finished and spec.run.num_samples <= state.finished["trials"]:
            return _already_finished(spec, exp, state)
        return _run_on_ray(spec, address, verbose, time_budget, uri, exp, state, warm)


def _resumable_state(spec: SweepSpec, exp: str, restart: bool) -> SweepState | None:
    """The state of the sweep this launch continues (None: a new sweep); refused when the spec changed or
    Ray Tune's saved files are damaged."""
    state = read_state(exp)
    if restart and state is not None:
        delete_experiment(exp)
        return None
    if state is not None and state.spec_fingerprint not in (spec_fingerprint(spec), spec_fingerprint(spec, legacy=True)):
        raise PreflightError(f"{exp} holds a sweep started from a different spec (what changes a trial's result: the train, "
                             "data, search, objective, searcher or scheduler sections); rerun with --restart to start over, "
                             "or give this one another name (--name). The run and resources sections may change")
    growing = state is not None and state.finished and spec.run.num_samples > state.finished["trials"]
    damaged = damaged_ray_state(exp) if state is not None and (not state.finished or growing) else None
    if damaged:
        raise ExperimentError(f"{damaged}: Ray Tune's saved state of this sweep is damaged, so it cannot resume; rerun with "
                              "--restart to start the sweep over (the MLflow runs of its trials so far stay)")
    if state is not None and not state.finished:
        made = trials_made(exp)
        if spec.run.num_samples < made:
            raise PreflightError(f"run.num_samples / --num-samples {spec.run.num_samples}: this sweep has made {made} trials "
                                 f"already, and a sweep grows but does not shrink; give at least {made}")
    return state


def _already_finished(spec: SweepSpec, exp: str, state: SweepState) -> int:
    from tuner.sweep.finish import remake_trials_table

    if not table_readable(exp):  # damaged or lost after the sweep ended: Ray's saved results still hold it
        print(f"tuner: the trials table of sweep {spec.name} was missing or damaged; remade {remake_trials_table(spec, exp)} "
              "from the results Ray Tune saved")
    print(f"tuner: sweep {spec.name} already finished ({state.finished['trials']} trials); results in {exp}. "
          f"Run `python -m tuner.report {exp}` to see them, or add --restart to run it again.")
    return ExitCode.OK


def _run_on_ray(spec: SweepSpec, address: str | None, verbose: bool, time_budget: float | None, uri: str, exp: str,
                state: SweepState | None, warm: Any = None) -> int:
    import ray
    from ray import tune

    start_ray(address, verbose)
    _stop_on_sigterm()  # Ray's own SIGTERM handler, installed by ray.init, would abort
    if not verbose:  # a lost trial is one progress line (and an error file), not Ray's traceback
        logging.getLogger("ray.tune.execution.tune_controller").setLevel(logging.CRITICAL)
    try:
        cluster = preflight_cluster(spec, uri, exp)
        resumed = state is not None
        grown_from = state.finished["trials"] if state is not None and state.finished else None
        tracking = _parent_run(uri, spec, state)
        state = SweepState(spec_fingerprint=spec_fingerprint(spec), parent_run_id=tracking.parent_run_id,
                           experiment_id=tracking.experiment_id, tracking_uri=uri, spec_file=spec.path,
                           started=state.started if state else time.time(), num_samples=spec.run.num_samples,
                           gpu_per_trial=spec.resources.gpu)
        write_state(exp, state)
        restoring = resumed and tune.Tuner.can_restore(exp)
        doing = (f"growing sweep {spec.name} from {grown_from} to" if grown_from else
                 f"{'resuming' if restoring else 'starting'} sweep {spec.name}:")
        print(f"tuner: {doing} {spec.run.num_samples} trials on "
              f"{cluster['nodes']} node(s), {cluster['cpus']:g} CPUs, {cluster['gpus']:g} GPUs; folder {exp}; MLflow {uri}",
              flush=True)
        from tuner.sweep.rungs import early_cut_warning

        warning = early_cut_warning(spec)
        if warning:
            print(warning, flush=True)
        from tuner.sweep import live_table

        live_table.watch(spec, exp, tracking)  # trials.parquet and the parent's best, kept current as trials end
        workers = start_sweep_workers(spec, cluster) if spec.resources.uses_workers else None
        from tuner.sweep.slot_use import slots_of  # imports Ray

        slots = (min(filter(None, (spec.run.max_concurrent, workers.slots))) if workers else
                 slots_of(spec.run.max_concurrent, spec.run.num_samples, cluster["cpus"], cluster["gpus"],
                          *spec.resources.per_trial))
        # Ray Tune's own cap on trials at once where it counts only the trials' relaying processes: the slots
        # of the workers, or of the train-worker groups the cluster holds.
        at_once = slots if workers or spec.resources.data_parallel else None
        if warm is not None and not restoring:  # a resumed sweep's study has them already
            print(warm.line(), flush=True)
        grid, seconds = _fit(spec, bind_trainable(spec, tracking, workers), exp, uri, restoring, time_budget, at_once,
                             None if restoring else warm)
        code = _unfinished_exit(spec, exp, uri, grid, seconds, time_budget)
        if code is not None:
            return code
        from tuner.sweep.finish import finish_sweep

        summary = finish_sweep(spec, grid, tracking, exp, seconds, slots)
        write_state(exp, state.finish(summary))
        return ExitCode.OK
    finally:
        ray.shutdown()


def _stop_on_sigterm() -> None:
    """SIGTERM (docker stop, Kubernetes, SLURM, a spot reclaim) is the clean stop of Ctrl-C: Ray Tune saves
    the sweep, every trial keeps its last checkpoint, and the launch exits 143. Installed at the start,
    and again once Ray is up (its core installs a handler that dumps a stack trace and aborts)."""
    def on_sigterm(signum: int, frame: Any) -> None:
        terminate("SIGTERM", frame)  # not a SIGINT to itself: a launcher started in the background ignores SIGINT

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_sigterm)
        quiet_dropped_interrupts()


def _interrupted(spec_path: str) -> int:
    """The exit of a sweep stopped by Ctrl-C or SIGTERM, with the one line that says how to go on."""
    how = f"stopped by {STOPPED_BY['what']}" if TERMINATED.is_set() else "interrupted"
    print(f"tuner: {how}; every trial keeps its last checkpoint: rerun the same command to resume ({spec_path})",
          file=sys.stderr)
    return ExitCode.TERMINATED if TERMINATED.is_set() else ExitCode.INTERRUPTED


def _fit(spec: SweepSpec, trainable: Any, exp: str, uri: str, restoring: bool, time_budget: float | None,
         max_concurrent: int | None = None, warm: Any = None) -> tuple[Any, float]:
    """(Ray Tune's result grid, or None after Ctrl-C; seconds it ran)."""
    from tuner.sweep import stop_request
    from tuner.sweep.storage_watch import watch

    started = time.time()
    try:
        deliver_pending()  # a SIGTERM during start-up whose KeyboardInterrupt Python dropped: stop before any trial
        watch(sweep_folders(exp, uri), spec.run.min_free_mb)
        stop_request.watch(exp)
        return build_tuner(spec, trainable, exp, restoring, time_budget, max_concurrent, warm).fit(), time.time() - started
    except KeyboardInterrupt:
        return None, time.time() - started
    except Exception as exc:
        if not restoring or is_disk_full(exc):
            raise
        # damaged_ray_state read each file; this is what Ray itself could not make of them.
        raise ExperimentError(f"{exp}: Ray Tune could not resume this sweep ({type(exc).__name__}: "
                              f"{first_line(exc)}); if its files were damaged, rerun with --restart to start it over") from None


def _unfinished_exit(spec: SweepSpec, exp: str, uri: str, grid: Any, seconds: float, time_budget: float | None) -> int | None:
    """The exit code of a sweep that did not finish (time budget, storage short, interrupted); None when it did."""
    # Ray Tune catches Ctrl-C itself and returns the partial results: count what really ended.
    # tuner.sweep.storage_watch interrupts it the same way when space runs short.
    ended = 0 if grid is None else _ended_as_saved(exp)
    if grid is not None and time_budget is not None and ended < spec.run.num_samples and seconds >= time_budget:
        from tuner.sweep.finish import write_trials_table

        _, _, table_path = write_trials_table(spec, list(grid), exp)
        print(f"tuner: time budget of {time_budget:g} s reached with {ended} of {spec.run.num_samples} trials ended; "
              f"trials so far in {table_path}; rerun the same command to go on", file=sys.stderr)
        return ExitCode.TIME_BUDGET
    short = shortages(sweep_folders(exp, uri), spec.run.min_free_mb)
    if short and (grid is None or ended < spec.run.num_samples):
        print(f"tuner.launch: {storage_full_message(short, spec.run.min_free_mb, started=True)}", file=sys.stderr)
        return ExitCode.STORAGE_FULL
    if grid is None or ended < spec.run.num_samples:
        return _interrupted(spec.path)
    return None


def _parent_run(uri: str, spec: SweepSpec, state: SweepState | None):
    """The sweep's MLflow parent run: created, or reopened on a resume, which needs the store it began in."""
    from mlflow.exceptions import MlflowException

    from tuner.tracking.sweep_run import start_parent_run

    parent = state.parent_run_id if state else None
    try:
        return start_parent_run(uri, spec, parent)
    except MlflowException as exc:
        if not parent or exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise ExperimentError(f"the sweep's MLflow parent run {parent} is not in {uri} (it began with "
                              f"{state.tracking_uri or 'another store'}): point tracking.uri / MLFLOW_TRACKING_URI at "
                              "that store, or rerun with --restart to start the sweep over") from None


def _ended_as_saved(exp: str) -> int:
    """Trials that ended, as the experiment state Ray Tune saved says. After Ctrl-C (or the storage
    watch) Tune saves the state and then stops the running trials, which its returned grid then
    counts as terminated; the saved state still has them running, and a rerun resumes them."""
    from ray.tune import ExperimentAnalysis

    return sum(t.status in ("TERMINATED", "ERROR") for t in ExperimentAnalysis(exp).trials)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_logs(args.verbose)
    _stop_on_sigterm()
    try:
        spec = load_spec(args.spec, name_override=args.name, num_samples_override=args.num_samples,
                         storage_override=args.storage_path)
        if args.time_budget is not None and args.time_budget <= 0:
            raise SpecError(args.spec, ["--time-budget: must be > 0 seconds"])
        return run_sweep(spec, args.address or os.environ.get("RAY_ADDRESS"), args.restart, args.verbose, args.time_budget)
    except (SpecError, PreflightError, ExperimentError) as exc:
        print(f"tuner.launch: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except KeyboardInterrupt:  # before or after Ray Tune ran (which stops on its own): nothing is half done
        return _interrupted(args.spec)
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        # Full before the watch could stop the sweep (a large write): what was recorded stays recorded.
        print(f"tuner.launch: storage full ({exc}); free some space and rerun the same command to resume", file=sys.stderr)
        return ExitCode.STORAGE_FULL


if __name__ == "__main__":
    sys.exit(main())
