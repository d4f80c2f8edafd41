"""Trial names a person picking a winner can read: a short index and the searched values.

    t03 lr=0.1 alpha=0.95 t=0.9 s=0.5

Ray Tune asks for them when it creates a trial (TuneConfig's trial_name_creator); the trial's
MLflow run takes the same name, and its Ray trial id stays the tag `tuner.trial_id`. Trial
folders keep Ray's own naming (id and values, no spaces), which scripts and the fault tests read.
"""

from __future__ import annotations

import time
from typing import Any

from tuner.spec.space import TRAIN_CONFIG, searched_values

# Short names of the parameters the specs search (docs/SPEC.md); others keep their field name.
SHORT = {"reslt_alpha": "alpha", "train_exit_threshold": "t", "inference_exit_threshold": "s",
         "grad_clip_norm": "clip", "weight_decay": "wd", "mixup_alpha": "mixup", "ldam_max_m": "m",
         "label_smoothing": "ls", "exit_aggregation": "agg"}
MAX_NAME = 250  # MLflow's run name column (runs.name, String(250)); SQLite would not enforce it, Postgres does


def _value(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def trial_name(trial: Any) -> str:
    """'t03 lr=0.1 alpha=0.95 ...' from a Ray Tune trial's index (its experiment tag starts with it) and config."""
    index = str(trial.experiment_tag).split("_", 1)[0]
    label = f"t{int(index):02d}" if index.isdigit() else f"t-{trial.trial_id}"
    values = " ".join(f"{SHORT.get(k, k)}={_value(v)}" for k, v in searched_values(trial.config).items())
    return f"{label} {values}".strip()[:MAX_NAME]


def trial_folder(trial: Any) -> str:
    """Ray Tune's default trial folder name (what it would be without trial_name), kept as it was: its tag's
    index and searched values, not the TrainConfig that rides in the trial's config (Ray tags every value)."""
    index, _, values = str(trial.experiment_tag).partition("_")
    values = ",".join(v for v in values.split(",") if not v.startswith(f"{TRAIN_CONFIG}="))  # Ray's tag: k=v,k=v
    tag = f"{index}_{values}" if values else index
    return f"{trial.trainable_name}_{trial.trial_id}_{tag}"[:130] + time.strftime("_%Y-%m-%d_%H-%M-%S")
