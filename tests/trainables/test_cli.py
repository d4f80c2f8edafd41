"""`python -m trainables.train`: JSON lines out; bad input exits 2 with one line, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainables.train", *args], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **(env or {})}, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["--preset", "elf_ldam"], "unknown 'elf_ldam'"),
    (["--preset", "ldam_drw", "--set", "lr=fast"], "lr: cannot read 'fast'"),
    (["--preset", "ldam_drw", "--set", "learning_rate=0.1"], "learning_rate: unknown field"),
    (["--preset", "ldam_drw", "--set", "lr"], "expected KEY=VALUE"),
    (["--preset", "ldam_drw", "--epochs", "ten"], "invalid int value"),
    (["--preset", "ldam_drw", "--set", "exit_taps=stage9"], "unknown tap"),
    (["--preset", "ldam_drw", "--data-dir", "/nonexistent/cifar"], "does not exist"),
    (["--preset", "ldam_drw", "--device", "cuda:0"], None),  # no GPU here: a clear message, not a crash
    (["--config", "/nonexistent/best.json"], "--config /nonexistent/best.json: cannot read it"),
    (["--config", str(REPO / "README.md")], "not JSON"),
    (["--config", str(REPO / "pyproject.toml"), "--preset", "ldam_drw"], "pass one of them"),
])
def test_bad_input_exits_2_with_one_line(args: list[str], message: str | None) -> None:
    import torch

    if message is None:
        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
        message = "no CUDA GPU"
    res = _run(*args, "--max-train-images", "10")
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in res.stderr
    assert res.stdout == ""


def test_missing_cifar_offline_is_one_clear_line(tmp_path: Path) -> None:
    res = _run("--preset", "ce", "--set", "download=false", env={"TUNER_DATA_DIR": str(tmp_path), "TUNER_CACHE_DIR": str(tmp_path / "c")})
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "cifar10 not found" in res.stderr and str(tmp_path) in res.stderr


def test_a_synthetic_run_prints_one_json_object_per_epoch_and_a_summary() -> None:
    res = _run("--preset", "elf_ce_drw", "--set", "dataset=synthetic", "--set", "synthetic_train_per_class=20",
               "--set", "synthetic_test_per_class=10", "--set", "widths=8,16,32", "--epochs", "2", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.strip().splitlines()]
    assert [line.get("epoch") for line in lines[:2]] == [1, 2]
    assert lines[-1]["summary"] is True and lines[-1]["status"] == "completed"
    assert lines[-1]["config"]["exit_taps"] == ["stem", "stage1", "stage2"]


def test_list_presets_names_sources() -> None:
    res = _run("--list-presets")
    assert res.returncode == 0 and "hybrid_m16" in res.stdout and "LDAM-DRW" in res.stdout


@pytest.mark.slow
def test_a_run_summary_is_a_config_file_for_the_same_run(tmp_path: Path) -> None:
    quick = ["--set", "dataset=synthetic", "--set", "synthetic_train_per_class=20", "--set", "widths=8,16,24",
             "--set", "exit_channels=16", "--epochs", "1", "--device", "cpu"]
    first = _run("--preset", "elf_ldam_drw", "--set", "lr=0.05", *quick)
    assert first.returncode == 0, first.stderr[-2000:]
    (tmp_path / "summary.json").write_text(first.stdout.strip().splitlines()[-1])
    again = _run("--config", str(tmp_path / "summary.json"), "--seed", "4")
    assert again.returncode == 0, again.stderr[-2000:]
    before, after = (json.loads(r.stdout.strip().splitlines()[-1])["config"] for r in (first, again))
    assert after == {**before, "seed": 4} and after["lr"] == 0.05 and after["exit_taps"]


@pytest.mark.slow
def test_a_killed_checkpointed_run_resumes_after_its_last_epoch_and_refuses_a_foreign_or_damaged_file(tmp_path: Path) -> None:
    import signal
    import time

    import torch

    quick = ["--preset", "ldam_drw", "--device", "cpu", "--epochs", "30", "--set", "dataset=synthetic",
             "--set", "synthetic_train_per_class=20", "--set", "widths=8,16,32", "--set", "max_eval_images=100",
             "--set", "collapse_patience=0"]
    checkpoint = tmp_path / "run.pt"
    proc = subprocess.Popen([sys.executable, "-m", "trainables.train", *quick, "--checkpoint", str(checkpoint)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    assert json.loads(proc.stdout.readline())["epoch"] == 1
    deadline = time.time() + 60
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # mid-run, as a lease running out or a lost machine would
    proc.wait()
    done = int(torch.load(checkpoint, weights_only=True)["epoch"])
    assert 1 <= done < 30

    resumed = _run(*quick, "--checkpoint", str(checkpoint))
    assert resumed.returncode == 0, resumed.stderr
    lines = [json.loads(line) for line in resumed.stdout.splitlines()]
    assert [x["epoch"] for x in lines[:-1]] == list(range(done + 1, 31)) and lines[-1]["epochs_run"] == 30
    again = _run(*quick, "--checkpoint", str(checkpoint))  # finished: nothing to train, the summary from the saved model
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert again.returncode == 0 and summary["epochs_run"] == 30 and summary["val_acc"] == lines[-1]["val_acc"]

    other = _run(*[a if a != "30" else "31" for a in quick], "--checkpoint", str(checkpoint))
    assert other.returncode == 2 and "another configuration (epochs differ)" in other.stderr
    checkpoint.write_bytes(b"not a checkpoint")
    damaged = _run(*quick, "--checkpoint", str(checkpoint))
    assert damaged.returncode == 2 and "cannot read it" in damaged.stderr and "remove it" in damaged.stderr
    assert len(damaged.stderr.strip().splitlines()) == 1 and "Traceback" not in damaged.stderr
