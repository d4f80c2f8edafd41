"""tuner.reproduce runs the RESULTS.md rows resumably; tuner.reproduce.tables rebuilds the tables from their JSON lines."""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from conftest import wait_for

from tuner.reproduce.rows import ROWS_BY_KEY

# Quick runs: synthetic data, a narrow net, one epoch (the real rows are 200 epochs on CIFAR-10-LT).
QUICK = ["--epochs", "1", "--device", "cpu", "--set", "dataset=synthetic", "--set", "synthetic_train_per_class=20",
         "--set", "widths=8,16,24", "--set", "exit_channels=16", "--set", "max_eval_images=200"]


def reproduce(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuner.reproduce", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def summary(path: Path) -> dict:
    return json.loads(path.read_text().strip().splitlines()[-1])


@pytest.mark.slow
def test_rows_run_once_resume_and_become_tables(tmp_path: Path) -> None:
    args = ["--rows", "ldam_drw", "elf_ldam_drw", "--imbalance", "100", "--seeds", "0", "1", "--parallel", "2", *QUICK]
    first = reproduce(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    files = sorted(p.name for p in (tmp_path / "results").iterdir() if p.is_file())
    assert files == [f"{row}-ir100-seed{s}.jsonl" for row in ("elf_ldam_drw", "ldam_drw") for s in (0, 1)]
    assert not any((tmp_path / "results" / "partial").iterdir())  # finished runs leave no checkpoint or partial lines
    for name in files:
        s = summary(tmp_path / "results" / name)
        assert s["summary"] is True and s["config"]["seed"] == int(name[-7]) and s["config"]["imbalance_ratio"] == 100
    assert summary(tmp_path / "results" / "elf_ldam_drw-ir100-seed0.jsonl")["config"]["exit_taps"]  # the ELF preset ran

    again = reproduce(*args, cwd=tmp_path)  # everything is done: nothing starts
    assert again.returncode == 0 and "started" not in again.stdout and "4/4 runs done (0 now)" in again.stdout

    res = subprocess.run([sys.executable, "-m", "tuner.reproduce.tables", "results"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = {line.split(" | ")[0].lstrip("| "): line for line in res.stdout.splitlines() if line.startswith("| ")}
    ldam, elf = lines["LDAM-DRW"], lines["ELF(LDAM)+DRW"]
    tests = {row: [summary(tmp_path / "results" / f"{row}-ir100-seed{s}.jsonl")["test_acc"] * 100 for s in (0, 1)]
             for row in ("ldam_drw", "elf_ldam_drw")}
    cells = elf.split(" | ")
    assert cells[5] == f"{statistics.fmean(tests['elf_ldam_drw']):.2f} ± {statistics.stdev(tests['elf_ldam_drw']):.2f}"
    assert cells[-3] == f"{statistics.fmean(tests['elf_ldam_drw']) - statistics.fmean(tests['ldam_drw']):+.2f}"
    assert cells[-1].rstrip(" |") == f"{78.1 - 77.0:+.2f}" and "78.10 (-15.1% FLOPs)" in elf
    # The papers' protocol, labelled: the best test_acc of any epoch line, and its gap to LDAM-DRW's.
    best = {row: [max(json.loads(ln)["test_acc"] for ln in (tmp_path / "results" / f"{row}-ir100-seed{s}.jsonl")
                      .read_text().splitlines()[:-1]) * 100 for s in (0, 1)] for row in ("ldam_drw", "elf_ldam_drw")}
    assert cells[10] == f"{statistics.fmean(best['elf_ldam_drw']):.2f} ± {statistics.stdev(best['elf_ldam_drw']):.2f}"
    assert cells[-2] == f"{statistics.fmean(best['elf_ldam_drw']) - statistics.fmean(best['ldam_drw']):+.2f}"
    assert "best test epoch (the papers' protocol; optimistic)" in res.stdout
    s_used = {summary(tmp_path / "results" / f"elf_ldam_drw-ir100-seed{s}.jsonl")["inference_threshold_used"] for s in (0, 1)}
    assert f"(s {', '.join(f'{v:g}' for v in sorted(s_used))})" in cells[8]  # the threshold ELF selected
    assert "| synthetic | 2 | 1 |" in ldam and f"{ROWS_BY_KEY['ldam_drw'].published[100]:.2f}" in ldam
    assert "## CIFAR-10-LT, imbalance 100" in res.stdout and "JPEG (quality 75)" in res.stdout


def test_the_papers_protocol_takes_the_best_test_epoch_not_the_last(tmp_path: Path) -> None:
    from tuner.reproduce.tables import best_test_epoch_acc, read_runs

    lines = [{"epoch": 1, "test_acc": 0.5, "status": "running"}, {"epoch": 2, "test_acc": 0.7, "status": "running"},
             {"epoch": 3, "test_acc": 0.6, "status": "completed"},
             {"summary": True, "status": "completed", "test_acc": 0.6, "epochs_run": 3}]
    run = tmp_path / "ldam_drw-ir100-seed0.jsonl"
    run.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert best_test_epoch_acc(run) == 0.7 and read_runs(tmp_path)[0]["best_test_epoch_acc"] == 0.7
    diverged = tmp_path / "other.jsonl"  # a diverged epoch reports the worst values, never a best
    diverged.write_text(json.dumps({"epoch": 1, "test_acc": 0.9, "status": "diverged"}) + "\n")
    assert best_test_epoch_acc(diverged) is None


def test_a_cifar100_table_comes_after_cifar10_and_measures_gaps_against_cifar100_ldam_drw(tmp_path: Path) -> None:
    from tuner.reproduce.tables import build

    def run_file(row: str, test_acc: float, dataset: str) -> None:
        done = {"summary": True, "status": "completed", "epochs_run": 200, "wall_seconds": 60.0, "device": "cuda",
                "val_acc": test_acc, "test_acc": test_acc, "selected_by_val": {"test_acc": test_acc}, "many_acc": 0.5,
                "medium_acc": 0.4, "few_acc": 0.3, "flops_ratio": 1.0, "config": {"dataset": dataset}}
        (tmp_path / f"{row}-ir100-seed0.jsonl").write_text(
            json.dumps({"epoch": 1, "test_acc": test_acc, "status": "completed"}) + "\n" + json.dumps(done) + "\n")

    run_file("ldam_drw", 0.70, "cifar10")
    run_file("elf_ldam_drw", 0.72, "cifar10")
    run_file("ldam_drw_c100", 0.40, "cifar100")
    run_file("elf_ldam_drw_c100", 0.43, "cifar100")
    run_file("reslt_released_c100", 0.41, "cifar100")
    text = build(tmp_path)
    assert text.startswith("# Results on CIFAR-10-LT, CIFAR-100-LT, ImageNet-LT and iNaturalist'18\n")
    c10, c100 = text.split("## CIFAR-10-LT, imbalance 100")[1].split("## CIFAR-100-LT, imbalance 100")
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in c100.splitlines() if line.startswith("| ")}
    assert "ldam_drw" not in c100 and "| cifar100 |" not in c10  # each run in its dataset's table
    elf = rows["ELF(LDAM)+DRW"]
    assert elf[1] == "cifar100" and elf[11] == "43.10 (-0.01% FLOPs)"
    assert elf[-3] == "+3.00" and elf[-2] == "+3.00" and elf[-1].rstrip(" |") == f"{43.1 - 42.0:+.2f}"  # not against CIFAR-10's 70
    assert rows["LDAM-DRW"][-3] == "—" and rows["ResLT (released recipe)"][11] == "—"  # no published CIFAR-100 number here
    assert rows["ResLT (released recipe)"][-3] == "+1.00"


def test_cifar100_rows_run_on_cifar100_unless_a_quick_check_says_otherwise() -> None:
    from tuner.reproduce.command import check, published_text, row_runs

    run = row_runs(["reslt_released_c100"], [100.0], [0], ["--device", "cpu"])[0]
    assert run.dataset == "cifar100" and run.name == "reslt_released_c100-ir100-seed0"
    assert run.args == ["--preset", "reslt_released", "--imbalance", "100", "--seed", "0", "--set", "dataset=cifar100",
                        "--device", "cpu"]
    assert published_text(run) == "vs —" and published_text(row_runs(["ldam_drw_c100"], [50.0], [0], [])[0]) == \
        "vs 46.60 (ELF paper, Table 2, CIFAR-100-LT)"
    check(run, {})  # its config builds on CIFAR-100 (ResLT's per-data beta)
    quick = row_runs(["ldam_drw_c100"], [10.0], [0], ["--set", "dataset=synthetic"])[0]
    assert quick.dataset == "synthetic" and quick.args[-2:] == ["--set", "dataset=synthetic"]  # the later --set wins
    from trainables.presets import build_preset

    assert build_preset("reslt_released", dataset=run.dataset, imbalance_ratio=100.0).reslt_alpha == 0.995


def test_the_headline_rows_are_the_elf_papers_tables_1_and_3() -> None:
    from trainables.presets import build_preset
    from tuner.reproduce.rows import HEADLINE_DATASETS, ROWS

    # Spot checks against ../shared/seeds/elf-paper.txt (Table 1: ResNet-50, Table 3: DenseNet-169; 100 epochs).
    elf_ce = ROWS_BY_KEY["r50_elf_ce_drw_inlt"]
    assert elf_ce.published == {256: 48.9} and elf_ce.published_flops_saving == {256: 20.7}
    assert elf_ce.published_groups == {256: (60.7, 45.5, 27.7)} and elf_ce.label == "ResNet-50, ELF(CE)+DRW"
    assert ROWS_BY_KEY["r50_elf_ldam_drw_inlt"].published_flops_saving == {256: 7.4}
    assert ROWS_BY_KEY["r50_ce_inat"].published == {500: 62.7} and ROWS_BY_KEY["r50_ce_inat"].published_flops_saving is None
    elf_ldam = ROWS_BY_KEY["r50_elf_ldam_drw_inat"]
    assert elf_ldam.published == {500: 67.9} and elf_ldam.published_flops_saving == {500: 9.0}
    assert ROWS_BY_KEY["d169_ce_drw_inlt"].published == {256: 47.9} and ROWS_BY_KEY["d169_ldam_drw_inat"].published == {500: 67.5}
    assert ROWS_BY_KEY["d169_elf_ldam_drw_inlt"].published_flops_saving == {256: 1.7}
    assert ROWS_BY_KEY["d169_elf_ldam_drw_inat"].published_groups == {500: (71.5, 68.5, 66.2)}
    assert ROWS_BY_KEY["d169_elf_ce_drw_inlt"].published == {} == ROWS_BY_KEY["d169_elf_ce_drw_inat"].published  # no such row in Table 3
    # Each headline row: its dataset's published ratio only, a preset that builds that backbone on that dataset.
    headline = [r for r in ROWS if r.dataset in HEADLINE_DATASETS]
    assert len(headline) == 20
    for row in headline:
        ((imbalance, preset),) = row.presets.items()
        config = build_preset(preset, dataset=row.dataset, imbalance_ratio=float(imbalance))
        config.validate()
        assert imbalance == HEADLINE_DATASETS[row.dataset] and set(row.published) <= {imbalance}
        assert config.backbone == row.backbone.lower().replace("-", "") and config.epochs == 100, row.key


def test_headline_runs_are_at_their_published_ratio_and_run_only_when_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tuner.reproduce.command import check, main, published_text, row_runs

    (run,) = row_runs(["r50_elf_ldam_drw_inlt"], None, [0], ["--device", "cuda"])
    assert run.name == "r50_elf_ldam_drw_inlt-ir256-seed0" and run.dataset == "imagenet_lt"
    assert run.args == ["--preset", "r50_elf_ldam_drw", "--imbalance", "256", "--seed", "0", "--set", "dataset=imagenet_lt",
                        "--device", "cuda"]
    assert published_text(run) == "vs 50.80 (ELF paper, Table 1, ImageNet-LT)"
    check(run, {})  # imbalance_ratio 256 is a valid value (an image-file set is not cut: it does not apply)
    assert row_runs(["r50_ce_inat", "ldam_drw"], [100.0], [0], []) == row_runs(["ldam_drw"], [100.0], [0], [])
    assert [r.name for r in row_runs(["ldam_drw", "d169_ce_inat"], None, [1], [])] == \
        ["ldam_drw-ir100-seed1", "ldam_drw-ir50-seed1", "ldam_drw-ir10-seed1", "d169_ce_inat-ir500-seed1"]
    assert main(["--plan", "--out", str(tmp_path / "results")]) == 0  # without --rows: the CIFAR rows, as before
    planned = capsys.readouterr().out.splitlines()
    assert len(planned) == 9 * 3 and not any("-ir256-" in ln or "-ir500-" in ln for ln in planned)
    assert main(["--plan", "--rows", "d169_ldam_drw_inlt", "--seeds", "0", "1", "--out", str(tmp_path / "results")]) == 0
    assert [ln.split()[2] for ln in capsys.readouterr().out.splitlines()] == ["d169_ldam_drw_inlt-ir256-seed0",
                                                                              "d169_ldam_drw_inlt-ir256-seed1"]
    assert main(["--plan", "--rows", "r50_ce_inlt", "--imbalance", "100"]) == 2
    assert capsys.readouterr().err.strip() == "tuner.reproduce: rows r50_ce_inlt: no run at --imbalance 100 (their imbalances: 256)"


def test_an_imagenet_lt_table_follows_the_cifar_ones_with_each_backbone_against_its_own_ldam_drw(tmp_path: Path) -> None:
    from tuner.reproduce.tables import build

    def run_file(row: str, imbalance: int, test_acc: float, dataset: str) -> None:
        done = {"summary": True, "status": "completed", "epochs_run": 100, "wall_seconds": 6000.0, "device": "cuda",
                "val_acc": test_acc, "test_acc": test_acc, "selected_by_val": {"test_acc": test_acc}, "many_acc": 0.6,
                "medium_acc": 0.45, "few_acc": 0.25, "flops_ratio": 0.9, "config": {"dataset": dataset}}
        (tmp_path / f"{row}-ir{imbalance}-seed0.jsonl").write_text(
            json.dumps({"epoch": 1, "test_acc": test_acc, "status": "completed"}) + "\n" + json.dumps(done) + "\n")

    run_file("ldam_drw", 100, 0.70, "cifar10")
    run_file("r50_ldam_drw_inlt", 256, 0.45, "imagenet_lt")
    run_file("r50_elf_ldam_drw_inlt", 256, 0.48, "imagenet_lt")
    run_file("d169_ldam_drw_inlt", 256, 0.46, "imagenet_lt")
    run_file("d169_elf_ldam_drw_inlt", 256, 0.47, "imagenet_lt")
    run_file("d169_elf_ce_drw_inlt", 256, 0.44, "imagenet_lt")
    text = build(tmp_path)
    c10, inlt = text.split("## CIFAR-10-LT, imbalance 100")[1].split("## ImageNet-LT, imbalance 256")
    assert "ResNet-50" not in c10 and "| imagenet_lt |" not in c10 and "-LT-LT" not in text and "iNaturalist'18, imbalance" not in text
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in inlt.splitlines() if line.startswith("| ")}
    assert list(rows)[2:] == ["ResNet-50, LDAM+DRW", "ResNet-50, ELF(LDAM)+DRW", "DenseNet-169, LDAM+DRW",
                              "DenseNet-169, ELF(CE)+DRW", "DenseNet-169, ELF(LDAM)+DRW"]  # after the header lines: ROWS' order
    r50, d169 = rows["ResNet-50, ELF(LDAM)+DRW"], rows["DenseNet-169, ELF(LDAM)+DRW"]
    assert r50[1] == "imagenet_lt" and r50[11] == "50.80 (-7.4% FLOPs; many / medium / few 64.0 / 46.8 / 27.7)"
    assert r50[-3] == "+3.00" and r50[-1].rstrip(" |") == f"{50.8 - 48.8:+.2f}"  # against ResNet-50's LDAM+DRW
    assert d169[-3] == "+1.00" and d169[-1].rstrip(" |") == f"{50.8 - 48.8:+.2f}"  # against DenseNet-169's, not ResNet-50's
    assert rows["DenseNet-169, ELF(CE)+DRW"][11] == "—" and rows["DenseNet-169, ELF(CE)+DRW"][-3] == "-2.00"
    assert rows["DenseNet-169, LDAM+DRW"][-3] == "—" and rows["ResNet-50, LDAM+DRW"][11] == "48.80 (many / medium / few 61.1 / 44.7 / 28.0)"


def _checkpoint_epoch(checkpoint: Path) -> int:
    import torch

    try:
        return int(torch.load(checkpoint, weights_only=True)["epoch"])
    except (OSError, RuntimeError, EOFError, KeyError):  # not there yet, or being written
        return 0


def _stopped_by_sigterm(args: list[str], cwd: Path, checkpoint: Path, past_epoch: int) -> subprocess.CompletedProcess:
    """tuner.reproduce, sent SIGTERM once its run's checkpoint holds more than `past_epoch` epochs: cut by
    what the run has done, not by a clock that a faster machine beats."""
    proc = subprocess.Popen([sys.executable, "-m", "tuner.reproduce", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(lambda: _checkpoint_epoch(checkpoint) > past_epoch, 240, f"a checkpoint past epoch {past_epoch}", proc)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"training processes left running after SIGTERM: {alive}"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.slow
def test_a_stopped_run_resumes_from_its_checkpoint_and_the_time_budget_leaves_it_for_later(tmp_path: Path) -> None:
    args = ["--rows", "reslt", "--imbalance", "10", *QUICK, "--epochs", "500"]
    partial = tmp_path / "results" / "partial"
    part, checkpoint = partial / "reslt-ir10-seed0.jsonl.part", partial / "reslt-ir10-seed0.pt"
    cut = _stopped_by_sigterm(args, tmp_path, checkpoint, 0)
    assert cut.returncode == 143 and "rerun the same command to resume" in cut.stderr, cut.stdout + cut.stderr
    assert not list((tmp_path / "results").glob("*.jsonl"))  # the unfinished run's lines stay in partial/
    first = _checkpoint_epoch(checkpoint)
    assert first >= 1 and [json.loads(ln)["epoch"] for ln in part.read_text().splitlines()][:first] == list(range(1, first + 1))
    plan = reproduce(*args, "--plan", cwd=tmp_path)
    assert plan.returncode == 0 and plan.stdout.startswith("to run  reslt-ir10-seed0")
    assert "--preset reslt --imbalance 10 --seed 0" in plan.stdout

    again = _stopped_by_sigterm(args, tmp_path, checkpoint, first)  # resumes after the checkpoint
    assert again.returncode == 143, again.stderr
    epochs = [json.loads(ln)["epoch"] for ln in part.read_text().splitlines()]
    second = _checkpoint_epoch(checkpoint)
    assert second > first and epochs[:second] == list(range(1, second + 1))  # no epoch twice, none missing

    # A time budget far shorter than 500 epochs: the run is cut and left for later, its checkpoint kept.
    budget = reproduce(*args, "--time-budget", "1", cwd=tmp_path)
    assert budget.returncode == 0 and "0/1 runs done" in budget.stdout and "1 left for later" in budget.stdout, budget.stdout
    assert "1 resume from checkpoints" in budget.stdout and _checkpoint_epoch(checkpoint) >= second


@pytest.mark.slow
def test_the_sweeps_best_trial_is_retrained_from_its_config(tmp_path: Path) -> None:
    from tuner.spec.schema import load_spec
    from tuner.sweep.trials_table import trial_row, trials_table, write_table

    spec = load_spec(Path(__file__).resolve().parents[2] / "search_spaces" / "smoke.yaml")
    trials = [("a", 0.41, 0.05, "completed"), ("b", 0.77, 0.2, "stopped"), ("c", 0.9, 0.1, "diverged")]
    rows = [trial_row(spec, {"trial_id": t, "val_acc": acc, "status": status if status != "stopped" else "running"},
                      {"lr": lr}, None) for t, acc, lr, status in trials]
    exp = tmp_path / "experiments" / "smoke"
    exp.mkdir(parents=True)
    write_table(trials_table(spec, rows), str(exp))
    res = reproduce("--from-sweep", str(exp), "--seeds", "1", "2", "--parallel", "2", "--epochs", "1", "--device", "cpu",
                    cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    written = json.loads((tmp_path / "results" / "sweep_best-ir10.config.json").read_text())
    assert written["trial_id"] == "b"  # the diverged trial does not rank
    for seed in (1, 2):
        s = summary(tmp_path / "results" / f"sweep_best-ir10-seed{seed}.jsonl")
        assert s["config"]["lr"] == 0.2 and s["config"]["seed"] == seed and s["config"]["backbone"] == "resnet20"
    table = subprocess.run([sys.executable, "-m", "tuner.reproduce.tables", "results"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120).stdout
    assert "## CIFAR-10-LT, imbalance 10" in table and "| best trial of search_spaces/hybrid.yaml, retrained | synthetic | 2 |" in table


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for args, message in [
        (["--set", "lr=-1"], "lr: must be > 0"),
        (["--set", "no_such_field=1"], "no_such_field"),
        (["--from-sweep", "nowhere"], "no finished sweep"),
        (["--parallel", "0"], "--parallel and --epochs must be at least 1"),
        (["--rows", "nope"], "invalid choice"),
    ]:
        res = reproduce(*args, "--plan", cwd=tmp_path, timeout=120)
        assert res.returncode == 2 and message in res.stderr, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    missing = subprocess.run([sys.executable, "-m", "tuner.reproduce.tables", "nowhere"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 2 and "nowhere is not a folder" in missing.stderr
    assert not (tmp_path / "results").exists()


def test_docs_results_is_built_from_the_run_files_in_results() -> None:
    from tuner.reproduce.tables import build

    repo = Path(__file__).resolve().parents[2]
    assert (repo / "docs" / "RESULTS.md").read_text() == build(repo / "results", label="results"), \
        "rebuild: python -m tuner.reproduce.tables results --out docs/RESULTS.md"
