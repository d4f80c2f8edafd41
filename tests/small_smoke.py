"""The small smoke sweep the integration tests run: search_spaces/smoke.yaml on fewer images, trials and
epochs. Its own module (not tests/tuner/conftest.py) so that tests outside tests/tuner, the lease's, run
it too."""

from __future__ import annotations

from pathlib import Path

from run_env import REPO

SMALL_SMOKE_TRIALS = 4  # sweep_dir's smoke.yaml
SMALL_SMOKE_PER_CLASS = 120  # fault.yaml's 120 .. 12 images a class (549), not smoke.yaml's 200 .. 20 (915)


def write_small_smoke(folder: Path, trials: int = SMALL_SMOKE_TRIALS, epochs: int = 4, **run) -> Path:
    """search_spaces/smoke.yaml cut to `trials` trials of `epochs` epochs on SMALL_SMOKE_PER_CLASS images a
    class (ASHA from epoch 1, the decay at the last epoch, a checkpoint every epoch, or `run`'s settings):
    every part of a sweep, in a fraction of the smoke sweep's time. No assertion needs smoke.yaml's
    images: what the tests check is the sweep's machinery (the smaller data since 2026-12-07). A
    checkpoint every epoch, not every 2: a trial that ASHA stops at epoch 1 has none, and when it ranks
    first no model is registered, which the tests that count versions met twice in one CI run on the
    smaller data."""
    import yaml

    spec = yaml.safe_load((REPO / "search_spaces" / "smoke.yaml").read_text())
    spec["data"]["synthetic_train_per_class"] = SMALL_SMOKE_PER_CLASS
    spec["run"].update(num_samples=trials, **{"checkpoint_every": 1, **run})
    spec["train"].update(epochs=epochs, lr_decay_epochs=[epochs - 1])
    spec["scheduler"]["grace_period"] = 1
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "smoke.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder / "smoke.yaml"
