"""How the tests start the project's commands in other processes and folders: the repository on
PYTHONPATH (benchmarks/ and tools/ are not installed), and none of the user's Ray or MLflow settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def launch_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "tuner.launch", *args]


def sweep_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env
