"""The search space as an Optuna define-by-run function, and trial configs resolved from samples.

Parameters are suggested in the order the spec lists them; a parameter with `when` is suggested
only if its condition holds for the fixed values and the values sampled before it, so an
LDAM-only margin is never sampled for a cross-entropy trial and Optuna's TPE models only the
parameters a trial actually used. List-valued fields (exit_taps, widths) travel through Optuna
as comma-joined strings, since categorical choices must be plain values.

The define-by-run function also makes the trial's TrainConfig, the base with the suggestions on top,
and checks it, once: it crosses Ray in the trial's config under TRAIN_CONFIG, as itself (a frozen
dataclass pickles), and the trial trains it as it came (tuner/trial/trainable.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from trainables.config import ConfigError, TrainConfig, field_kind, parse_value, with_overrides
from tuner.spec.schema import Param, SweepSpec, condition_holds, config_values


def encode(value: Any) -> Any:
    """A field value as an Optuna categorical choice (None, bool, int, float or str)."""
    return ",".join(str(v) for v in value) if isinstance(value, tuple) else value


def decode(name: str, value: Any) -> Any:
    """The inverse of encode for field `name`."""
    if field_kind(name).startswith("tuple") and isinstance(value, str):
        return parse_value(name, value)
    return value


def distribution(p: Param) -> Any:
    """The Optuna distribution a parameter is suggested from (the report's rebuilt study uses it too)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if p.kind == "uniform":
        return FloatDistribution(p.low, p.high, step=p.step)
    if p.kind == "loguniform":
        return FloatDistribution(p.low, p.high, log=True)
    if p.kind == "int":
        return IntDistribution(p.low, p.high, step=p.step or 1, log=p.log)
    return CategoricalDistribution([encode(v) for v in p.values])


def _suggest(trial: Any, p: Param) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    d = distribution(p)
    if isinstance(d, CategoricalDistribution):
        return trial.suggest_categorical(p.name, d.choices)
    if isinstance(d, FloatDistribution):
        return trial.suggest_float(p.name, d.low, d.high, step=d.step, log=d.log)
    return trial.suggest_int(p.name, d.low, d.high, step=d.step, log=d.log)


def sampled_params(params: list[Param], config: TrainConfig) -> list[Param]:
    """The parameters a trial with this resolved configuration was suggested (its `when` conditions held)."""
    values = config_values(config)
    return [p for p in params if condition_holds(p, values)]


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def search_to_json(params: list[Param]) -> str:
    """The searched parameters as JSON (the trials table's metadata carries them to the report)."""
    import json

    return json.dumps([dataclasses.asdict(p) for p in params])


def search_from_json(text: str) -> list[Param]:
    import json

    return [Param(**{**d, "values": _tuples(d["values"]), "when": {k: _tuples(v) for k, v in d["when"].items()}})
            for d in json.loads(text)]


TRAIN_CONFIG = "train_config"  # the key of a trial's Ray config that carries its CheckedConfig (not a searched value)


@dataclasses.dataclass(frozen=True)
class CheckedConfig:
    """A trial's TrainConfig as the define-by-run function made and checked it. `problem`: why the suggested
    combination is invalid (the spec's check takes each searched value alone, so two can still clash). The
    trial then fails with it, as a trial with a bad configuration always has, and the sweep goes on: an
    error raised in the searcher would stop the sweep."""

    config: TrainConfig
    problem: str | None = None

    def __str__(self) -> str:
        return "checked"  # Ray writes each config value into the trial's tag and folder name: keep it short

    def train_config(self) -> TrainConfig:
        if self.problem is not None:
            raise ConfigError(self.problem)
        return self.config


class DefineByRun:
    """The function OptunaSearch calls with each new Optuna trial (a class, so the searcher's
    state, saved by Ray for resumption, can be pickled)."""

    def __init__(self, spec: SweepSpec):
        self.base = spec.base_config
        self.params = spec.search

    def __call__(self, trial: Any) -> dict[str, CheckedConfig]:
        config = self.base
        for p in self.params:
            if condition_holds(p, config_values(config)):
                config = with_overrides(config, {p.name: decode(p.name, _suggest(trial, p))})
        try:
            checked = CheckedConfig(config.validate())
        except ConfigError as exc:
            checked = CheckedConfig(config, str(exc))
        return {TRAIN_CONFIG: checked}  # Ray records the suggested values itself, and adds this constant


def encoded_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The spec's initial points, in the encoding the define-by-run function suggests."""
    return [{k: encode(v) for k, v in point.items()} for point in spec.searcher.initial_points]


def searched_values(ray_config: dict[str, Any]) -> dict[str, Any]:
    """A trial's Ray config without its TrainConfig: the values Optuna suggested, encoded."""
    return {k: v for k, v in ray_config.items() if k != TRAIN_CONFIG}


def trial_config(ray_config: dict[str, Any], base: TrainConfig) -> TrainConfig:
    """The TrainConfig of a trial from its Ray config: the one DefineByRun made and checked. A config
    without it (a trial row written by hand, a sweep saved before the config crossed Ray) is resolved
    from the sampled values, the base with them on top, and checked here."""
    if TRAIN_CONFIG in ray_config:
        return ray_config[TRAIN_CONFIG].train_config()
    return resolve_trial_config(base, ray_config)


def resolve_trial_config(base: TrainConfig, sampled: dict[str, Any]) -> TrainConfig:
    """The full TrainConfig of one trial: the fixed base with the sampled values on top."""
    return with_overrides(base, {k: decode(k, v) for k, v in sampled.items()}).validate()
