"""Shared fixtures: where the real CIFAR-10 copy is, a private decode cache, tiny synthetic data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from run_env import REPO

DEFAULT_CIFAR = REPO.parent / "shared" / "data" / "cifar10"


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Decoded-data cache in a temporary folder, so tests never depend on a user's cache."""
    os.environ["TUNER_CACHE_DIR"] = str(tmp_path_factory.mktemp("tuner-cache"))


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """One intra-op thread in this process and the processes it starts (OMP_NUM_THREADS): a float sum's
    order, and so a training run's numbers, depend on the thread count, and a test's verdict must not
    depend on how many cores the machine has or how busy they are. One, not the core count: two xdist
    workers share the two cores. Sweep trials set their own (resources.cpu)."""
    import torch

    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def cifar_dir() -> Path:
    """The Parquet JPEG copy of CIFAR-10 (TUNER_DATA_DIR, else ../shared/data/cifar10)."""
    path = Path(os.environ.get("TUNER_DATA_DIR") or DEFAULT_CIFAR)
    if not (path / "train.parquet").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CIFAR-10 copy missing at {path}: CI must run with ../shared beside the checkout")
        pytest.skip(f"no CIFAR-10 copy at {path}")
    return path


# The longest modules first (measured: the durations `make test` prints), so that two xdist workers
# do not end with one of them alone on a long test; the rest keep their collection order. (In the
# fresh-clone run of 2026-12-07 at fa1eac8 the last 2 minutes had one worker idle, with test_stop.py's
# 140 s test and test_train_workers.py's 130 s one unranked.)
# test_mlflow_ui.py must stay ahead of test_sweep_integration.py (the finished smoke sweep's readers
# before its writer: tests/tuner/conftest.py, finished_smoke).
LONGEST_FIRST = ("test_soak.py", "test_faults.py", "test_real_cifar.py", "test_stop.py", "test_train_workers.py",
                 "test_workers.py", "test_cluster.py", "test_family.py", "test_grow.py", "test_mlflow_ui.py",
                 "test_sweep_integration.py", "test_damaged_files.py", "test_disk_full.py", "test_experiment_folder.py",
                 "test_edges.py", "test_spec.py", "test_cifar100.py", "test_sigterm.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def order(item: pytest.Item) -> tuple[int, int]:
        # Then, of the other modules, the slow tests before the quick ones, so that the quick ones are what
        # the workers end on (the fresh-clone run of 2026-12-07 at 46ff46a ended with one worker idle for
        # 80 s beside test_warm_trials.py's sweep, collected late in the alphabet).
        ranked = item.path.name in rank
        return rank.get(item.path.name, len(rank)), 0 if ranked or item.get_closest_marker("slow") else 1

    items.sort(key=order)  # stable: within a rank, collection order


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Under `--dist loadgroup` each xdist_group must reach one worker, which xdist arranges by adding
    '@group' to the test's id. pytest 9.2 moved the id to an attribute xdist 3.8 does not set, and the
    groups were silently ignored: the worker sweep and the smoke sweep ran on both workers, and tests
    that share Ray's machine-wide address file ran side by side (constraints.txt pins pytest 9.1.1)."""
    if not session.config.getoption("loadgroup", False):
        return
    lost = [item.nodeid for item in session.items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
    if lost:
        raise pytest.UsageError(f"pytest-xdist ignored the xdist_group of {len(lost)} tests (first: {lost[0]}): "
                                "this pytest and pytest-xdist do not work together; install constraints.txt's versions")
