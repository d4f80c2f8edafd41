"""All trials of a sweep as one Parquet table (pyarrow), one row per trial.

Columns: trial_id, status (completed | stopped | diverged | failed), epochs_run, wall_seconds,
mlflow_run_id, error, untrained_exits, the final metrics (val_acc, test_acc, many/medium/few_acc, flops_ratio, ...),
and the resolved configuration as `config.<field>`. The table's metadata names the sweep, the
objective, the searched fields and their search space (`search`, as JSON), and ASHA's rungs (`rungs`).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from trainables.cli import first_line
from trainables.names import COMPLETED, DIVERGED, OBJECTIVE, RESULT_METRICS
from tuner.spec.schema import SweepSpec
from tuner.spec.space import search_to_json, trial_config
from tuner.sweep.experiment import TABLE_FILE, experiment_filesystem
from tuner.tracking.trial_status import FAILED, STOPPED, USABLE

METRIC_COLUMNS = (*RESULT_METRICS, "test_flops_ratio", "inference_threshold_used", "untrained_exit_count", "train_loss",
                  "train_acc", "lr", "grad_norm")



def config_of(row: dict[str, Any]) -> dict[str, Any]:
    """The resolved training config stored in a row's `config.*` columns."""
    return {k[len("config."):]: v for k, v in row.items() if k.startswith("config.")}


def train_config_of(row: dict[str, Any]):
    """A row's resolved training config as a TrainConfig."""
    from trainables.config import TrainConfig

    return TrainConfig.from_dict(config_of(row))


def ranked(rows: list[dict[str, Any]], metric: str = OBJECTIVE, mode: str = "max") -> list[dict[str, Any]]:
    """Completed and stopped trials with a finite `metric`, best first."""
    usable = [r for r in rows if r["status"] in USABLE and isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])]
    return sorted(usable, key=lambda r: -r[metric] if mode == "max" else r[metric])


def trial_status(metrics: dict[str, Any], error: Any) -> str:
    """How a trial ended: its own report says completed or diverged; anything else was stopped or failed."""
    if error is not None:
        return FAILED
    status = metrics.get("status")
    if status in (COMPLETED, DIVERGED):
        return status
    return STOPPED  # ended while still running: the scheduler stopped it


def trial_row(spec: SweepSpec, metrics: dict[str, Any], ray_config: dict[str, Any], error: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "trial_id": metrics.get("trial_id"),
        "trial_name": metrics.get("trial_name"),  # tuner/trial/names.py: also the MLflow run's name
        "status": trial_status(metrics, error),
        "epochs_run": metrics.get("epoch", 0),
        "wall_seconds": metrics.get("time_total_s"),
        "mlflow_run_id": metrics.get("mlflow_run_id"),
        "node_id": metrics.get("node_id"),
        "error": None if error is None else str(error).splitlines()[0][:500],
        "diverged_reason": metrics.get("diverged_reason"),
        "untrained_exits": metrics.get("untrained_exits"),  # early exits that did not train in the last epoch, "0,1"
    }
    row.update({m: metrics.get(m) for m in METRIC_COLUMNS})
    try:
        config = trial_config(ray_config, spec.base_config)
    except Exception:  # noqa: BLE001 - a row is still written for a trial whose config cannot be rebuilt
        config = spec.base_config
    row.update({f"config.{k}": v for k, v in config.to_dict().items()})
    return row


def trials_table(spec: SweepSpec, rows: list[dict[str, Any]]) -> pa.Table:
    table = pa.Table.from_pylist(rows)
    meta = {
        "sweep": spec.name,
        "objective": json.dumps({"metrics": spec.objective.metrics, "modes": spec.objective.modes}),
        "searched": json.dumps([p.name for p in spec.search]),
        "search": search_to_json(spec.search),  # the distributions and conditions: the report rebuilds an Optuna study
        "rungs": json.dumps(list(spec.scheduler.rungs(spec.max_t))),  # where ASHA could cut: the report's rung correlation
        "spec_file": spec.path,
    }
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **{k: v.encode() for k, v in meta.items()}})


class TableUnreadable(ValueError):
    """An experiment folder's trials.parquet is missing or damaged (the message names it)."""


def read_trials_table(experiment_uri: str) -> pa.Table:
    """The experiment folder's trials.parquet (a local folder or an s3://, gs:// URI)."""
    fs, base = experiment_filesystem(str(experiment_uri))
    path = f"{base.rstrip('/')}/{TABLE_FILE}"
    try:
        return pq.read_table(path, filesystem=fs)
    except FileNotFoundError:
        raise TableUnreadable(f"{path} is missing") from None
    except Exception as exc:  # noqa: BLE001 - cut short, random bytes: whatever pyarrow makes of it
        raise TableUnreadable(f"{path} is damaged ({first_line(exc, 120)})") from None


def table_readable(experiment_uri: str) -> bool:
    """Whether the experiment folder's trials.parquet is there and reads as a table."""
    try:
        read_trials_table(experiment_uri)
    except TableUnreadable:
        return False
    return True


def write_table(table: pa.Table, experiment_uri: str) -> str:
    """Write trials.parquet into the experiment folder; where it went (an URI's query stays at the end)."""
    fs, base = experiment_filesystem(experiment_uri)
    partial = f"{base.rstrip('/')}/.{TABLE_FILE}.tmp"
    pq.write_table(table, partial, filesystem=fs)
    fs.move(partial, f"{base.rstrip('/')}/{TABLE_FILE}")  # whole or not at all
    folder, sep, query = experiment_uri.partition("?")
    return f"{folder.rstrip('/')}/{TABLE_FILE}{sep}{query}"
