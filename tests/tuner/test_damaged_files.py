"""Every file the project reads or writes, damaged at random (cut short, random bytes, empty, a JSON
value of the wrong type): each reader repairs what it can rebuild and refuses the rest with its
own error (one line naming the file and the way out), never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from conftest import launch_cmd, run_with_fault, sweep_env, wait_for, write_small_smoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xdist_group("damaged_files")  # its module fixtures (a CIFAR table, a cut sweep) are made once

DAMAGE = st.one_of(
    st.tuples(st.just("cut"), st.floats(0.0, 0.95)),
    st.tuples(st.just("bytes"), st.binary(min_size=1, max_size=600)),
    st.just(("empty", None)),
    st.tuples(st.just("type"), st.sampled_from(["[1, 2]", '"text"', "42", "null", '{"a": 1}', "true"])),
)
EXAMPLES = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def fresh(tmp_path: Path) -> Path:
    """A new folder per example (hypothesis runs many examples in one test's tmp_path)."""
    return Path(tempfile.mkdtemp(dir=tmp_path))


def damage(path: Path, how: tuple) -> None:
    kind, arg = how
    data = path.read_bytes()
    path.write_bytes({"cut": lambda: data[: int(len(data) * arg)], "bytes": lambda: arg, "empty": lambda: b"",
                      "type": lambda: arg.encode()}[kind]())


@pytest.fixture(scope="session")
def tiny_cifar(tmp_path_factory: pytest.TempPathFactory, cifar_dir: Path) -> Path:
    """A Parquet CIFAR folder of 40 training and 40 test images (every class), in the JPEG copy's format."""
    folder = tmp_path_factory.mktemp("tiny-cifar")
    for name in ("train", "test"):
        table = pq.read_table(cifar_dir / f"{name}.parquet")
        labels = table.column("label").to_numpy()
        rows = np.concatenate([np.flatnonzero(labels == c)[:4] for c in range(10)])
        pq.write_table(table.take(rows), folder / f"{name}.parquet")
    return folder


@EXAMPLES
@given(how=DAMAGE, which=st.sampled_from(["train.parquet", "test.parquet"]))
def test_a_damaged_dataset_table_is_refused_naming_it(tmp_path: Path, tiny_cifar: Path, how: tuple, which: str) -> None:
    from trainables.data.sources import DataNotFoundError, load_cifar

    folder = fresh(tmp_path) / "copy"
    shutil.copytree(tiny_cifar, folder)
    damage(folder / which, how)
    try:
        load_cifar("cifar10", str(folder), download=False)
    except DataNotFoundError as exc:
        assert str(folder) in str(exc), exc  # the file named, with the way out: copy it again


@EXAMPLES
@given(how=DAMAGE)
def test_a_damaged_decode_cache_is_rebuilt(tmp_path: Path, tiny_cifar: Path, how: tuple) -> None:
    from trainables.data.sources import cache_root, load_cifar

    good = load_cifar("cifar10", str(tiny_cifar), download=False)
    for cached in (cache_root() / "decoded").glob("*.npz"):
        damage(cached, how)
    again = load_cifar("cifar10", str(tiny_cifar), download=False)
    assert np.array_equal(good.train_images, again.train_images) and np.array_equal(good.test_labels, again.test_labels)


@EXAMPLES
@given(how=DAMAGE)
def test_the_launcher_state_and_lock(tmp_path: Path, how: tuple) -> None:
    from tuner.sweep.experiment import LOCK_FILE, SWEEP_STATE_FILE, DriverLock, ExperimentError, SweepState, read_state, write_state

    exp = fresh(tmp_path) / "exp"
    write_state(str(exp), SweepState(spec_fingerprint="abc", parent_run_id="r1"))
    damage(exp / SWEEP_STATE_FILE, how)
    try:
        assert read_state(str(exp)) == SweepState(spec_fingerprint="abc", parent_run_id="r1")
    except ExperimentError as exc:
        assert "--restart" in str(exc) and SWEEP_STATE_FILE in str(exc)
    (exp / LOCK_FILE).write_text(json.dumps({"host": "elsewhere", "pid": 1, "heartbeat": 0}))
    damage(exp / LOCK_FILE, how)
    with DriverLock(str(exp)):  # a damaged lock is nobody's: the driver takes it
        assert json.loads((exp / LOCK_FILE).read_text())["pid"] == os.getpid()


@EXAMPLES
@given(how=DAMAGE)
def test_a_damaged_run_checkpoint_or_config_file(tmp_path: Path, how: tuple) -> None:
    from trainables.checkpoint_file import read_checkpoint, write_checkpoint
    from trainables.config import ConfigError, TrainConfig
    from trainables.train import read_config_file

    config = TrainConfig(epochs=3)
    checkpoint = fresh(tmp_path) / "run.pt"
    write_checkpoint({"config": config.to_dict(), "epoch": 2, "model": {"w": torch.zeros(3)}}, checkpoint)
    damage(checkpoint, how)
    try:
        assert read_checkpoint(checkpoint, config)["epoch"] == 2
    except ConfigError as exc:
        assert str(checkpoint) in str(exc) and "remove it" in str(exc)
    summary = fresh(tmp_path) / "best.json"
    summary.write_text(json.dumps({"summary": True, "config": config.to_dict()}))
    damage(summary, how)
    try:
        assert isinstance(read_config_file(str(summary)), dict)
    except ConfigError as exc:
        assert str(summary) in str(exc)


@EXAMPLES
@given(how=DAMAGE)
def test_a_damaged_spec(tmp_path: Path, how: tuple) -> None:
    from tuner.spec.schema import SpecError, load_spec

    spec = fresh(tmp_path) / "smoke.yaml"
    shutil.copy(REPO / "search_spaces" / "smoke.yaml", spec)
    damage(spec, how)
    try:
        load_spec(spec)
    except SpecError as exc:
        assert str(exc).startswith(str(spec))


@EXAMPLES
@given(how=DAMAGE)
def test_results_files_and_benchmarks_are_skipped_or_started_over(tmp_path: Path, how: tuple) -> None:
    from tools.lease.plan import gpu_figures
    from tuner.reproduce.run_file import RunFiles
    from tuner.reproduce.tables import build

    folder = fresh(tmp_path) / "results"
    folder.mkdir()
    run = folder / "ldam_drw-ir100-seed0.jsonl"
    run.write_text(json.dumps({"epoch": 1, "test_acc": 0.5, "status": "running"}) + "\n" + json.dumps(
        {"summary": True, "status": "completed", "epochs_run": 1, "val_acc": 0.5, "test_acc": 0.5, "many_acc": 0.5,
         "medium_acc": 0.5, "few_acc": 0.5, "flops_ratio": 1.0, "wall_seconds": 1, "selected_by_val": {"test_acc": 0.5}}) + "\n")
    damage(run, how)
    build(folder)  # a damaged run file is an unfinished run: left out of the tables, run again by tuner.reproduce
    checkpoint = RunFiles(folder, "x").checkpoint
    checkpoint.parent.mkdir()
    torch.save({"epoch": 3}, checkpoint)
    damage(checkpoint, how)
    assert RunFiles(folder, "x").checkpoint_epoch() in (0, 3)  # damaged: the run starts over, nothing else
    perf = fresh(tmp_path) / "repo" / "docs" / "perf"
    perf.mkdir(parents=True)
    (perf / "cuda-x.json").write_text(json.dumps({"device_type": "cuda", "packed": {}}))
    damage(perf / "cuda-x.json", how)
    assert isinstance(gpu_figures(perf.parents[1]), list)


@EXAMPLES
@given(how=DAMAGE, which=st.sampled_from(["manifest.json", "results.tar.gz"]))
def test_a_damaged_lease_return_is_refused(tmp_path: Path, how: tuple, which: str) -> None:
    from tools.lease.collect import CollectError, collect

    back = fresh(tmp_path) / "back"
    repo = fresh(tmp_path) / "repo"
    (repo / "docs").mkdir(parents=True)
    shutil.copy(REPO / "docs" / "PERFORMANCE.md", repo / "docs" / "PERFORMANCE.md")
    (back / "results").mkdir(parents=True)
    (back / "results" / "a.jsonl").write_text("{}\n")
    with tarfile.open(back / "results.tar.gz", "w:gz") as tar:
        tar.add(back / "results" / "a.jsonl", arcname="results/a.jsonl")
    (back / "manifest.json").write_text(json.dumps({"started": "2026-11-28 00:00:00 UTC", "archives": ["results.tar.gz"],
                                                    "steps": []}))
    damage(back / which, how)
    try:
        collect(back, repo)
    except CollectError as exc:
        assert str(back) in str(exc)


def test_the_commands_refuse_damaged_inputs_in_one_line(tmp_path: Path, tiny_cifar: Path) -> None:
    """The same, end to end: exit 2, one line on stderr, no traceback."""
    data = tmp_path / "data"
    shutil.copytree(tiny_cifar, data)
    damage(data / "train.parquet", ("cut", 0.5))
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(os.urandom(300))
    runs = [
        [sys.executable, "-m", "trainables.train", "--preset", "ldam_drw", "--epochs", "1", "--device", "cpu", "--data-dir", str(data)],
        [sys.executable, "-m", "tuner.launch", str(spec)],
    ]
    for cmd in runs:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                             env={**os.environ, "TUNER_CACHE_DIR": str(tmp_path / "cache")})
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, (cmd, res.stderr[-2000:])
        assert "Traceback" not in res.stderr


@EXAMPLES
@given(how=DAMAGE)
def test_a_damaged_trials_table_is_refused_by_the_report(tmp_path: Path, how: tuple, capsys: pytest.CaptureFixture) -> None:
    import pyarrow as pa

    from tuner.report.command import main as report

    exp = fresh(tmp_path) / "sweep"
    exp.mkdir()
    pq.write_table(pa.Table.from_pylist([{"trial_id": "a", "status": "completed", "val_acc": 0.5}]), exp / "trials.parquet")
    damage(exp / "trials.parquet", how)
    assert report([str(exp), "--no-mlflow", "--out", str(exp / "report")]) == 2
    err = capsys.readouterr().err
    assert "trials.parquet is damaged" in err and "launch command" in err and len(err.strip().splitlines()) == 1


@pytest.fixture(scope="session")
def cut_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke sweep stopped by Ctrl-C once a trial has saved its first checkpoint, with trials
    unfinished: Ray's state, Optuna's pickled searcher and the MLflow database are all there for a
    resume to read. Cut by what the sweep has done, not by a clock: at the first checkpoint (epoch 1
    of one of the first two trials) at least four of its six trials have not started. The small smoke
    sweep (6 trials): smoke.yaml's 915 images took this fixture 51 s of CI (2026-12-07)."""
    folder = tmp_path_factory.mktemp("cut-sweep")
    write_small_smoke(folder, trials=6)
    exp = folder / "experiments" / "smoke"

    def ctrl_c_at_the_first_checkpoint(proc: subprocess.Popen) -> None:
        wait_for(lambda: list(exp.glob("*/checkpoint_*")), 300, "a first trial checkpoint", proc)
        proc.send_signal(signal.SIGINT)

    rc, output = run_with_fault(launch_cmd("smoke.yaml"), folder, sweep_env(), ctrl_c_at_the_first_checkpoint, timeout=300)
    assert rc == 130, output[-3000:]
    from ray.tune import ExperimentAnalysis

    ended = [t for t in ExperimentAnalysis(str(exp)).trials if t.status in ("TERMINATED", "ERROR")]
    assert len(ended) < 6, "the sweep ended before it was cut"
    return folder


# What a resume reads besides the project's own files: Ray Tune's experiment state, its searcher
# counters, Optuna's pickled searcher (study and sampler), the pickled Tuner, and MLflow's database.
RESUME_READS = ["experiments/smoke/experiment_state-*.json", "experiments/smoke/search_gen_state-*.json",
                "experiments/smoke/searcher-state-*.pkl", "experiments/smoke/tuner.pkl", "mlflow.db"]


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(RESUME_READS), how=DAMAGE)
def test_a_resume_from_damaged_ray_optuna_or_mlflow_files_is_refused(tmp_path: Path, cut_sweep: Path, which: str,
                                                                     how: tuple) -> None:
    folder = fresh(tmp_path) / "sweep"
    shutil.copytree(cut_sweep, folder)
    target = sorted(folder.glob(which))[-1]  # the newest: the one a resume reads
    damage(target, how)
    res = subprocess.run([sys.executable, "-m", "tuner.launch", "smoke.yaml"], cwd=folder, capture_output=True, text=True,
                         timeout=600, env=sweep_env())
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    assert res.returncode == 2, (which, how, res.stdout[-1500:], res.stderr[-1500:])
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("tuner.launch: ") and ("--restart" in last or "move it aside" in last), last
    assert target.name in last or "parent run" in last, last
