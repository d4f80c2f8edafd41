"""Parameter importances over a sweep's trials (Optuna's fANOVA and PED-ANOVA on a study rebuilt from
the trials table), on rows the sweep's own code makes: the parameter the objective depends on comes
first, a conditional one is weighed over the trials that used it, and what cannot be computed is a
note. The figures are valid PNGs."""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image

from tuner.report import search_plots
from tuner.report.importance import MIN_TRIALS, PED_ANOVA_TRIALS, param_importances
from tuner.spec.schema import Param, load_spec
from tuner.sweep.trials_table import trial_row

REPO = Path(__file__).resolve().parents[2]
SPEC = load_spec(REPO / "search_spaces" / "reslt.yaml")  # floats, a choice, and mixup_alpha only without autoaugment
PARAMS = list(SPEC.search)


def _rows(n: int, seed: int = 0, status: str = "completed", **fixed) -> list[dict]:
    """n trials whose val_acc rises with log(lr) and ignores everything else (plus a little noise)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        sampled = {"reslt_alpha": rng.uniform(0.8, 0.999), "lr": math.exp(rng.uniform(math.log(0.02), math.log(0.2))),
                   "weight_decay": math.exp(rng.uniform(math.log(1e-4), math.log(1e-3))),
                   "label_smoothing": rng.uniform(0.0, 0.2), "autoaugment": rng.random() < 0.5, **fixed}
        if not sampled["autoaugment"]:
            sampled["mixup_alpha"] = rng.uniform(0.1, 1.0)
        acc = 0.3 + 0.5 * (math.log(sampled["lr"]) - math.log(0.02)) / math.log(10) + rng.gauss(0, 0.01)
        metrics = {"trial_id": f"{status[0]}{seed}-{i:02d}", "status": status, "epoch": 8, "val_acc": acc,
                   "flops_ratio": 0.3 + sampled["reslt_alpha"] - 0.8}  # the second objective follows alpha
        rows.append(trial_row(SPEC, metrics, sampled, None))
    return rows


def _no_history(trial_id: str, metric: str) -> list:
    raise AssertionError("completed trials are compared on their final values")


def test_the_parameter_the_objective_depends_on_comes_first() -> None:
    imp = param_importances(_rows(PED_ANOVA_TRIALS), PARAMS, [("val_acc", "max")], _no_history)
    for evaluator in ("fanova", "ped_anova"):
        scores = imp.importances["val_acc"][evaluator]
        assert max(scores, key=scores.get) == "lr" and scores["lr"] > 0.5, (evaluator, scores)
    assert "mixup_alpha" in imp.importances["val_acc"]["fanova"]  # over the trials without autoaugment
    assert imp.fidelity == f"final values of {PED_ANOVA_TRIALS} completed trials"
    low, high = map(float, imp.top_ranges["lr"].split(" .. "))
    assert low > 0.08 and high <= 0.2  # the top quarter used the high learning rates
    lines = imp.lines("val_acc")
    assert lines[0].startswith("importance for val_acc (fANOVA") and lines[1].split()[0] == "lr"
    assert {ln.split()[0] for ln in lines[1:len(PARAMS) + 1]} == {p.name for p in PARAMS}


def test_the_winning_design_and_the_best_of_each_choice() -> None:
    rows = _rows(10)
    imp = param_importances(rows, PARAMS, [("val_acc", "max")], _no_history)
    best = max(rows, key=lambda r: r["val_acc"])
    assert imp.best_design == {"autoaugment": str(best["config.autoaugment"])}
    by_value = imp.choices["autoaugment"]
    assert sum(n for _, n in by_value.values()) == 10 and max(b for b, _ in by_value.values()) == best["val_acc"]
    assert any(line.startswith("winning design: autoaugment=") for line in imp.lines("val_acc"))


def test_a_null_choice_is_a_value_not_a_missing_one() -> None:
    """grad_clip_norm: [null, 5.0] (the family sweep's): the trials without clipping count, and win."""
    clip = Param(name="grad_clip_norm", kind="choice", values=(None, 5.0))
    rows = _rows(10)
    for i, row in enumerate(rows):
        row["config.grad_clip_norm"] = None if i % 2 else 5.0
    best = max(rows, key=lambda r: r["val_acc"])
    best["config.grad_clip_norm"] = None
    imp = param_importances(rows, [*PARAMS, clip], [("val_acc", "max")], _no_history)
    assert imp.best_design["grad_clip_norm"] == "None"
    unclipped = sum(r["config.grad_clip_norm"] is None for r in rows)
    assert {v: n for v, (_, n) in imp.choices["grad_clip_norm"].items()} == {"None": unclipped, "5": 10 - unclipped}
    assert "None" in imp.top_ranges["grad_clip_norm"]


def test_ped_anova_waits_for_enough_trials_and_a_constant_parameter_is_named() -> None:
    imp = param_importances(_rows(8, label_smoothing=0.1), PARAMS, [("val_acc", "max"), ("flops_ratio", "min")],
                            _no_history)
    assert set(imp.importances["val_acc"]) == {"fanova"} and "label_smoothing" not in imp.importances["val_acc"]["fanova"]
    assert any(n.startswith("PED-ANOVA skipped") for n in imp.notes)
    assert any(n.startswith("label_smoothing: one value (0.1)") for n in imp.notes)
    assert set(imp.importances) == {"val_acc", "flops_ratio"}  # each objective of a two-objective sweep
    flops = imp.importances["flops_ratio"]["fanova"]
    assert max(flops, key=flops.get) == "reslt_alpha", flops


def test_with_few_completed_trials_all_compare_at_the_epoch_they_all_reached() -> None:
    rows = _rows(2) + _rows(6, seed=1, status="stopped")
    for r in rows[2:]:
        r["epochs_run"] = 2
    by_id = {r["trial_id"]: r for r in rows}

    def history(trial_id: str, metric: str) -> list[tuple[int, float]]:  # Ray Tune's per-epoch results
        return [(1, by_id[trial_id][metric] / 2), (2, by_id[trial_id][metric]), (8, 0.99)][:by_id[trial_id]["epochs_run"] and 3]

    imp = param_importances(rows, PARAMS, [("val_acc", "max")], history)
    assert imp.fidelity.startswith("values at epoch 2, which all") and "(2 completed)" in imp.fidelity
    assert imp.importances["val_acc"]["fanova"]


def test_what_cannot_be_computed_is_one_note() -> None:
    imp = param_importances(_rows(MIN_TRIALS - 1), PARAMS, [("val_acc", "max")], lambda t, m: [])
    assert imp.importances == {} and len(imp.notes) == 1 and f"need {MIN_TRIALS} trials" in imp.notes[0]
    same = _rows(8)
    for r in same:
        r["flops_ratio"] = 0.5
    imp = param_importances(same, PARAMS, [("val_acc", "max"), ("flops_ratio", "min")], _no_history)
    assert set(imp.importances) == {"val_acc"} and "flops_ratio: the same in every compared trial" in " ".join(imp.notes)
    only_stopped = _rows(3, status="stopped")
    imp = param_importances(only_stopped, PARAMS, [("val_acc", "max")], lambda t, m: [])
    assert imp.importances == {} and len(imp.notes) == 1
    assert param_importances(_rows(8), [], [("val_acc", "max")], _no_history).notes == ["nothing was searched"]


def test_the_figures_are_pngs(tmp_path: Path) -> None:
    rows = _rows(12) + _rows(4, seed=2, status="stopped")
    imp = param_importances(rows, PARAMS, [("val_acc", "max")], _no_history)
    paths = [search_plots.importance_bars(imp, tmp_path / "i.png"), search_plots.slices(rows, PARAMS, "val_acc", tmp_path / "s.png"),
             search_plots.parallel_coordinates(rows[:5], PARAMS, "val_acc", tmp_path / "p.png")]
    for path in paths:
        with Image.open(path) as img:
            img.verify()
            assert img.format == "PNG" and img.size[0] >= 600
