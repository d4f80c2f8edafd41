"""The Optuna define-by-run space: conditions, list-valued choices, initial points; trial configs."""

from __future__ import annotations

import pickle

import optuna
import pytest
import yaml

from trainables.config import ConfigError
from tuner.spec.schema import parse_spec
from tuner.spec.space import TRAIN_CONFIG, DefineByRun, decode, encode, encoded_points, resolve_trial_config, trial_config

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPEC = yaml.safe_load("""
name: t
data: {dataset: synthetic}
train: {preset: reslt, epochs: 3}
search:
  autoaugment: {type: choice, values: [true, false]}
  mixup_alpha: {type: uniform, low: 0.1, high: 1.0, when: {autoaugment: false}}
  exit_taps: {type: choice, values: [[], [stage1], [stage1, stage2]]}
  exit_channels: {type: choice, values: [48, 63], when: {has_exits: true}}
  lr: {type: loguniform, low: 0.01, high: 0.2}
searcher:
  initial_points:
    - {autoaugment: false, mixup_alpha: 0.5, exit_taps: [stage1], exit_channels: 63, lr: 0.1}
scheduler: {grace_period: 1}
""")


def _trials(n: int) -> list[optuna.trial.FrozenTrial]:
    spec = parse_spec(SPEC, "t.yaml")
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    for point in encoded_points(spec):
        study.enqueue_trial(point)
    space = DefineByRun(spec)
    study.optimize(lambda t: (space(t), 0.5)[1], n_trials=n)
    return study.trials


def test_conditional_parameters_are_sampled_only_when_their_condition_holds() -> None:
    trials = _trials(30)
    for t in trials:
        assert ("mixup_alpha" in t.params) == (t.params["autoaugment"] is False)
        assert ("exit_channels" in t.params) == (t.params["exit_taps"] != "")
    assert {t.params["autoaugment"] for t in trials} == {True, False}


def test_initial_points_run_first() -> None:
    first = _trials(1)[0].params
    assert first == {"autoaugment": False, "mixup_alpha": 0.5, "exit_taps": "stage1", "exit_channels": 63, "lr": 0.1}


def test_sampled_values_resolve_to_a_full_trial_config() -> None:
    spec = parse_spec(SPEC, "t.yaml")
    cfg = resolve_trial_config(spec.base_config, {"exit_taps": "stage1,stage2", "lr": 0.05, "autoaugment": False})
    assert cfg.exit_taps == ("stage1", "stage2") and cfg.lr == 0.05 and cfg.autoaugment is False
    assert cfg.head == "reslt_grouped" and cfg.epochs == 3  # from the preset and the fixed values
    with pytest.raises(ConfigError):
        resolve_trial_config(spec.base_config, {"exit_taps": "stage7"})


def test_the_define_by_run_function_makes_and_checks_the_trials_config_which_crosses_ray_as_itself() -> None:
    spec = parse_spec(SPEC, "t.yaml")
    asked = optuna.trial.FixedTrial({"autoaugment": False, "mixup_alpha": 0.5, "exit_taps": "stage1,stage2",
                                     "exit_channels": 48, "lr": 0.05})
    constants = DefineByRun(spec)(asked)
    ray_config = {**asked.params, **constants}  # what Ray Tune hands the trial: the suggestions and the constants
    made = pickle.loads(pickle.dumps(ray_config))  # Ray pickles it to the trial's process
    assert trial_config(made, spec.base_config) == resolve_trial_config(spec.base_config, asked.params)
    assert trial_config(made, spec.base_config).exit_channels == 48 and str(made[TRAIN_CONFIG]) == "checked"


def test_trial_names_and_folders_show_the_searched_values_not_the_config_riding_along() -> None:
    from types import SimpleNamespace

    from tuner.trial.names import trial_folder, trial_name

    spec = parse_spec(SPEC, "t.yaml")
    asked = optuna.trial.FixedTrial({"autoaugment": True, "exit_taps": "", "lr": 0.1})
    constants = DefineByRun(spec)(asked)
    trial = SimpleNamespace(config={**asked.params, **constants}, trial_id="abc12",
                            experiment_tag="3_autoaugment=True,exit_taps=,lr=0.1000,train_config=checked",
                            trainable_name="run_trial")
    assert trial_name(trial) == "t03 autoaugment=True exit_taps= lr=0.1"
    assert trial_folder(trial).startswith("run_trial_abc12_3_autoaugment=True,exit_taps=,lr=0.1000_2")


def test_searched_values_that_clash_fail_their_trial_not_the_searcher() -> None:
    # Each value alone makes a valid config (the spec's check), but a plain head has no ResLT groups to simulate.
    spec = parse_spec(yaml.safe_load("""
name: t
data: {dataset: synthetic}
train: {preset: reslt, epochs: 3}
search:
  head: {type: choice, values: [reslt_bn, plain]}
  simulated_reslt_loss: {type: choice, values: [false, true]}
"""), "t.yaml")
    made = DefineByRun(spec)(optuna.trial.FixedTrial({"head": "plain", "simulated_reslt_loss": True}))[TRAIN_CONFIG]
    assert made.config.head == "plain" and "simulated_reslt_loss" in made.problem
    with pytest.raises(ConfigError, match="simulated_reslt_loss"):
        trial_config({TRAIN_CONFIG: made}, spec.base_config)


def test_list_values_survive_the_round_trip_through_optuna() -> None:
    assert encode(("stage1", "stage2")) == "stage1,stage2" and encode(()) == ""
    assert decode("exit_taps", "stage1,stage2") == ("stage1", "stage2") and decode("exit_taps", "") == ()
    assert decode("lr", 0.1) == 0.1
