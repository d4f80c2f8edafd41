"""`trainables` must run without the sweep stack: importing every module loads no ray, optuna or mlflow."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import trainables


def test_trainables_imports_none_of_ray_optuna_mlflow() -> None:
    modules = [m.name for m in pkgutil.walk_packages(trainables.__path__, "trainables.")]
    assert "trainables.loop" in modules and "trainables.train" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'optuna', 'mlflow'))\n"
        "print(','.join(bad))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""
