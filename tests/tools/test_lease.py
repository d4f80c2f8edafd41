"""GPU leases on the CPU: the plan reads the repository; a whole lease runs end to end with tiny
settings (scripts/gpu_lease.sh), and its returned files land with scripts/gpu_collect.sh, so that
neither script can rot between leases."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from small_smoke import SMALL_SMOKE_TRIALS, write_small_smoke

from tools.lease import plan as lease_plan
from tools.lease.perf_doc import gpu_section
from tuner.reproduce.command import row_runs

REPO = Path(__file__).resolve().parents[2]
# Tiny runs: synthetic data, a narrow net, two epochs; two rows; the smoke sweep as the sweep.
TINY = ["--device", "cpu", "--epochs", "2", "--set", "dataset=synthetic", "--set", "synthetic_train_per_class=20",
        "--set", "widths=8,16,24", "--set", "exit_channels=16", "--set", "max_eval_images=200",
        "--rows", "ldam_drw", "reslt_released", "--sweep-spec", "search_spaces/smoke.yaml"]


def _copy_repo(target: Path) -> Path:
    """The project as a clone would have it (tracked and untracked-unignored files), without its results
    or its GPU figures."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes((REPO / name).read_bytes())
    for landed in [p for p in (target / "results").rglob("*") if p.is_file() and p.name != "README.md"]:
        landed.unlink()
    for figure in (target / "docs" / "perf").glob("*.json"):
        figure.unlink()
    return target


def _bash(script: str, *args: str, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", f"scripts/{script}", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHON": sys.executable, **(env or {})})


def test_the_plan_needs_no_gpu_and_lists_every_step_with_times(tmp_path: Path) -> None:
    repo = _copy_repo(tmp_path)
    res = _bash("gpu_lease.sh", "--plan", cwd=repo, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    # The workers and the image-file pipeline are measured first while no GPU has; the benchmark waits for
    # the 100x seed-0 rows; one run over several GPUs waits for a machine that has them.
    assert [ln.split(":")[0].split(". ")[1] for ln in lines if ln[:2] in ("1.", "2.", "3.", "4.", "5.", "6.", "7.")] == \
        ["check", "workers", "streaming", "data_parallel", "results", "sweep"]
    assert "ldam_drw-ir100-seed0" in res.stdout and lines[-1].startswith("Carry: .gpudata")
    assert next(ln for ln in lines if ln.startswith("3.")).endswith("(python -m benchmarks.streaming) [~90 s]")
    assert next(ln for ln in lines if ln.startswith("4.")).endswith("[skipped: needs a machine with 2 or more GPUs "
                                                                    "(this plan's has 1; --gpus N)]")
    results = next(ln for ln in lines if ln.startswith("5."))
    assert "s per epoch each (assumed from the targets" in results and "[~" in results


def test_the_plan_follows_the_repository(tmp_path: Path) -> None:
    repo = _copy_repo(tmp_path)
    (repo / "docs" / "perf").mkdir(exist_ok=True)
    (repo / "docs" / "perf" / "cuda-2026-12-01-1200.json").write_text(json.dumps(
        {"device": "NVIDIA H100", "device_type": "cuda", "date": "2026-12-01",
         "packed": {"8": {"complete": True, "epoch_seconds": 0.5, "summed_train_images_per_second": 198000}},
         "trainables_bench": {"fast": {"epoch_seconds": 0.3}}}))
    steps = {s.name: s for s in lease_plan.plan(repo, bench=False)}
    assert "bench" not in steps
    assert lease_plan.timing(repo).source == "measured on NVIDIA H100 on 2026-12-01"
    # A newer document of the results runs' own times sizes the next lease; a benchmark cut before any
    # figure neither sizes it nor counts as done.
    (repo / "docs" / "perf" / "cuda-2026-12-02-1200-results.json").write_text(json.dumps(
        {"kind": "results", "device": "NVIDIA H200", "device_type": "cuda", "date": "2026-12-02",
         "packed": {"8": {"complete": True, "epoch_seconds": 5.0, "summed_train_images_per_second": 23000}}}))
    (repo / "docs" / "perf" / "cuda-2026-12-03-1200.json").write_text(json.dumps(
        {"device": "NVIDIA H200", "device_type": "cuda", "date": "2026-12-03", "trainables_bench": None,
         "packed": {"8": {"processes": 8, "complete": False, "runs_with_two_epochs": 0}}}))
    timing = lease_plan.timing(repo)
    assert timing.source == "measured on NVIDIA H200 on 2026-12-02" and timing.epoch_seconds == {8: 5.0}
    assert [d["date"] for d in lease_plan.bench_figures(repo)] == ["2026-12-01"]
    (repo / "docs" / "perf" / "cuda-2026-12-01-1200.json").unlink()
    assert not lease_plan.bench_figures(repo) and not lease_plan.bench_due(repo)  # the 100x rows come first
    assert lease_plan.timing(repo).parallel == 8  # 16 epochs/s in all beats 3.3 alone
    assert steps["results"].runs[0].name == "ldam_drw-ir100-seed0" and steps["sweep"].skipped.startswith("waits for every CIFAR-10-LT 100x")
    for row in lease_plan.ROWS:  # every 100x seed-0 row done: the sweep's turn, with half the time
        (repo / "results" / f"{row.key}-ir100-seed0.jsonl").write_text(json.dumps({"summary": True}) + "\n")
    assert lease_plan.bench_due(repo)  # now the benchmark's turn; it leaves the sweep too little time
    steps = {s.name: s for s in lease_plan.plan(repo)}
    assert steps["bench"].seconds == lease_plan.BENCH_SECONDS and steps["sweep"].skipped.startswith("too little time")
    # The workers and the image-file pipeline still to measure leave the sweep too little time as well; once
    # a GPU has timed the pipeline, the sweep gets half of what the workers leave.
    assert lease_plan.plan(repo, bench=False)[-1].skipped.startswith("too little time")
    (repo / "docs" / "perf" / "cuda-2026-12-04-1200-streaming.json").write_text(json.dumps(
        {"kind": "streaming", "device": "NVIDIA H200", "device_type": "cuda", "date": "2026-12-04",
         "images_per_second": {"streamed": 9000.0, "pil": 1500.0}, "streamed_over_pil": 6.0}))
    listed = lease_plan.plan(repo, bench=False)
    steps = {s.name: s for s in listed}
    assert steps["sweep"].skipped is None and steps["sweep"].seconds >= lease_plan.MIN_SWEEP_SECONDS
    assert all(not r.name.endswith("ir100-seed0") for r in steps["results"].runs)
    assert lease_plan.carry_needed(listed) == [".gpudata", ".gpuwhl"]
    assert "streaming" not in steps and [s.name for s in listed][:2] == ["check", "workers"]
    assert timing.source == lease_plan.timing(repo).source and not lease_plan.bench_figures(repo)  # not a benchmark figure


def test_the_streaming_step_is_planned_on_a_gpu_until_docs_perf_holds_its_gpu_figure(tmp_path: Path, capsys) -> None:
    from tools.lease.__main__ import main
    from tools.lease.run import LeaseOptions, wants_streaming

    (tmp_path / "results").mkdir()
    perf = tmp_path / "docs" / "perf"
    perf.mkdir(parents=True)

    def listed(*args: str) -> list[str]:
        assert main(["plan", "--repo", str(tmp_path), *args]) == 0
        return [ln.split(":")[0].split(". ")[1] for ln in capsys.readouterr().out.splitlines() if ln[:1].isdigit()]

    steps = lease_plan.plan(tmp_path)
    assert [s.name for s in steps][:5] == ["check", "workers", "streaming", "data_parallel", "results"]
    streaming = steps[2]
    assert streaming.seconds == lease_plan.STREAMING_SECONDS and streaming.skipped is None
    assert streaming.what == ("benchmark: the image-file pipeline at 224 (torchvision.io + nvJPEG on the GPU) against a "
                              "plain DataLoader with PIL (python -m benchmarks.streaming)")
    # Its 90 s come out of the results runs' time.
    assert steps[4].seconds == lease_plan.plan(tmp_path, streaming=False)[3].seconds - lease_plan.STREAMING_SECONDS
    # The plan lists it as the lease would run it: on its GPU (the default device), not on a CPU nor when told not to.
    assert "streaming" in listed() and "streaming" not in listed("--device", "cpu")
    assert "streaming" not in listed("--no-streaming-bench") and "streaming" in listed("--device", "cpu", "--streaming-bench")
    assert wants_streaming(LeaseOptions(), tmp_path) and not wants_streaming(LeaseOptions(device="cpu"), tmp_path)
    # A CPU figure, and a GPU run cut before its figures, leave it due.
    figure = {"kind": "streaming", "device": "NVIDIA H100 80GB HBM3", "date": "2026-12-07", "command": "benchmarks.streaming",
              "images_per_second": {"streamed": 8000.0, "pil": 2000.0}, "streamed_over_pil": 4.0}
    (perf / "cpu-2026-12-06-1000-streaming.json").write_text(json.dumps({**figure, "device_type": "cpu"}))
    (perf / "cuda-2026-12-06-1100-streaming.json").write_text(json.dumps(
        {"kind": "streaming", "device_type": "cuda", "date": "2026-12-06", "why": "stopped at its time (90 s)"}))
    assert lease_plan.streaming_due(tmp_path) and "streaming" in listed()
    # A GPU figure: skipped from then on, and no benchmark figure (nor timing) either.
    (perf / "cuda-2026-12-07-1000-streaming.json").write_text(json.dumps({**figure, "device_type": "cuda"}))
    assert not lease_plan.streaming_due(tmp_path) and [d["date"] for d in lease_plan.streaming_figures(tmp_path)] == ["2026-12-07"]
    assert [s.name for s in lease_plan.plan(tmp_path)][:4] == ["check", "workers", "data_parallel", "results"]
    assert "streaming" not in listed() and not wants_streaming(LeaseOptions(), tmp_path)
    assert "streaming" in listed("--streaming-bench")
    assert not lease_plan.bench_figures(tmp_path) and lease_plan.timing(tmp_path).source.startswith("assumed")


def test_the_streaming_step_says_done_cut_or_failed_and_never_stops_the_lease(monkeypatch) -> None:
    from tools.lease import run as lease_run

    printed = {"date": "2026-12-07", "device": "NVIDIA H100", "torch": "x", "images": 2048, "batch": 64, "workers": 8,
               "images_per_second": {"streamed": 8000.0, "pil": 2000.0}, "streamed_over_pil": 4.0}
    answers = iter([(0, "a warning line\n" + json.dumps(printed) + "\n", ""), (None, "", ""),
                    (1, "", "Traceback (most recent call last):\nRuntimeError: nvjpeg failed"), (0, "not JSON\n", "")])
    calls = []

    def fake_run(cmd: list[str], timeout: float, **_: object) -> tuple[int | None, str, str]:
        calls.append((cmd, timeout))
        return next(answers)

    monkeypatch.setattr(lease_run, "_run", fake_run)
    opts = lease_run.LeaseOptions(device="cpu")
    record, doc = lease_run.streaming_step(lease_run.Clock(500.0), opts)
    assert calls[0][0][1:] == ["-m", "benchmarks.streaming", "--device", "cpu", "--images", "2048", "--workers", "8"]
    assert calls[0][1] == lease_plan.STREAMING_SECONDS
    assert record == {"name": "streaming", "status": "done", "why": None}
    assert doc["kind"] == lease_plan.STREAMING_KIND and doc["command"] == "-m benchmarks.streaming --device cpu --images 2048 --workers 8"
    assert doc["images_per_second"] == printed["images_per_second"] and doc["streamed_over_pil"] == 4.0
    assert doc["device_type"] == "cpu" and doc["torch"] != "x" and "torchvision" in doc and doc["date"]
    record, doc = lease_run.streaming_step(lease_run.Clock(60.0), opts)  # less time left than its share
    assert calls[1][1] < 60.0 and record["status"] == "cut" and "stopped at its time" in record["why"] == doc["why"]
    assert "images_per_second" not in doc
    record, _ = lease_run.streaming_step(lease_run.Clock(500.0), opts)
    assert record["status"] == "failed" and record["why"] == "benchmarks.streaming exit 1: RuntimeError: nvjpeg failed"
    record, _ = lease_run.streaming_step(lease_run.Clock(500.0), opts)
    assert record["status"] == "failed"


def _streaming_doc() -> dict:
    return {"kind": "streaming", "device": "NVIDIA H100 80GB HBM3", "device_type": "cuda", "date": "2026-12-07",
            "torch": "2.14.1", "torchvision": "0.29.1", "python": "3.12.3",
            "command": "-m benchmarks.streaming --device cuda --images 2048 --workers 8", "images": 2048, "image_size": 224,
            "source_size": [500, 375], "batch": 64, "workers": 8,
            "images_per_second": {"streamed": 8123.4, "pil": 1950.2}, "streamed_over_pil": 4.165}


def test_every_cifar10_run_comes_before_any_cifar100_run_which_waits_for_its_data(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    datasets = {r.key: r.dataset for r in lease_plan.ROWS}
    assert set(datasets.values()) == {"cifar10", "cifar100", *lease_plan.HEADLINE_DATASETS}
    n100 = sum(d == "cifar100" for d in datasets.values()) * 9  # 3 imbalances x 3 seeds each
    # No CIFAR-100 copy in the lease's data: its runs are not scheduled, and the plan says so in one line
    # (with the headline-table runs', which wait for another machine: the next test).
    queue = lease_plan.result_queue(tmp_path)
    assert queue and all(datasets[r.row] == "cifar10" for r in queue)
    waiting = lease_plan.waiting_for_data(tmp_path)
    c100_line = (f"{n100} CIFAR-100-LT runs wait for a CIFAR-100 copy in the lease's data (.gpudata/cifar-100-python/ "
                 "or .gpudata/cifar100/train.parquet and test.parquet)")
    assert waiting.split("; ")[0] == c100_line and "headline-table runs" in waiting.split("; ")[1]
    steps = {s.name: s for s in lease_plan.plan(tmp_path, bench=False, workers=False)}
    results = steps["results"]
    assert results.waiting == waiting and all(datasets[r.row] == "cifar10" for r in results.runs + results.fillers)
    assert [ln for ln in lease_plan.describe(list(steps.values()), 540.0).splitlines() if "CIFAR-100" in ln] == \
        [f"   {waiting}; not scheduled"]
    synthetic = ["--set", "dataset=synthetic"]  # a quick check needs no CIFAR-100 (nor ImageNet-LT)
    quick = lease_plan.result_queue(tmp_path, common=synthetic)
    assert sum(r.row.endswith("_c100") for r in quick) == n100 and lease_plan.waiting_for_data(tmp_path, common=synthetic) is None
    # The sweep's turn still means every CIFAR-10 row at 100x seed 0, whatever CIFAR-100 waits for.
    for key, dataset in datasets.items():
        if dataset == "cifar10":
            (tmp_path / "results" / f"{key}-ir100-seed0.jsonl").write_text(json.dumps({"summary": True}) + "\n")
    assert lease_plan.first_rows_done(tmp_path)
    # With a copy (either form sources.py reads), every CIFAR-10 run comes first, then CIFAR-100's in the same order.
    for copy in ("cifar-100-python", "cifar100"):
        folder = tmp_path / ".gpudata" / copy
        folder.mkdir(parents=True)
        if copy == "cifar100":
            for name in ("train.parquet", "test.parquet"):
                (folder / name).write_bytes(b"")
        queue = lease_plan.result_queue(tmp_path)
        kinds = [datasets[r.row] for r in queue]
        assert kinds == ["cifar10"] * (len(kinds) - n100) + ["cifar100"] * n100
        assert "CIFAR-100" not in lease_plan.waiting_for_data(tmp_path)
        c100 = [r for r in queue if r.dataset == "cifar100"]
        keys = [k for k, d in datasets.items() if d == "cifar100"]
        assert [r.name for r in c100] == [r.name for imbalance, seeds in lease_plan.RUN_ORDER
                                          for r in row_runs(keys, [float(imbalance)], list(seeds), [])]
        assert c100[0].name == "ldam_drw_c100-ir100-seed0" and c100[0].args[-2:] == ["--set", "dataset=cifar100"]
        shutil.rmtree(tmp_path / ".gpudata")


def test_the_headline_table_runs_come_after_every_cifar_run_and_wait_for_a_multi_gpu_machine(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    headline = [r.key for r in lease_plan.ROWS if r.dataset in lease_plan.HEADLINE_DATASETS]
    assert len(headline) == 20  # the ELF paper's Tables 1 and 3: 5 methods x 2 backbones x 2 datasets
    # Where every run can start (a quick check on synthetic data), the headline rows' come after every
    # CIFAR run: ImageNet-LT's, then iNaturalist'18's, each at its published ratio, seed 0 of every row first.
    queue = lease_plan.result_queue(tmp_path, common=["--set", "dataset=synthetic"])
    kinds = [lease_plan.ROWS_BY_KEY[r.row].dataset for r in queue]
    n_cifar = len(kinds) - 3 * len(headline)
    assert kinds == ["cifar10"] * kinds.count("cifar10") + ["cifar100"] * kinds.count("cifar100") + \
        ["imagenet_lt"] * 30 + ["inat2018"] * 30
    inlt = [r.name for r in queue[n_cifar:n_cifar + 30]]
    assert inlt[:10] == [f"{k}-ir256-seed0" for k in headline if k.endswith("_inlt")] and inlt[10:12] == \
        ["r50_ce_inlt-ir256-seed1", "r50_ce_inlt-ir256-seed2"]
    assert queue[n_cifar].args[:6] == ["--preset", "r50_ce", "--imbalance", "256", "--seed", "0"]
    # Without their split files in the lease's data (always, on a lease): held, with one line that says
    # what machine they need.
    assert all(lease_plan.ROWS_BY_KEY[r.row].dataset not in lease_plan.HEADLINE_DATASETS for r in lease_plan.result_queue(tmp_path))
    line = ("60 headline-table runs (ResNet-50 / DenseNet-169 on ImageNet-LT, iNaturalist'18) need a multi-GPU machine "
            "(the paper's: eight V100s) with the dataset on its disk, not a lease "
            "(no .gpudata/imagenet_lt/ImageNet_LT_train.txt, .gpudata/inat2018/train2018.json)")
    assert lease_plan.waiting_for_data(tmp_path).split("; ")[-1] == line
    steps = lease_plan.plan(tmp_path, bench=False, workers=False)
    assert [ln for ln in lease_plan.describe(steps, 540.0).splitlines() if "headline" in ln] == \
        [f"   {lease_plan.waiting_for_data(tmp_path)}; not scheduled"]
    assert lease_plan.waiting_for_data(tmp_path, rows=["d169_elf_ldam_drw_inat"]) == (
        "3 headline-table runs (DenseNet-169 on iNaturalist'18) need a multi-GPU machine (the paper's: eight V100s) "
        "with the dataset on its disk, not a lease (no .gpudata/inat2018/train2018.json)")
    # ImageNet-LT's training list in the lease's data: its runs queue after every CIFAR one; iNaturalist'18's still wait.
    (tmp_path / ".gpudata" / "imagenet_lt").mkdir(parents=True)
    (tmp_path / ".gpudata" / "imagenet_lt" / "ImageNet_LT_train.txt").write_text("")
    queue = lease_plan.result_queue(tmp_path)
    assert [lease_plan.ROWS_BY_KEY[r.row].dataset for r in queue][-30:] == ["imagenet_lt"] * 30
    assert "30 headline-table runs (ResNet-50 / DenseNet-169 on iNaturalist'18)" in lease_plan.waiting_for_data(tmp_path)
    # The sweep's turn (and the benchmark's) still means the CIFAR-10 rows at 100x, seed 0.
    for key in [r.key for r in lease_plan.ROWS if r.dataset == "cifar10"]:
        (tmp_path / "results" / f"{key}-ir100-seed0.jsonl").write_text(json.dumps({"summary": True}) + "\n")
    assert lease_plan.first_rows_done(tmp_path)


def test_prepare_makes_the_data_to_carry_and_names_the_device_call(tmp_path: Path, cifar_dir: Path) -> None:
    repo = _copy_repo(tmp_path)
    res = _bash("gpu_lease.sh", "--prepare", cwd=repo, env={"TUNER_DATA_DIR": str(cifar_dir)}, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "carry [\".gpudata\"], timeout_s 600" in res.stdout  # the sweep is not due: no wheelhouse
    sizes = sum(p.stat().st_size for p in (repo / ".gpudata").glob("*.parquet"))
    assert sorted(p.name for p in (repo / ".gpudata").iterdir()) == ["test.parquet", "train.parquet"] and sizes < 12e6


def test_the_gpu_section_shows_each_figure_against_its_target() -> None:
    doc = {"device": "NVIDIA H200", "date": "2026-12-01", "torch": "2.11.0", "torchvision": "0.26.0", "file": "x.json",
           "commands": {"trainables_bench": "benchmarks.training --preset hybrid_m4 --device cuda --epochs 3"},
           "trainables_bench": {"epochs": 3, "fast": {"epoch_seconds": 0.35, "val_acc": 0.3},
                                "plain": {"epoch_seconds": 2.1, "val_acc": 0.3},
                                "speedup_epoch": 6.0},
           "packed": {"4": {"complete": True, "epoch_seconds": 0.4, "summed_train_images_per_second": 120000},
                      "16": {"complete": False, "runs_with_two_epochs": 9}}}
    text = gpu_section([doc])
    assert "### NVIDIA H200, 2026-12-01" in text and "torch 2.11.0, torchvision 0.26.0" in text
    assert "| 0.350 | at most 0.4 | met |" in text and "| 6.00x | at least 5x | met |" in text
    assert "| 120,000 | at least 200,000 | **not met** |" in text and "cut by the lease's time (9 of 16" in text


def test_the_gpu_section_shows_the_image_file_pipeline() -> None:
    text = gpu_section([{**_streaming_doc(), "file": "cuda-2026-12-07-1000-streaming.json"}])
    assert text.startswith("### NVIDIA H100 80GB HBM3, 2026-12-07: Image-file pipeline (benchmarks.streaming)")
    assert "torch 2.14.1, torchvision 0.29.1, Python 3.12.3" in text
    assert "source `docs/perf/cuda-2026-12-07-1000-streaming.json`" in text
    assert "`python -m benchmarks.streaming --device cuda --images 2048 --workers 8`" in text
    assert "over 2048 JPEGs of 500x375, batch 64, 8 DataLoader workers each" in text
    assert "nvJPEG decode on the GPU, v2 transforms) | 8,123 |" in text
    assert "with PIL (ImageFolder, torchvision transforms) | 1,950 |" in text
    assert "| streamed over PIL | 4.17x |" in text
    cut = {k: v for k, v in _streaming_doc().items() if k not in ("images_per_second", "streamed_over_pil")}
    text = gpu_section([{**cut, "why": "stopped at its time (90 s) before it printed its figures"}])
    assert "Image-file pipeline" in text and text.endswith("Not measured: stopped at its time (90 s) before it printed its figures.")


def test_collect_lands_the_streaming_document_and_its_section(tmp_path: Path) -> None:
    from tools.lease.collect import collect, summary_lines
    from tools.lease.perf_doc import BEGIN, END

    repo, returned = tmp_path / "repo", tmp_path / "returned"
    (repo / "results").mkdir(parents=True)
    (repo / "docs").mkdir()
    (repo / "docs" / "PERFORMANCE.md").write_text(f"# Performance\n\n{BEGIN}\nold\n{END}\n")
    returned.mkdir()
    doc = _streaming_doc()
    (returned / "manifest.json").write_text(json.dumps(  # the lease that packed it in its manifest only
        {"started": "2026-12-07 10:00:00 UTC", "device_type": "cuda", "device": doc["device"], "archives": [],
         "steps": [{"name": "check", "status": "done", "result": ["agree"]},
                   {"name": "streaming", "status": "done", "why": None, "document": doc}]}))
    result = collect(returned, repo)
    assert "docs/perf/cuda-2026-12-07-1000-streaming.json" in result["changed"] and "docs/PERFORMANCE.md" in result["changed"]
    assert json.loads((repo / "docs" / "perf" / "cuda-2026-12-07-1000-streaming.json").read_text()) == doc
    assert "Image-file pipeline (benchmarks.streaming)" in (repo / "docs" / "PERFORMANCE.md").read_text()
    assert "  streaming: done: streamed 8,123 images/s, PIL 1,950 (4.17x)" in summary_lines(result)
    assert not lease_plan.streaming_due(repo)
    # Packed in bench.tar.gz (as workers.json is), it lands from there.
    with tarfile.open(returned / "bench.tar.gz", "w:gz") as tar:
        (tmp_path / "streaming.json").write_text(json.dumps({**doc, "date": "2026-12-08"}))
        tar.add(tmp_path / "streaming.json", arcname="streaming.json")
    manifest = json.loads((returned / "manifest.json").read_text())
    manifest["started"], manifest["archives"] = "2026-12-08 10:00:00 UTC", ["bench.tar.gz"]
    (returned / "manifest.json").write_text(json.dumps(manifest))
    collect(returned, repo)
    assert json.loads((repo / "docs" / "perf" / "cuda-2026-12-08-1000-streaming.json").read_text())["date"] == "2026-12-08"


def test_collect_measures_the_results_runs_packing_from_the_epochs_this_lease_trained(tmp_path: Path) -> None:
    from tools.lease.collect import results_timing

    repo, returned = tmp_path / "repo", tmp_path / "returned"
    (repo / "results" / "partial").mkdir(parents=True)
    torch = pytest.importorskip("torch")
    torch.save({"epoch": 3}, repo / "results" / "partial" / "a-ir100-seed0.pt")  # a began this lease at epoch 3
    lines_of = returned / "results" / "results"  # the unpacked results archive holds results/...
    (lines_of / "partial").mkdir(parents=True)

    def lines(epochs: range, seconds: float) -> str:
        return "".join(json.dumps({"epoch": e, "epoch_seconds": seconds if e > 1 else 60.0, "images_per_second": 3000.0})
                       + "\n" for e in epochs) + '{"epoch": 99, "epoch_sec'  # the deadline cut the last line
    (lines_of / "partial" / "a-ir100-seed0.jsonl.part").write_text(lines(range(1, 9), 9.0))
    (lines_of / "b-ir100-seed0.jsonl").write_text(lines(range(1, 6), 4.0))
    manifest = {"started": "2026-12-02 10:00:00 UTC", "device_type": "cuda", "device": "NVIDIA H200",
                "steps": [{"name": "results", "parallel": 2, "finished": ["b-ir100-seed0"],
                           "cut": [{"name": "a-ir100-seed0", "epochs_done": 8}]}]}
    doc = results_timing(manifest, returned, repo)
    # a: epochs 5-8 (epoch 4 paid for the restart), b: epochs 2-5 (epoch 1 paid for the start)
    assert doc["packed"]["2"]["epochs"] == 8 and doc["packed"]["2"]["epoch_seconds"] == 6.5
    assert doc["packed"]["2"]["summed_train_images_per_second"] == 6000.0 and doc["kind"] == lease_plan.RESULTS_KIND
    text = gpu_section([{**doc, "file": "cuda-2026-12-02-1000-results.json"}])
    assert "2 at once" in text and "6.50 s per epoch each" in text and "6,000 training images/s" in text
    assert results_timing({**manifest, "device_type": "cpu"}, returned, repo) is None


@pytest.mark.slow
@pytest.mark.serial  # its leases have wall-clock budgets (170 s, 220 s) that the work must fit in
def test_two_leases_on_the_cpu_land_with_collect(tmp_path: Path) -> None:
    repo = _copy_repo(tmp_path / "repo")
    out = tmp_path / "out1"
    # The second lease's sweep: the small smoke sweep of the integration tests (4 trials of 4 epochs on 549
    # images; 6 trials until 2026-12-07), not smoke.yaml's 8 epochs on 915: what is checked is that a sweep runs and lands.
    write_small_smoke(repo / "small")
    tiny = [*TINY[:-1], "small/smoke.yaml"]
    # Lease 1: the check, the benchmark (forced: no GPU here), the results runs; the sweep waits for them.
    first = _bash("gpu_lease.sh", *tiny, "--budget", "170", "--bench", "--bench-epochs", "2", "--packed", "2",
                  cwd=repo, env={"OUT": str(out)})
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(list(out.iterdir())) <= 8 and sorted(manifest["archives"] + ["manifest.json"]) == sorted(p.name for p in out.iterdir())
    steps = {s["name"]: s for s in manifest["steps"]}
    assert steps["check"]["status"] == "done" and "agree" in steps["check"]["result"][0]
    assert steps["bench"]["status"] in ("done", "cut") and steps["sweep"]["status"] == "skipped"
    finished = steps["results"]["finished"]
    assert "ldam_drw-ir100-seed0" in finished and "reslt_released-ir100-seed0" in finished
    with tarfile.open(out / "results.tar.gz") as tar:
        assert {f"results/{name}.jsonl" for name in finished} <= set(tar.getnames())

    landed = _bash("gpu_collect.sh", str(out), cwd=repo)
    assert landed.returncode == 0, landed.stderr
    assert "results/ldam_drw-ir100-seed0.jsonl" in landed.stdout and "docs/RESULTS.md" in landed.stdout
    assert all((repo / "results" / f"{name}.jsonl").is_file() for name in finished)
    assert "| LDAM-DRW | synthetic |" in (repo / "docs" / "RESULTS.md").read_text()
    bench = json.loads(next((repo / "docs" / "perf").glob("cpu-*.json")).read_text())
    assert bench["trainables_bench"]["fast"]["epoch_seconds"] > 0 and bench["device_type"] == "cpu"
    # Runs cut at the deadline come back as checkpoints, for the next lease; one cut before its first epoch
    # ended has none, and starts over (a CI run beside the image tests cut one at epoch 0, 2026-12-07).
    cut = steps["results"]["cut"]
    assert all((repo / "results" / "partial" / f"{c['name']}.pt").is_file() == (c["epochs_done"] > 0) for c in cut), cut
    assert ("before their first: they start over" in (steps["results"]["why"] or "")) == any(c["epochs_done"] == 0 for c in cut)

    # Lease 2: the 100x seed-0 rows exist, so the sweep runs (Ray Tune, Optuna, MLflow) and comes back.
    out2 = tmp_path / "out2"
    second = _bash("gpu_lease.sh", *tiny, "--budget", "220", cwd=repo, env={"OUT": str(out2)})
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    sweep = {s["name"]: s for s in json.loads((out2 / "manifest.json").read_text())["steps"]}["sweep"]
    assert sweep["status"] == "done", sweep
    landed = _bash("gpu_collect.sh", str(out2), cwd=repo)
    assert landed.returncode == 0, landed.stderr
    table = pq.read_table(repo / "results" / "sweeps" / "smoke" / "experiments" / "smoke" / "trials.parquet")
    assert table.num_rows == SMALL_SMOKE_TRIALS and (repo / "results" / "sweeps" / "smoke" / "mlflow.db").is_file()


@pytest.mark.slow
def test_the_workers_step_measures_each_way_and_lands_in_performance_md() -> None:
    from tools.lease.perf_doc import gpu_section
    from tools.lease.run import Clock, LeaseOptions, workers_step

    sets = ["dataset=synthetic", "synthetic_train_per_class=20", "widths=8,16,24", "exit_channels=16", "max_eval_images=200"]
    opts = LeaseOptions(device="cpu", sets=sets, workers_ks=(1, 2), bench_epochs=2)
    record, doc = workers_step(Clock(600.0), opts)
    assert record["status"] == "done", (record, doc)
    ways = {(x["preset"], x["way"], x["k"]) for x in doc["lines"] if x.get("summed_train_images_per_second")}
    assert ways == {(p, w, k) for p in ("hybrid_m4", "ldam_drw") for w, ks in (("streams", (1, 2)), ("fused", (1, 2)),
                                                                                   ("processes", (1,))) for k in ks}
    text = gpu_section([{**doc, "device_type": "cuda", "file": "cuda-x-workers.json"}])
    assert "K trials per GPU (benchmarks.workers)" in text and "| hybrid_m4 | fused | 2 |" in text and "Most: " in text


def test_the_data_parallel_step_waits_for_a_machine_with_several_gpus_then_for_nothing(tmp_path: Path, monkeypatch) -> None:
    """Planned (skipped, saying why) while the lent machines have one GPU; with --gpus N it takes its share
    over 1, 2, 4 ... N; a GPU figure of it ends it; the run step reads the benchmark's lines and files them."""
    from tools.lease import run as lease_run
    from tools.lease.collect import collect, summary_lines

    (tmp_path / "results").mkdir()
    steps = {s.name: s for s in lease_plan.plan(tmp_path)}
    step = steps["data_parallel"]
    assert step.seconds == 0.0 and step.skipped == "needs a machine with 2 or more GPUs (this plan's has 1; --gpus N)"
    eight = {s.name: s for s in lease_plan.plan(tmp_path, gpus=8)}
    assert eight["data_parallel"].skipped is None and eight["data_parallel"].seconds == lease_plan.DATA_PARALLEL_SECONDS
    assert "one run over 1, 2, 4, 8 GPUs" in eight["data_parallel"].what
    assert eight["results"].seconds == steps["results"].seconds - lease_plan.DATA_PARALLEL_SECONDS
    assert lease_plan.data_parallel_worlds(6) == [1, 2, 4, 6] and lease_plan.data_parallel_worlds(1) == [1]

    lines = [{"world": w, "images_per_second": 1000.0 * w * 0.9, "speedup": 0.9 * w, "efficiency": 0.9} for w in (1, 2)]
    monkeypatch.setattr(lease_run, "_run", lambda cmd, timeout, **_: (0, "\n".join(["noise", *map(json.dumps, lines)]), ""))
    record = lease_run.data_parallel_step(lease_run.Clock(500.0), lease_run.LeaseOptions(device="cpu"), 2)
    assert record["status"] == "done" and record["document"]["lines"] == lines
    assert record["document"]["command"] == "-m benchmarks.data_parallel --device cpu --worlds 1 2"
    returned = tmp_path / "returned"
    returned.mkdir()
    document = {**record["document"], "device_type": "cuda"}
    (returned / "manifest.json").write_text(json.dumps(
        {"started": "2026-12-07 10:00:00 UTC", "device_type": "cuda", "device": "8x H100", "archives": [],
         "steps": [{**record, "document": document}]}))
    (tmp_path / "docs").mkdir()
    from tools.lease.perf_doc import BEGIN, END

    (tmp_path / "docs" / "PERFORMANCE.md").write_text(f"# Performance\n\n{BEGIN}\nold\n{END}\n")
    result = collect(returned, tmp_path)
    assert "docs/perf/cuda-2026-12-07-1000-data_parallel.json" in result["changed"]
    assert "  data_parallel: done: 1 GPU(s) 900 images/s (90%), 2 GPU(s) 1,800 images/s (90%)" in summary_lines(result)
    assert not lease_plan.data_parallel_due(tmp_path) and "data_parallel" not in [s.name for s in lease_plan.plan(tmp_path, gpus=8)]
