"""Quiet terminal output for the commands: Ray's, MLflow's and Optuna's own logs and warnings off.

    quiet_logs(verbose=False)     at the start of tuner.launch, tuner.report, benchmarks.sweep

Only those libraries are silenced (their loggers, and warnings raised from their modules); a
warning from this project's code, or from any other library, still shows. `--verbose` keeps
everything.
"""

from __future__ import annotations

import logging
import os
import warnings

NOISY = ("ray", "mlflow", "optuna", "alembic", "sqlalchemy", "pydantic")  # libraries whose own chatter is silenced


def quiet_logs(verbose: bool) -> None:
    if verbose:
        return
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    modules = "|".join(NOISY)
    warnings.filterwarnings("ignore", module=rf"({modules})(\..*)?$")
    for name in NOISY + ("ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Reading a sweep's results, Ray logs an ERROR for each trial without a checkpoint: a trial ASHA
    # stopped before its first one is a result, not an error.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.CRITICAL)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
