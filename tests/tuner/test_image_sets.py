"""Image-file sets end to end (issue 31): a tiny long-tailed set written as real image files in each
published format (ImageNet-LT and Places-LT split files, iNaturalist'18 JSON, an ImageFolder tree),
with a grayscale JPEG, a CMYK JPEG and a PNG named .JPEG among them, each read into head-first splits;
one of them swept by Ray Tune with a torchvision backbone and ELF exits, logged to MLflow with
many/medium/few, its winner registered and predicting on the JPEG files (a sweep per format until
2026-12-07, issue 29: past the reader it is the same code); and each kind of bad input refused in one
line before anything trains."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import launch_cmd, sweep_env
from image_sets import FORMATS, write_image_set
from mlflow import MlflowClient

TRIALS = 2
# 120 down to 2 training images per class: classes with more than 100, 20 to 100 and fewer than 20 (the
# ELF paper's many / medium / few) all exist.
SET = dict(classes=6, most=120, ratio=60.0)


def _spec(fmt: str, data_dir: Path, **train) -> dict:
    return {
        "name": f"tiny-{fmt.replace('_', '-')}",
        "data": {"dataset": fmt, "data_dir": str(data_dir), "image_size": 32},
        # ELF(LDAM)+DRW as the paper's tables train it, on a small torchvision ResNet and a short schedule.
        "train": {"preset": "r50_elf_ldam_drw", "backbone": "resnet18", "epochs": 2, "warmup_epochs": 1, "lr_decay_epochs": [1],
                  "drw_start_epoch": 1, "batch_size": 32, "data_workers": 1, **train},
        "search": {"lr": {"type": "loguniform", "low": 0.01, "high": 0.1},
                   "train_exit_threshold": {"type": "uniform", "low": 0.2, "high": 0.5}},  # 2/C = 0.33 for 6 classes
        "searcher": {"seed": 1},
        "scheduler": {"type": "fifo"},
        "resources": {"cpu": 1, "gpu": 0},
        "run": {"num_samples": TRIALS, "max_concurrent": 2, "checkpoint_every": 1},
    }


def _launch(folder: Path, spec: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return subprocess.run(launch_cmd("spec.yaml"), cwd=folder, env=sweep_env(), capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_reads_into_head_first_splits_of_existing_files_that_decode(fmt: str, tmp_path: Path) -> None:
    """What differs between the formats is how their files list the images; from the lists on, a sweep on
    any of them runs the same code (the sweep below, on one format)."""
    from trainables.data.image_lists import INAT_VAL_PER_CLASS, read_image_lists
    from trainables.data.streamed import decode_rgb

    data = tmp_path / "data"
    written = write_image_set(data, fmt, classes=6, most=16, ratio=8.0, val_per_class=2, test_per_class=3)
    lists = read_image_lists(fmt, data, val_per_class=2)
    assert lists.num_classes == 6 and len(set(lists.class_names)) == 6
    assert lists.train_counts == sorted(written["counts"], reverse=True)  # head first
    val, test = (INAT_VAL_PER_CLASS, 3 - INAT_VAL_PER_CLASS) if fmt == "inat2018" else (2, 3)  # inat: val2018 carved
    for split, per_class in ((lists.val, val), (lists.test, test)):
        assert np.bincount(split.labels, minlength=6).tolist() == [per_class] * 6
    every = [f for split in (lists.train, lists.val, lists.test) for f in split.files]
    assert len(set(every)) == len(every) and all(f.is_file() and f.is_relative_to(data) for f in every)
    for _, rel in written["quirky"]:  # grayscale, CMYK, a PNG named .JPEG: each decodes to RGB
        assert decode_rgb(data / rel.lstrip("/")).shape[0] == 3


# One format for the sweep: iNaturalist'18, the headline tables' set and the one whose validation split is carved.
SWEEP_FORMAT = "inat2018"


@pytest.mark.slow
def test_a_two_trial_sweep_runs_on_an_image_set_and_its_winner_predicts_on_the_files(tmp_path: Path) -> None:
    fmt = SWEEP_FORMAT
    data = tmp_path / "data"
    written = write_image_set(data, fmt, **SET)
    assert {q for q, _ in written["quirky"]} == {"grayscale", "cmyk", "png_named_jpeg"}
    res = _launch(tmp_path, _spec(fmt, data))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    name = _spec(fmt, data)["name"]

    table = pq.read_table(tmp_path / "experiments" / name / "trials.parquet").to_pylist()
    assert len(table) == TRIALS and {r["status"] for r in table} == {"completed"}, [(r["status"], r["error"]) for r in table]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for row in table:
        metrics = client.get_run(row["mlflow_run_id"]).data.metrics
        assert {"val_acc", "test_acc", "many_acc", "medium_acc", "few_acc", "flops_ratio"} <= set(metrics), metrics
        assert 0 < metrics["flops_ratio"] < 1.5  # against the plain ResNet-18 at 32x32; early exits can take images
        assert [m.step for m in client.get_metric_history(row["mlflow_run_id"], "val_acc")] == [1, 2]

    import mlflow.pyfunc

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"models:/{name}/1")
    files = [str(data / rel.lstrip("/")) for _, rel in written["quirky"]]  # any size, grayscale, CMYK, a PNG named .JPEG
    got = model.predict(files)
    assert len(got) == len(files) and set(got.columns) == {"predicted_class", "class_name", "confidence", "exit"}
    assert all(0 <= c < SET["classes"] for c in got["predicted_class"]) and (got["confidence"] > 0).all()
    meta = model.metadata.metadata
    assert "images of any size" in meta["preprocessing"] and len(meta["class_names"]) == SET["classes"]


def _break(data: Path, how: str) -> tuple[Path, str]:
    """Damage the tiny ImageNet-LT set one way; (the file the message must name, what else it must say)."""
    train = data / "ImageNet_LT_train.txt"
    lines = train.read_text().splitlines()
    if how == "missing split file":
        (data / "ImageNet_LT_val.txt").unlink()
        return data / "ImageNet_LT_val.txt", "split file missing"
    if how == "missing image":
        (data / lines[4].split()[0]).unlink()
        return train, "line 5: lists"
    if how == "malformed line":
        lines[6] = lines[6].replace(" ", "\t0 ")
        train.write_text("\n".join(lines) + "\n")
        return train, "line 7: expected 'relative/path label'"
    if how == "label out of range":
        test = data / "ImageNet_LT_test.txt"
        rows = test.read_text().splitlines()
        rows[2] = rows[2].rsplit(" ", 1)[0] + " 6"
        test.write_text("\n".join(rows) + "\n")
        return test, "line 3: label 6 is out of range 0..5"
    if how == "class without training images":
        train.write_text("\n".join(line for line in lines if not line.endswith(" 3")) + "\n")
        return train, "class 3 has no training images"
    if how == "undecodable image":
        val = data / "ImageNet_LT_val.txt"
        broken = data / val.read_text().split()[0]
        broken.write_bytes(b"not an image at all")
        return broken, "cannot decode it as an image"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["missing split file", "missing image", "malformed line", "label out of range",
                                 "class without training images", "undecodable image"])
def test_bad_image_set_input_is_one_line_naming_the_file_before_anything_runs(how: str, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch,
                                                                             capsys: pytest.CaptureFixture) -> None:
    """The launch command's own main() in this process (the subprocess of the sweep tests above costs seconds
    of imports per case): its pre-flight refuses each case, exit 2, one line, before Ray or MLflow start."""
    from tuner.launch import main

    data = tmp_path / "data"
    write_image_set(data, "imagenet_lt", classes=6, most=12, ratio=4.0)
    named, what = _break(data, how)
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(_spec("imagenet_lt", data), sort_keys=False))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code = main(["spec.yaml"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("tuner.launch: data: ") and str(named) in lines[0] and what in lines[0], lines[0]
    assert not (tmp_path / "experiments").exists()


def test_an_image_that_cannot_be_decoded_mid_run_names_its_file(tmp_path: Path) -> None:
    """Past the pre-flight sample: the run that meets the file stops, naming it."""
    from trainables.config import TrainConfig
    from trainables.data.streamed import ImageDecodeError, load_streamed

    data = tmp_path / "data"
    write_image_set(data, "folder", classes=3, most=10, ratio=2.0)
    broken = sorted((data / "train" / "class0").iterdir())[3]
    broken.write_bytes(b"\xff\xd8 a JPEG cut short")
    config = TrainConfig(dataset="folder", data_dir=str(data), image_size=32, data_workers=1, device="cpu")
    streamed = load_streamed(config, check_sample=0)  # as if the pre-flight sample had missed it
    with pytest.raises(ImageDecodeError, match=str(broken)):
        for _ in streamed.train_batches(TrainConfig(dataset="folder", batch_size=4, device="cpu")):
            pass
    assert json.dumps(streamed.describe()["class_counts"]) == "[10, 7, 5]"


def test_several_trials_per_worker_are_refused_on_a_streamed_set(tmp_path: Path) -> None:
    """A worker's members share one copy of the images held in memory; a streamed set has none to share."""
    from tuner.spec.schema import SpecError, parse_spec

    data = tmp_path / "data"
    write_image_set(data, "folder", classes=3, most=6, ratio=2.0)
    spec = _spec("folder", data)
    spec["resources"]["trials_per_worker"] = 2
    with pytest.raises(SpecError, match="resources.trials_per_worker: folder streams its images from disk"):
        parse_spec(spec, "spec.yaml")


def test_a_data_parallel_process_streams_only_its_parts_of_each_batch(tmp_path: Path) -> None:
    """trainables/distributed.py's parts of the global batches, read from files: the images and labels of
    exactly those indices, in that order, one batch per part."""
    import torch

    from trainables.config import TrainConfig
    from trainables.data.streamed import load_streamed
    from trainables.distributed import Shard

    data = tmp_path / "data"
    write_image_set(data, "folder", classes=3, most=10, ratio=2.0)  # 10 + 7 + 5 = 22 training images
    config = TrainConfig(dataset="folder", data_dir=str(data), image_size=32, data_workers=0, device="cpu", batch_size=8)
    streamed = load_streamed(config, check_sample=0)
    labels = torch.from_numpy(streamed.lists.train.labels)
    parts = {rank: Shard(rank, 2).batches(streamed.train_size, 8, seed=0, epoch=0) for rank in range(2)}
    for rank_parts in parts.values():
        batches = list(streamed.train_batches(config, None, rank_parts))
        assert [len(y) for _, y in batches] == [len(p) for p in rank_parts] == [4, 4, 3]
        for (x, y), part in zip(batches, rank_parts):
            assert torch.equal(y, labels[part]) and x.shape == (len(part), 3, 32, 32)
    covered = torch.cat([torch.cat([parts[0][b], parts[1][b]]) for b in range(3)])
    assert sorted(covered.tolist()) == list(range(22))
