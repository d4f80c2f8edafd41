"""`python -m benchmarks.data_parallel` trains one run over 1 and 2 processes and reports comparable figures
(a smoke test of the tool a GPU lease runs over several GPUs; the figures are never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_reports_each_world_size_against_one_process() -> None:
    res = subprocess.run([sys.executable, "-m", "benchmarks.data_parallel", "--device", "cpu", "--worlds", "1", "2",
                          "--images", "256", "--batch", "64", "--epochs", "1"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [line["world"] for line in lines] == [1, 2]
    assert lines[0]["steps_per_epoch"] == lines[1]["steps_per_epoch"] == 4  # the global batch, whatever the world
    speedup = lines[1]["images_per_second"] / lines[0]["images_per_second"]
    assert lines[0]["speedup"] == 1.0 and lines[1]["speedup"] == pytest.approx(speedup)
    assert lines[1]["efficiency"] == pytest.approx(lines[1]["speedup"] / 2)


def test_more_gpus_than_the_machine_has_is_one_line_and_exit_2() -> None:
    res = subprocess.run([sys.executable, "-m", "benchmarks.data_parallel", "--device", "cuda", "--worlds", "64"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "--worlds 64 needs as many GPUs" in res.stderr
