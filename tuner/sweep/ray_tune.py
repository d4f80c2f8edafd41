"""The sweep's Ray Tune wiring: Ray started or joined, the trial function bound to the sweep's fixed
settings and resources, the per-device workers, and Ray Tune's Tuner (Optuna's searcher, ASHA on
the spec's rungs, the run settings and the driver's callbacks), new or restored from the experiment
folder with this launch's settings (grow.py). tuner/launch.py runs it; nothing here decides an exit.

Building a Tuner also applies two fixes to Ray itself: a trial whose reused process dies while it resets
is retried, not lost (tuner/trial/reset_death.py), and the sweep's saved state reaches a local
experiment folder whole or not at all, even if the driver is killed mid-copy (whole_state_files.py).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

from tuner.exit_codes import ExitCode
from tuner.spec.schema import SweepSpec
from tuner.sweep.experiment import storage_location
from tuner.sweep.preflight import PreflightError
from tuner.tracking import resolve_tracking_uri

RAY_INIT_SECONDS = 30.0  # a cluster address that answers but is not a Ray head: Ray would retry for ever


def start_ray(address: str | None, verbose: bool) -> None:
    """Start Ray here, or join the cluster at `address`. Joining is given RAY_INIT_SECONDS: something that
    answers at the address but is not a Ray head makes ray.init wait for ever, so a watchdog ends the
    launch with exit 2 and one line instead (nothing has started; the driver's lock is left to its
    next launch, which takes it over at once). Ray installs its own SIGTERM handler here: the launcher
    puts its own back afterwards."""
    import ray

    watchdog = None
    if address not in (None, "local"):
        def give_up() -> None:
            print(f"tuner.launch: --address {address}: it answers, but no Ray cluster joined within {RAY_INIT_SECONDS:.0f} s; "
                  "is it the head's GCS port (6379 by default; ray:// for Ray Client, 10001)? Check `ray status` on the head",
                  file=sys.stderr, flush=True)
            os._exit(ExitCode.BAD_INPUT)

        watchdog = threading.Timer(RAY_INIT_SECONDS, give_up)
        watchdog.daemon = True
        watchdog.start()
    try:
        # "local", not None: Ray's default would join whatever cluster the last `ray start` on this machine
        # left in /tmp/ray/ray_current_cluster, even a dead one, and wait minutes for its GCS.
        ray.init(address=address or "local", include_dashboard=False, logging_level=logging.INFO if verbose else logging.ERROR,
                 log_to_driver=verbose, configure_logging=True)
    finally:
        if watchdog is not None:
            watchdog.cancel()


def start_sweep_workers(spec: SweepSpec, cluster: dict[str, Any]) -> Any:
    """The sweep's per-device workers (resources.trials_per_worker > 1), started and measured; a
    trials_per_worker that does not fit a worker's memory is refused before any trial starts."""
    import secrets

    from tuner.trial.worker import CapacityError, start_workers

    try:
        workers = start_workers(spec, cluster, secrets.token_hex(3))
    except CapacityError as exc:
        raise PreflightError(str(exc)) from None
    print(f"tuner: {len(workers.names)} worker(s) of {workers.capacity} trials each ({spec.resources.strategy}) on "
          f"{len({w['node_id'] for w in workers.described})} node(s)", flush=True)
    return workers


def bind_trainable(spec: SweepSpec, tracking: Any, workers: Any = None) -> Any:
    """The trial function with this sweep's fixed settings and resources bound. With workers, or train
    workers, a trial's own process only relays the epochs trained elsewhere: it asks Ray for a sliver
    of a CPU (the workers hold the GPUs and the cores)."""
    from ray import tune

    from tuner.trial.train_group import RELAY_RESOURCES
    from tuner.trial.trainable import TrialSettings, run_trial
    from tuner.trial.worker import TRIAL_CPU

    settings = TrialSettings(base=spec.base_config, tracking=tracking, checkpoint_every=spec.run.checkpoint_every,
                             cpus=spec.resources.cpu, gpu_fraction=spec.resources.gpu,
                             workers=workers.names if workers else None, train_workers=spec.resources.train_workers)
    if spec.resources.data_parallel:
        resources = RELAY_RESOURCES
    elif workers:
        resources = {"cpu": TRIAL_CPU, "gpu": 0}
    else:
        resources = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    return tune.with_resources(tune.with_parameters(run_trial, settings=settings), resources)


def build_tuner(spec: SweepSpec, trainable: Any, exp: str, restore: bool, time_budget: float | None = None,
                max_concurrent: int | None = None, warm: Any = None):
    """Ray Tune's Tuner for the sweep (restored from `exp` on a resume); `max_concurrent` caps the trials
    running at once (default: run.max_concurrent); `warm`, a WarmStart whose study the searcher starts from."""
    import optuna
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    from tuner.spec.space import DefineByRun, encoded_points
    from tuner.sweep.grow import set_sample_target, take_launch_settings
    from tuner.sweep.live_table import RefreshTrialsTable
    from tuner.sweep.progress import ProgressLine
    from tuner.sweep.rungs import RungASHA
    from tuner.sweep.status_callback import MarkEndedTrials
    from tuner.sweep.stop_request import StopOnRequest
    from tuner.sweep.storage_watch import StopWhenStorageLow
    from tuner.sweep.warm_start import STUDY_NAME as WARM_STUDY
    from tuner.sweep.whole_state_files import upload_state_files_whole
    from tuner.trial.names import trial_folder, trial_name
    from tuner.trial.reset_death import retry_trials_whose_process_dies_in_reset

    retry_trials_whose_process_dies_in_reset()  # Ray Tune's reuse_actors (below) loses such trials
    upload_state_files_whole()  # a driver killed mid-copy would leave a truncated state file
    obj, seed = spec.objective, spec.searcher.seed
    run_config = tune.RunConfig(
        name=spec.name, storage_path=storage_location(spec), verbose=0,
        failure_config=tune.FailureConfig(max_failures=spec.run.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=spec.run.keep_checkpoints),
        callbacks=[ProgressLine(obj.metric, obj.mode, spec.run.num_samples),
                   MarkEndedTrials(resolve_tracking_uri(spec.tracking.uri)),
                   StopWhenStorageLow(), StopOnRequest(), RefreshTrialsTable()],
    )
    # reuse_actors: a slot's next trial runs in the process its last one ran in (Ray resets the
    # trial's session, folder and config), not in a new Python that imports torch again: on 2
    # CPUs that start-up was a third of the slots' time (docs/PERFORMANCE.md, "Warm trials").
    settings = dict(num_samples=spec.run.num_samples, max_concurrent_trials=max_concurrent or spec.run.max_concurrent,
                    time_budget_s=time_budget, reuse_actors=True, trial_name_creator=trial_name,
                    trial_dirname_creator=trial_folder)
    if restore:  # this launch's settings, a larger num_samples among them (tuner/sweep/grow.py)
        set_sample_target(exp, spec.run.num_samples, settings["max_concurrent_trials"])
        restored = tune.Tuner.restore(exp, trainable=trainable, resume_unfinished=True, resume_errored=True)
        return take_launch_settings(restored, tune.TuneConfig(**settings), run_config)
    samplers = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
    }
    multi = obj.second_metric is not None
    searcher = OptunaSearch(
        space=DefineByRun(spec), metric=obj.metrics if multi else obj.metric, mode=obj.modes if multi else obj.mode,
        sampler=samplers[spec.searcher.sampler](), points_to_evaluate=encoded_points(spec) or None,
        **({"storage": warm.storage, "study_name": WARM_STUDY} if warm is not None else {}),
    )
    rungs = spec.scheduler.rungs(spec.max_t)
    if rungs:
        scheduler = RungASHA(rungs, time_attr=spec.scheduler.time_attr, metric=obj.metric, mode=obj.mode, max_t=spec.max_t,
                             reduction_factor=spec.scheduler.reduction_factor)
    else:
        scheduler = FIFOScheduler()
    return tune.Tuner(trainable, tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, **settings),
                      run_config=run_config)
