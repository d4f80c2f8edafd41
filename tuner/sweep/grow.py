"""A resumed sweep takes this launch's run settings: a larger num_samples grows it (issue 33).

Ray Tune restores a sweep from what it saved: the Tuner's settings as they were when the sweep first
began (tuner.pkl: num_samples, max_concurrent_trials, the time budget, retries, checkpoints kept,
the callbacks) and the search generator's state (search_gen_state-*.json, a pickle: how many trials
to make, how many it made, and the ConcurrencyLimiter's cap). A resume would keep all of those
whatever the spec now says. So before Ray Tune restores the generator, its saved state takes this
launch's num_samples and cap (`set_sample_target`), and the restored Tuner takes this launch's
settings (`take_launch_settings`). These are Ray Tune's own formats (checked with ray 2.60, the
version constraints.txt pins); tests/tuner/test_grow.py grows a finished and an interrupted sweep.

What a grown sweep is: the new trials come from the same Optuna study (OptunaSearch restores its
study, every trial with its value, from searcher-state-*.pkl), trials that ended are neither
retrained nor logged again, and trials that had started resume with the resources they began with
(the new resources are for the trials not yet made). A sweep does not shrink: a num_samples below
the trials it has already made is refused.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import replace
from typing import Any

import pyarrow as pa

from tuner.sweep.experiment import GENERATOR_STATE, newest_ray_files

LIMITER = "name:ConcurrencyLimiter"  # the key of the cap's wrapper in the generator's state


def _newest_generator_state(exp: str) -> tuple[pa.fs.FileSystem, str] | None:
    fs, newest = newest_ray_files(exp)
    return (fs, newest[GENERATOR_STATE]) if GENERATOR_STATE in newest else None


def _read(fs: pa.fs.FileSystem, path: str) -> dict[str, Any]:
    with fs.open_input_stream(path) as stream:
        return pickle.loads(stream.read())  # noqa: S301 - the sweep's own file (damaged_ray_state read it first)


def trials_made(exp: str) -> int:
    """How many trials the sweep's searcher has made so far (0 before Ray Tune saved any)."""
    found = _newest_generator_state(exp)
    return int(_read(*found).get("counter", 0)) if found else 0


def set_sample_target(exp: str, num_samples: int, max_concurrent: int | None) -> None:
    """The saved generator makes trials up to `num_samples`, at most `max_concurrent` at once (None: no cap)."""
    import ray.cloudpickle as cloudpickle

    found = _newest_generator_state(exp)
    if found is None:
        return  # Ray Tune saved nothing yet: the restore starts the generator from this launch's settings
    fs, path = found
    state = _read(fs, path)
    if state.get("total_samples") == num_samples and (LIMITER not in state or state[LIMITER].get("max_concurrent") == max_concurrent):
        return
    state["total_samples"] = num_samples
    state["finished"] = False  # set once it made its last trial: it makes more now
    experiment = state.get("experiment")
    if experiment is not None:
        experiment.spec["num_samples"] = num_samples
    if LIMITER in state and max_concurrent is not None:
        state[LIMITER]["max_concurrent"] = max_concurrent
    partial = f"{path.rsplit('/', 1)[0]}/.grow.{os.getpid()}.tmp"
    with fs.open_output_stream(partial) as out:  # whole or not at all, as Ray writes it
        out.write(cloudpickle.dumps(state))
    fs.move(partial, path)


def take_launch_settings(tuner: Any, tune_config: Any, run_config: Any) -> Any:
    """The restored Tuner, with this launch's sample count, cap and time budget, and its retries,
    checkpoints kept and callbacks; the restored searcher and scheduler stay (the study goes on)."""
    internal = tuner._local_tuner  # Ray Tune keeps the restored settings here and reads them when fit() starts
    internal._tune_config = replace(internal._tune_config, num_samples=tune_config.num_samples,
                                    max_concurrent_trials=tune_config.max_concurrent_trials,
                                    time_budget_s=tune_config.time_budget_s)
    restored = internal._run_config
    restored.failure_config = run_config.failure_config
    restored.checkpoint_config = run_config.checkpoint_config
    restored.callbacks = run_config.callbacks
    return tuner
