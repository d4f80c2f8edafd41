"""Which searched parameters mattered: Optuna's own importance evaluators over the sweep's trials.

    param_importances(rows, params, objectives, history)   -> Importances

The study is rebuilt from the trials table with the spec's distributions (tuner.spec.space), one
single-objective study per objective (val_acc, and flops_ratio in a two-objective sweep), so this
works on any finished sweep without the searcher's own state. Evaluators: fANOVA (always), and
PED-ANOVA (which asks what the top 10% of trials have in common) from PED_ANOVA_TRIALS trials on,
since below that its top 10% is a single trial.

Only trials of one fidelity are compared: the completed ones (every epoch) when there are at
least MIN_TRIALS; otherwise every usable trial's value at the last epoch all of them reached
(ASHA's first rung), read from Ray Tune's per-epoch results, and the notes say so. A parameter
that holds one value in every trial has no importance and is named as such; a conditional one
(`when:`) is evaluated over the trials that used it. What cannot be computed is one note, never
a failure of the report.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trainables.names import COMPLETED
from tuner.report.leaderboard import finite
from tuner.spec.schema import Param
from tuner.spec.space import distribution, encode, sampled_params
from tuner.sweep.trials_table import train_config_of
from tuner.tracking.trial_status import USABLE

MIN_TRIALS = 4  # fewer trials tell nothing about five parameters
PED_ANOVA_TRIALS = 20  # its top 10% holds at least 2 trials
TOP_SHARE = 0.25  # "where the good values lie": the range the top quarter of trials used


@dataclass
class Importances:
    """importances[metric][evaluator][param]: normalized to sum to 1 per (metric, evaluator, trial set)."""

    importances: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    fidelity: str = ""  # which values were compared: "final (N completed trials)" or "epoch E (N trials)"
    trials: int = 0
    top_ranges: dict[str, str] = field(default_factory=dict)  # param -> the values the top quarter used
    # the design choices (choice parameters with several values): param -> value -> [best metric, trials]
    choices: dict[str, dict[str, list]] = field(default_factory=dict)
    best_design: dict[str, str] = field(default_factory=dict)  # the best compared trial's choices
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"importances": self.importances, "fidelity": self.fidelity, "trials": self.trials,
                "top_ranges": self.top_ranges, "choices": self.choices, "best_design": self.best_design, "notes": self.notes}

    def lines(self, metric: str) -> list[str]:
        """One line per parameter for the leaderboard: its fANOVA importance for `metric`, and where the top quarter lies."""
        scores = self.importances.get(metric, {}).get("fanova", {})
        out = [f"importance for {metric} (fANOVA; {self.fidelity}):"] if scores else []
        for name in sorted(self.top_ranges, key=lambda n: -scores.get(n, -1.0)):
            score = f"{scores[name]:.2f}" if name in scores else "   -"
            out.append(f"  {name:<26} {score}   top quarter: {self.top_ranges[name]}")
        if self.best_design:
            out.append("winning design: " + ", ".join(f"{k}={v}" for k, v in self.best_design.items()))
            for name, by_value in self.choices.items():
                out.append(f"  {name:<26} " + " | ".join(f"{v}: best {b:.4g} of {n}" for v, (b, n) in by_value.items()))
        return out + [f"  ({note})" for note in self.notes]


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _comparable(rows: list[dict[str, Any]], metrics: list[str],
                history: Callable[[str, str], list[tuple[int, float]]]) -> tuple[list[tuple[dict, dict[str, float]]], str]:
    """(row, {metric: value}) of the trials compared, and which values they are."""
    done = [r for r in rows if r["status"] == COMPLETED and all(finite(r.get(m)) for m in metrics)]
    if len(done) >= MIN_TRIALS:
        return [(r, {m: r[m] for m in metrics}) for r in done], f"final values of {len(done)} completed trials"
    usable = [r for r in rows if r["status"] in USABLE and r.get("epochs_run")]
    if not usable:
        return [], "no usable trials"
    epoch = min(r["epochs_run"] for r in usable)
    at = []
    for r in usable:
        values = {m: dict(history(r["trial_id"], m)).get(epoch) for m in metrics}
        if all(finite(v) for v in values.values()):
            at.append((r, values))
    return at, f"values at epoch {epoch}, which all {len(at)} trials reached ({len(done)} completed)"


def _top_ranges(compared: list[tuple[dict, dict[str, float]]], table: list[dict[str, Any]], params: list[Param],
                metric: str, mode: str) -> dict[str, str]:
    ordered = sorted(range(len(compared)), key=lambda i: compared[i][1][metric], reverse=mode == "max")
    top = ordered[:max(1, math.ceil(TOP_SHARE * len(ordered)))]
    out = {}
    for p in params:
        used = [v for i in top if (v := table[i][p.name]) is not UNUSED]
        if not used:
            out[p.name] = "not used by the top trials"
        elif p.kind == "choice":
            out[p.name] = ", ".join(sorted({_fmt(v) for v in used}))
        else:
            out[p.name] = f"{_fmt(min(used))} .. {_fmt(max(used))}"
    return out


def _choices(compared: list[tuple[dict, dict[str, float]]], table: list[dict[str, Any]], params: list[Param], metric: str,
             mode: str, result: Importances) -> None:
    """Per design choice, the best `metric` each of its values reached; and the best trial's choices."""
    better = max if mode == "max" else min
    designs = [p for p in params if p.kind == "choice" and len(p.values) > 1]
    for p in designs:
        by_value: dict[str, list] = {}
        for (_, values), used in zip(compared, table):
            if used[p.name] is not UNUSED:
                text = _fmt(used[p.name])
                best, count = by_value.get(text, [values[metric], 0])
                by_value[text] = [better(best, values[metric]), count + 1]
        result.choices[p.name] = dict(sorted(by_value.items(), key=lambda kv: kv[1][0], reverse=mode == "max"))
    if designs and compared:
        winner = table[better(range(len(compared)), key=lambda i: compared[i][1][metric])]
        result.best_design = {p.name: _fmt(winner[p.name]) for p in designs if winner[p.name] is not UNUSED}


# What used_value gives for a parameter whose `when:` condition did not hold in a trial. Not None:
# None is a value a choice may offer (grad_clip_norm: [null, 5.0] means "no clipping").
UNUSED = object()


def used_value(row: dict[str, Any], p: Param) -> Any:
    """The value a trial used for p, as Optuna saw it (encoded); UNUSED where its condition did not hold."""
    config = train_config_of(row)
    return encode(getattr(config, p.name)) if sampled_params([p], config) else UNUSED


def _used_table(compared: list[tuple[dict, dict[str, float]]], params: list[Param]) -> list[dict[str, Any]]:
    """Per compared trial, the value it used for each parameter (encoded; UNUSED where its condition did
    not hold), from one TrainConfig per trial: what every part of the evaluation reads."""
    table = []
    for row, _ in compared:
        config = train_config_of(row)
        used = {p.name for p in sampled_params(params, config)}
        table.append({p.name: encode(getattr(config, p.name)) if p.name in used else UNUSED for p in params})
    return table


def _study(trials: list[tuple[dict[str, Any], dict[str, float]]], params: list[Param], metric: str, mode: str):
    """`trials`: (the trial's row of the used-value table, its metric values)."""
    import optuna

    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    for used, values in trials:
        searched = [p for p in params if used[p.name] is not UNUSED]
        study.add_trial(optuna.trial.create_trial(
            params={p.name: used[p.name] for p in searched},
            distributions={p.name: distribution(p) for p in searched}, value=values[metric]))
    return study


def _evaluate(study, names: list[str], evaluators: dict[str, Any]) -> dict[str, dict[str, float]]:
    import optuna

    out = {}
    for label, evaluator in evaluators.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks the evaluators experimental
            out[label] = dict(optuna.importance.get_param_importances(study, evaluator=evaluator, params=names))
    return out


def _evaluators(n: int) -> dict[str, Any]:
    import optuna

    chosen = {"fanova": optuna.importance.FanovaImportanceEvaluator(seed=0)}
    if n >= PED_ANOVA_TRIALS:
        chosen["ped_anova"] = optuna.importance.PedAnovaImportanceEvaluator()
    return chosen


def param_importances(rows: list[dict[str, Any]], params: list[Param], objectives: list[tuple[str, str]],
                      history: Callable[[str, str], list[tuple[int, float]]]) -> Importances:
    """`objectives`: (metric, mode) pairs; `history(trial_id, metric)`: that trial's (epoch, value) list."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    metrics = [m for m, _ in objectives]
    compared, fidelity = _comparable(rows, metrics, history)
    result = Importances(fidelity=fidelity, trials=len(compared))
    if not params:
        result.notes.append("nothing was searched")
        return result
    if len(compared) < MIN_TRIALS:
        result.notes.append(f"importances need {MIN_TRIALS} trials of one fidelity; this sweep has {len(compared)} ({fidelity})")
        return result
    table = _used_table(compared, params)
    result.top_ranges = _top_ranges(compared, table, params, *objectives[0])
    _choices(compared, table, params, *objectives[0], result)
    trials = [(used, values) for used, (_, values) in zip(table, compared)]
    users = {p.name: [i for i, used in enumerate(table) if used[p.name] is not UNUSED] for p in params}
    varied = []
    for p in params:
        values = {table[i][p.name] for i in users[p.name]}
        if len(values) <= 1:
            result.notes.append(f"{p.name}: one value ({_fmt(next(iter(values)))}) in every compared trial that used it; "
                                "no importance" if values else f"{p.name}: used by none of the compared trials")
        else:
            varied.append(p)
    if not varied:
        return result
    if len(compared) < PED_ANOVA_TRIALS:
        result.notes.append(f"PED-ANOVA skipped: it needs {PED_ANOVA_TRIALS} trials, this sweep has {len(compared)}")
    common = [p for p in varied if len(users[p.name]) == len(compared)]
    for metric, mode in objectives:
        if len({values[metric] for _, values in compared}) <= 1:
            result.notes.append(f"{metric}: the same in every compared trial; nothing to explain")
            continue
        scores: dict[str, dict[str, float]] = {}
        if common:
            scores = _evaluate(_study(trials, params, metric, mode), [p.name for p in common], _evaluators(len(compared)))
        for p in varied:
            if p in common:
                continue  # a conditional parameter: over the trials that used it, beside what they all varied
            subset = [trials[i] for i in users[p.name]]
            if len(subset) < MIN_TRIALS:
                if metric == metrics[0]:
                    result.notes.append(f"{p.name}: used by {len(subset)} compared trials; no importance")
                continue
            names = [q.name for q in varied if set(users[p.name]) <= set(users[q.name])]
            for label, values in _evaluate(_study(subset, params, metric, mode), names, _evaluators(len(subset))).items():
                scores.setdefault(label, {})[p.name] = values[p.name]
        result.importances[metric] = scores
    return result
