"""The MLflow UI as a person picking a winner meets it: the link the launcher prints, opened in a real
headless Chromium against a real `mlflow server` on 127.0.0.1, lists every trial by its name, and the
best trial's row shows its registered model. Set TUNER_UPDATE_SCREENSHOTS=1 to refresh docs/MLFLOW_UI.md's
screenshot (docs/img/mlflow_trials.png) from this run."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("finished_smoke")]  # reads the session's smoke sweep
REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _chromium(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    # --virtual-time-budget: let the page's scripts fetch and render the runs before the DOM or picture is taken.
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=30000", *args], capture_output=True, text=True, timeout=timeout)


def _printed(stdout: str, what: str) -> str:
    return next(line.split(": ", 2)[2] for line in stdout.splitlines() if line.startswith(f"tuner: {what}"))


def test_the_printed_link_opens_every_trial_by_name_best_first(finished_smoke, tmp_path: Path) -> None:
    assert CHROMIUM, "no chromium here: .ci/run installs Debian's chromium package"
    sweep_dir, server, res, _ = finished_smoke
    assert res.returncode == 0, res.stderr[-2000:]
    link = _printed(res.stdout, "trials in the MLflow UI")
    assert link.startswith(f"{server.uri}/#/experiments/") and "workflowType=machine_learning" in link

    rows = pq.read_table(sweep_dir / "experiments" / "smoke" / "trials.parquet").to_pylist()
    names = [r["trial_name"] for r in rows]
    assert len(set(names)) == len(rows) and all(n.startswith("t") and " lr=" in n for n in names), names

    dom = _chromium("--window-size=1600,1000", "--dump-dom", link).stdout
    missing = [n for n in names if n not in dom]
    assert not missing, f"not on the page: {missing}"
    first = min(names, key=dom.index)  # the table's first row
    best = max(r["val_acc"] for r in rows if r["status"] in ("completed", "stopped"))
    assert next(r for r in rows if r["trial_name"] == first)["val_acc"] == best, "the best trial is not first"
    assert "killed" not in dom.lower()  # stopped trials are results, not MLflow's KILLED
    assert ">v1<" in dom  # the winner's row shows its registered model: version 1 of the model named after the sweep

    shot = tmp_path / "mlflow_trials.png"
    _chromium("--window-size=1900,540", f"--screenshot={shot}", link)
    assert shot.is_file() and shot.stat().st_size > 20_000
    if os.environ.get("TUNER_UPDATE_SCREENSHOTS"):
        shutil.copy(shot, REPO / "docs" / "img" / "mlflow_trials.png")
