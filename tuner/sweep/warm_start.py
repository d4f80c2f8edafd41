"""Warm start: a previous sweep's trials, with their results, enter the new sweep's Optuna study before
its first proposal (`searcher.warm_start_from: NAME_OR_PATH`).

Which trials count: the completed ones only (they ran every epoch, so their objective values are of
one fidelity with what the new trials will report). A stopped trial's value is from the epoch ASHA cut
it at, on a schedule it never finished: adding it as if final would teach the sampler that early
accuracy is final accuracy. Diverged trials count (with the worst value they reported: the search
learns where not to go, as it does in its own sweep); failed ones do not.

A trial enters with the values it used for this sweep's searched parameters (as the report's rebuilt
study reads them: tuner/spec/space.py), and is skipped when one of them lies outside this search
space (a range that moved, a choice no longer offered) or its objective is missing. The study goes to
Ray Tune's OptunaSearch as an in-memory Optuna storage already holding those trials, which it loads
(load_if_exists) instead of starting empty; the sampler then proposes from them. One line says how
many trials entered, of how many, and why the others did not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from trainables.names import COMPLETED, DIVERGED
from tuner.spec.schema import Param, SweepSpec
from tuner.spec.space import distribution, encode, sampled_params
from tuner.sweep.experiment import ExperimentError, experiment_location
from tuner.sweep.trials_table import TableUnreadable, read_trials_table, train_config_of

STUDY_NAME = "optuna"  # the name OptunaSearch gives its in-memory study


@dataclass
class WarmStart:
    storage: Any  # optuna.storages.InMemoryStorage holding the study
    source: str
    used: int
    of: int
    skipped: dict[str, int] = field(default_factory=dict)  # why -> how many

    def line(self) -> str:
        why = "; ".join(f"{n} {reason}" for reason, n in self.skipped.items() if n)
        return (f"tuner: warm start from {self.source}: {self.used} of its {self.of} trials entered the study"
                + (f" ({why})" if why else ""))


def _inside(p: Param, value: Any) -> bool:
    if p.kind == "choice":
        return value in distribution(p).choices
    return isinstance(value, (int, float)) and p.low <= value <= p.high


def warm_start(spec: SweepSpec) -> WarmStart | None:
    """The study the spec's warm_start_from gives (None without one); ExperimentError when it has no trials table."""
    import optuna

    target = spec.searcher.warm_start_from
    if not target:
        return None
    exp = experiment_location(target)
    try:
        rows = read_trials_table(exp).to_pylist()
    except TableUnreadable as exc:
        raise ExperimentError(f"searcher.warm_start_from: {exc}; warm start from a sweep that has run (its trials "
                              "table), or leave warm_start_from out") from None
    objective = spec.objective
    storage = optuna.storages.InMemoryStorage()
    directions = ["maximize" if m == "max" else "minimize" for m in objective.modes]
    study = optuna.create_study(storage=storage, study_name=STUDY_NAME, directions=directions)
    skipped = {"not completed (one fidelity: completed trials only)": 0, "outside this search space": 0,
               "without an objective value": 0}
    used = 0
    for row in rows:
        if row["status"] not in (COMPLETED, DIVERGED):
            skipped["not completed (one fidelity: completed trials only)"] += 1
            continue
        values = [row.get(m) for m in objective.metrics]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            skipped["without an objective value"] += 1
            continue
        try:
            config = train_config_of(row)
        except Exception:  # noqa: BLE001 - a row from a sweep of another version: it cannot be read as this one's
            skipped["outside this search space"] += 1
            continue
        searched = sampled_params(list(spec.search), config)
        params = {p.name: encode(getattr(config, p.name)) for p in searched}
        if not all(_inside(p, params[p.name]) for p in searched):
            skipped["outside this search space"] += 1
            continue
        study.add_trial(optuna.trial.create_trial(params=params, distributions={p.name: distribution(p) for p in searched},
                                                  values=values))
        used += 1
    return WarmStart(storage, exp, used, len(rows), skipped)
