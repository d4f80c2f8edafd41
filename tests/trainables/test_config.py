"""Typed config: unknown keys, wrong types, ranges, string parsing, presets."""

from __future__ import annotations

import pytest

from trainables.config import ConfigError, TrainConfig, parse_value, with_overrides
from trainables.presets import build_preset


def test_strings_parse_to_field_types() -> None:
    cfg = with_overrides(TrainConfig(), {
        "lr": "0.05", "epochs": "3", "nesterov": "true", "exit_taps": "stage1, stage2",
        "widths": "[16, 32, 48]", "grad_clip_norm": "none", "threshold_grid": "0.1,0.5",
    })
    assert cfg.lr == 0.05 and cfg.epochs == 3 and cfg.nesterov is True
    assert cfg.exit_taps == ("stage1", "stage2") and cfg.widths == (16, 32, 48)
    assert cfg.grad_clip_norm is None and cfg.threshold_grid == (0.1, 0.5)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        with_overrides(TrainConfig(), {"lrr": 0.1, "epochs": "many", "loss": "hinge", "momentum": 1.5})
    msg = str(err.value)
    for part in ("lrr: unknown field", "epochs: cannot read", "loss: expected one of ce, ldam, focal", "momentum: must be < 1"):
        assert part in msg


@pytest.mark.parametrize("key, value, message", [
    ("lr", 0.0, "must be > 0"),
    ("lr", -1.0, "must be > 0"),
    ("train_exit_threshold", 1.0, "must be < 1"),
    ("inference_exit_threshold", 0.0, "must be > 0"),
    ("epochs", 2.5, "expected an integer"),
    ("nesterov", "maybe", "cannot read"),
    ("widths", (16, 32), "expected 3 items"),
    ("reslt_alpha", 1.2, "must be <= 1"),
    ("lr", float("nan"), "finite"),
])
def test_impossible_values_are_rejected(key, value, message) -> None:
    with pytest.raises(ConfigError, match=message):
        with_overrides(TrainConfig(), {key: value})


def test_train_threshold_defaults_follow_the_elf_paper() -> None:
    assert TrainConfig(loss="ldam").resolved_train_exit_threshold() == 0.2
    assert TrainConfig(loss="ldam", dataset="cifar100").resolved_train_exit_threshold() == 0.02
    assert TrainConfig(loss="ce").resolved_train_exit_threshold() == 0.9


def test_presets_apply_overrides_and_reject_unknown_names() -> None:
    cfg = build_preset("ldam_drw", imbalance_ratio=50, epochs="10")
    assert cfg.loss == "ldam" and cfg.classifier == "cosine" and cfg.drw_start_epoch == 160
    assert cfg.imbalance_ratio == 50.0 and cfg.epochs == 10
    with pytest.raises(ConfigError, match="known presets: .*ldam_drw"):
        build_preset("ldam_drv")


def test_parse_value_rejects_unknown_fields() -> None:
    with pytest.raises(ConfigError, match="unknown field"):
        parse_value("learning_rate", "0.1")


def test_every_choice_list_of_the_config_is_its_registrys_keys() -> None:
    """The config declares the choices (for the CLI, the spec checker and docs/SPEC.md); each must name
    exactly what the code can build."""
    from trainables.config import FIELDS
    from trainables.losses.class_weights import CLASS_WEIGHTINGS
    from trainables.losses.criterion import LOSSES
    from trainables.losses.elf import EXIT_AGGREGATIONS
    from trainables.models.heads import CLASSIFIERS, HEADS
    from trainables.models.taps import DEPTHS, TORCHVISION_BACKBONES

    registries = {"loss": LOSSES, "class_weighting": CLASS_WEIGHTINGS, "exit_aggregation": EXIT_AGGREGATIONS,
                  "head": HEADS, "classifier": CLASSIFIERS, "backbone": (*DEPTHS, *TORCHVISION_BACKBONES)}
    for field, registry in registries.items():
        assert tuple(FIELDS[field].metadata["choices"]) == tuple(registry), field
