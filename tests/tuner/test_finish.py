"""The end of a sweep (tuner/sweep/finish.py) where its sweeps do not reach: what the launcher says when
the best trial cannot be registered. ASHA stops trials after a report, so a trial it stops before its
first checkpoint has nothing to serve; when it ranks first, the launcher says so and how to get the
model, instead of ending without a registered model and without a word (seen in CI, 2026-12-07, on
the small smoke sweep with a checkpoint every 2 epochs)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tuner.spec.schema import load_spec
from tuner.sweep.finish import no_checkpoint_to_register

REPO = Path(__file__).resolve().parents[2]


def test_a_best_trial_without_a_checkpoint_is_named_with_the_way_to_its_model() -> None:
    spec = load_spec(REPO / "search_spaces" / "smoke.yaml")
    spec = dataclasses.replace(spec, run=dataclasses.replace(spec.run, checkpoint_every=2))
    line = no_checkpoint_to_register(spec, {"trial_id": "8820b56c", "trial_name": "t02 lr=0.013", "epochs_run": 1})
    assert line.startswith("no model registered: the best trial t02 lr=0.013 was stopped at epoch 1, before its first checkpoint")
    assert "run.checkpoint_every 2" in line and "python -m tuner.reproduce --from-sweep smoke" in line
    assert no_checkpoint_to_register(spec, {"trial_id": "8820b56c", "epochs_run": 1}).startswith(
        "no model registered: the best trial 8820b56c was")  # a sweep saved before trial names
