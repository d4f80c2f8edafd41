"""Spec validation: every shipped spec passes; malformed ones fail with the key named, before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tuner.spec.schema import SpecError, load_spec, parse_spec

REPO = Path(__file__).resolve().parents[2]
SPECS = sorted((REPO / "search_spaces").rglob("*.yaml"))
SMOKE = yaml.safe_load((REPO / "search_spaces" / "smoke.yaml").read_text())


def test_the_main_specs_exist() -> None:
    assert {p.name for p in SPECS} >= {"hybrid.yaml", "elf.yaml", "reslt.yaml", "smoke.yaml"}


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_every_shipped_spec_validates(path: Path) -> None:
    spec = load_spec(path)
    assert spec.search and spec.run.num_samples >= 4
    assert spec.base_config.validate()


def _with(change: dict) -> dict:
    """The smoke spec with nested keys replaced ({'search.lr.low': 0} style); None deletes a key."""
    doc = yaml.safe_load(yaml.safe_dump(SMOKE))
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        node = doc
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return doc


MALFORMED = [
    ({"serch": {}}, "serch: unknown key"),
    ({"train.lrr": 0.1}, "train.lrr: unknown training field"),
    ({"search.lr": {"type": "loguniform", "low": 0.3, "high": 0.01}}, "search.lr: empty or inverted range"),
    ({"search.lr": {"type": "loguniform", "low": 0.1, "high": 0.1}}, "search.lr: empty or inverted range"),
    ({"search.lr": {"type": "loguniform", "low": 0.0, "high": 0.1}}, "search.lr.low: a log scale needs low > 0"),
    ({"train.lr": -0.1}, "train.lr: must be > 0"),
    ({"search.train_exit_threshold": {"type": "uniform", "low": 0.5, "high": 1.5}}, "search.train_exit_threshold.high: must be < 1"),
    ({"search.inference_exit_threshold": {"type": "uniform", "low": 0.0, "high": 0.5}}, "search.inference_exit_threshold.low: must be > 0"),
    ({"train.preset": "hybrid_m9"}, "train.preset: unknown preset 'hybrid_m9'"),
    ({"data.dataset": "imagenet"}, "data.dataset: expected one of cifar10, cifar100, synthetic"),
    ({"data.data_dir": "/nonexistent/cifar"}, "data.data_dir: folder /nonexistent/cifar does not exist"),
    ({"run.num_samples": "many"}, "run.num_samples: expected an integer"),
    ({"run.num_samples": 0}, "run.num_samples: must be >= 1"),
    ({"objective.metric": "test_acc"}, "objective.metric: expected one of val_acc"),
    ({"objective.mode": "min"}, "objective.mode: val_acc is maximised"),
    ({"scheduler.grace_period": 50}, "scheduler.grace_period: 50 exceeds"),
    ({"scheduler.reduction_factor": 1}, "scheduler.reduction_factor: must be > 1"),
    ({"train.reslt_alpha": 0.9}, "search.reslt_alpha: is both fixed"),
    ({"search.lr.type": "gaussian"}, "search.lr.type: expected one of uniform, loguniform, int, choice"),
    ({"search.exit_taps": {"type": "uniform", "low": 1, "high": 2}}, "search.exit_taps.type: uniform needs a float field"),
    ({"search.seed": {"type": "int", "low": 5, "high": 2}}, "search.seed: empty or inverted range"),
    ({"search.lr.when": {"autoaugment": "sometimes"}}, "search.lr.when.autoaugment: expected true or false"),
    ({"search.lr.when": {"reslt_alpha": 0.9}}, "search.lr.when.reslt_alpha: reslt_alpha is searched at or below lr"),
    ({"searcher.initial_points": [{"lr": 5.0}]}, "searcher.initial_points[0].lr: 5.0 is outside the searched range"),
    ({"searcher.initial_points": [{"momentum": 0.5}]}, "searcher.initial_points[0].momentum: not a searched parameter"),
    ({"searcher.sampler": "grid"}, "searcher.sampler: expected one of tpe, random, nsga2"),
    ({"resources.gpu": -1}, "resources.gpu: must be >= 0"),
    ({"resources.cpu": 0}, "resources.cpu: must be > 0"),
    ({"tracking.uri": "ftp://example.org"}, "tracking.uri: expected an MLflow tracking URI"),
    ({"name": "../escape"}, "name: expected letters, digits"),
    ({"train.widths": [16, 32, 64]}, "head: 'reslt_grouped' needs channels divisible by 3"),
    ({"search.head": {"type": "choice", "values": ["plain"]}}, "search.head: value 'plain' makes an invalid configuration"),
    # checked where it applies (loss: ldam), and still invalid there: 48 and 64 channels do not split in 3
    ({"search.reslt_heads_at": {"type": "choice", "values": ["all"], "when": {"loss": "ldam"}}},
     "search.reslt_heads_at: value 'all' makes an invalid configuration"),
    ({"objective.second": {"metric": "flops_ratio", "mode": "max"}}, "objective.second.mode: flops_ratio is minimised"),
    ({"train.epochs": 0}, "train.epochs: must be >= 1"),
]


@pytest.mark.parametrize("change, message", MALFORMED, ids=[m for _, m in MALFORMED])
def test_malformed_spec_is_rejected_naming_the_key(change: dict, message: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(_with(change), "spec.yaml")
    assert message in str(err.value), str(err.value)
    assert str(err.value).startswith("spec.yaml: ")


def test_a_conditional_parameter_may_also_be_fixed_and_a_choice_brings_its_one_value_companions() -> None:
    """The fixed value is what trials use where the condition fails; a value is checked with the conditional
    one-value choices it switches on (the full-power hybrid's widths and exit channels)."""
    spec = parse_spec(_with({
        "train.label_smoothing": 0.0,
        "search.label_smoothing": {"type": "uniform", "low": 0.0, "high": 0.2, "when": {"loss": "ce"}},
        "search.reslt_heads_at": {"type": "choice", "values": ["final", "all"]},
        "search.widths": {"type": "choice", "values": [[15, 30, 63]], "when": {"reslt_heads_at": "all"}},
        "search.exit_channels": {"type": "choice", "values": [63], "when": {"reslt_heads_at": "all"}},
        "searcher.initial_points": None}), "spec.yaml")
    assert spec.base_config.label_smoothing == 0.0 and "label_smoothing" in [p.name for p in spec.search]


def test_elf_spec_cannot_search_what_the_preset_selects_or_a_threshold_it_cannot_reach() -> None:
    # elf_ldam_drw picks s on the validation split, and its cosine exits never pass 0.451 (10 classes).
    with pytest.raises(SpecError) as err:
        parse_spec(_with({"train.preset": "elf_ldam_drw", "search.reslt_alpha": None,
                          "searcher.initial_points": None}), "spec.yaml")
    message = str(err.value)
    assert "search.inference_exit_threshold: the training config selects s on the validation split" in message
    assert "set train.inference_threshold_selection: fixed" in message
    fixed = _with({"train.preset": "elf_ldam_drw", "search.reslt_alpha": None, "searcher.initial_points": None,
                   "train.inference_threshold_selection": "fixed"})
    with pytest.raises(SpecError, match="search.train_exit_threshold: value 0.5 makes an invalid configuration.*never be reached"):
        parse_spec(fixed, "spec.yaml")
    fixed["search"]["train_exit_threshold"] = {"type": "uniform", "low": 0.1, "high": 0.4}
    assert parse_spec(fixed, "spec.yaml").base_config.inference_threshold_selection == "fixed"


@pytest.mark.slow
def test_the_main_sweep_reaches_thresholds_at_which_every_early_exit_trains(cifar_dir: Path) -> None:
    """hybrid.yaml (routed, so an exit trains only on the samples that leave there): at t = 0.2, inside
    its searched range, every early exit trains in every one of 2 epochs on 3,000 real CIFAR-10-LT images
    (measured 2026-12-06 over 3 epochs: at least 1.8%, 14% and 18% of the samples at 1 and at 2 torch
    threads; 2026-12-07 over 2 epochs at 1 thread: exit 0 1.8% and 1.9%, the others 14% or more). At 0.3,
    where this test stood until then, exit 0 got 0.0-0.1% at 1 thread and 10% by epoch 3 at 2: a verdict
    the thread count decided (the suite now runs one thread: tests/conftest.py). Two epochs, not three, since
    2026-12-07: the first epochs, in the warm-up, are where an exit gets the fewest samples (issue 29)."""
    from trainables.config import with_overrides
    from trainables.loop import train

    spec = load_spec(REPO / "search_spaces" / "hybrid.yaml")
    t_range = next(p for p in spec.search if p.name == "train_exit_threshold")
    assert t_range.low <= 0.2 <= t_range.high
    quick = with_overrides(spec.base_config, {"train_exit_threshold": 0.2, "epochs": 2, "device": "cpu", "data_dir": str(cifar_dir),
                                              "max_train_images": 3000, "max_eval_images": 500})
    reports: list[dict] = []
    train(quick, lambda m, s: reports.append(m))
    assert [r["untrained_exits"] for r in reports] == [[], []], [r["exit_loss_fractions"] for r in reports]


def test_all_problems_come_in_one_message() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(_with({"train.lrr": 1, "run.num_samples": 0, "searcher.sampler": "grid"}), "spec.yaml")
    assert len(err.value.problems) == 3


def test_yaml_syntax_and_duplicate_keys(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nsearch:\n  lr: {type: uniform, low: 0.1\n")
    with pytest.raises(SpecError, match="not valid YAML at line"):
        load_spec(broken)
    twice = tmp_path / "twice.yaml"
    twice.write_text("name: a\nname: b\n")
    with pytest.raises(SpecError, match="key 'name' appears twice"):
        load_spec(twice)
    with pytest.raises(SpecError, match="file not found"):
        load_spec(tmp_path / "missing.yaml")


def test_a_bad_spec_on_the_command_line_exits_2_and_starts_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_with({"search.lr.low": 0.0, "train.preset": "nope"})))
    res = subprocess.run([sys.executable, "-m", "tuner.launch", str(bad)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr
    assert str(bad) in lines[0] and "search.lr.low" in lines[0] and "train.preset" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]  # no experiment folder, no mlflow.db


def test_the_spec_reference_in_docs_is_current() -> None:
    from tuner.spec.reference import render

    assert (REPO / "docs" / "SPEC.md").read_text() == render(), "regenerate: python -m tuner.spec.reference > docs/SPEC.md"
