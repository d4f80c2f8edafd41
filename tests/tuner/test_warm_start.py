"""Warm start (issue 33): a previous sweep's completed trials, with their values, are in the new sweep's
Optuna study before its first proposal; stopped ones and ones outside the new space are left out, and
one line says how many entered, of how many."""

from __future__ import annotations

import pickle
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import launch_cmd, sweep_env, write_small_smoke

from tuner.spec.schema import SpecError, parse_spec
from tuner.sweep.experiment import ExperimentError


@pytest.mark.slow
@pytest.mark.xdist_group("finished_smoke")
def test_a_new_sweep_starts_from_the_completed_trials_of_the_last(finished_smoke, tmp_path: Path) -> None:
    """The last sweep is a copy of the session's finished smoke sweep (its folder is only read), not a sweep of
    its own as until 2026-12-07 (issue 29): a warm start reads only its trials table."""
    source, _, first, _ = finished_smoke
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    shutil.copy(source / "smoke.yaml", tmp_path / "smoke.yaml")
    shutil.copytree(source / "experiments" / "smoke", tmp_path / "experiments" / "smoke")
    rows = pq.read_table(tmp_path / "experiments" / "smoke" / "trials.parquet").to_pylist()
    completed = [r for r in rows if r["status"] == "completed"]
    narrowed = max(r["config.lr"] for r in completed)  # the next search's lr starts at the largest: the rest fall outside
    inside = [r for r in completed if r["config.lr"] >= narrowed]

    spec = yaml.safe_load((tmp_path / "smoke.yaml").read_text())
    spec.update(name="smoke-warm")
    spec["run"]["num_samples"] = 2
    spec["searcher"].update(warm_start_from="smoke", initial_points=None)
    spec["search"]["lr"]["low"] = narrowed
    (tmp_path / "warm.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    second = subprocess.run(launch_cmd("warm.yaml"), cwd=tmp_path, env=sweep_env(), capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    line = next(ln for ln in second.stdout.splitlines() if ln.startswith("tuner: warm start from "))
    stopped, outside = len(rows) - len(completed), len(completed) - len(inside)
    assert f": {len(inside)} of its {len(rows)} trials entered the study" in line, line
    assert (f"{stopped} not completed" in line) == bool(stopped), line
    assert (f"{outside} outside this search space" in line) == bool(outside), line

    exp = tmp_path / "experiments" / "smoke-warm"
    with open(sorted(exp.glob("searcher-state-*.pkl"))[-1], "rb") as f:
        study = pickle.load(f)["_ot_study"]
    warm = study.trials[:len(inside)]  # the old trials first, with their values, then the new sweep's own
    assert sorted(t.value for t in warm) == sorted(r["val_acc"] for r in inside)
    assert sorted(t.params["lr"] for t in warm) == sorted(r["config.lr"] for r in inside)
    assert len(study.trials) == len(inside) + 2
    print(f"\n{line}")


def test_a_warm_start_source_that_is_not_a_sweep_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tuner.sweep.warm_start import warm_start

    monkeypatch.chdir(tmp_path)
    spec = yaml.safe_load(write_small_smoke(tmp_path).read_text())
    spec["searcher"]["warm_start_from"] = "no-such-sweep"
    with pytest.raises(ExperimentError, match="no sweep folder at no-such-sweep"):
        warm_start(parse_spec(spec, "smoke.yaml"))
    (tmp_path / "experiments" / "half").mkdir(parents=True)
    spec["searcher"]["warm_start_from"] = "half"
    with pytest.raises(ExperimentError, match="trials.parquet is missing; warm start from a sweep that has run"):
        warm_start(parse_spec(spec, "smoke.yaml"))
    spec["searcher"]["warm_start_from"] = ""
    with pytest.raises(SpecError, match="searcher.warm_start_from"):
        parse_spec(spec, "smoke.yaml")
