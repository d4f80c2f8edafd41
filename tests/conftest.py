"""Shared fixtures: where the real CIFAR-10 copy is, a private decode cache, tiny synthetic data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CIFAR = REPO.parent / "shared" / "data" / "cifar10"


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Decoded-data cache in a temporary folder, so tests never depend on a user's cache."""
    os.environ["TUNER_CACHE_DIR"] = str(tmp_path_factory.mktemp("tuner-cache"))


@pytest.fixture(scope="session")
def cifar_dir() -> Path:
    """The Parquet JPEG copy of CIFAR-10 (TUNER_DATA_DIR, else ../shared/data/cifar10)."""
    path = Path(os.environ.get("TUNER_DATA_DIR") or DEFAULT_CIFAR)
    if not (path / "train.parquet").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CIFAR-10 copy missing at {path}: CI must run with ../shared beside the checkout")
        pytest.skip(f"no CIFAR-10 copy at {path}")
    return path
