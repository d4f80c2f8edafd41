"""Land what a GPU lease brought back: results/, docs/perf/, the sweep's files, and the docs rebuilt.

    python -m tools.lease collect FOLDER        (bash scripts/gpu_collect.sh FOLDER)

FOLDER is what the device call returned (manifest.json and the archives of pack.py):
- finished runs' lines go to results/ (and their partial files go); unfinished runs' lines and
  checkpoints go to results/partial/, where the next lease resumes them;
- the benchmark document goes to docs/perf/DEVICE-DATE-HHMM.json, and the per-epoch times of the
  results runs (as many at once as the lease ran them) to docs/perf/DEVICE-DATE-HHMM-results.json:
  the next plan sizes its runs by them; the workers and streaming benchmarks' documents go beside them
  as docs/perf/DEVICE-DATE-HHMM-workers.json and -streaming.json (the streaming one from bench.tar.gz
  or, where the lease did not pack it there, from its step in manifest.json);
- the sweep's trials.parquet, state, log and MLflow store (mlflow.db, mlruns/) go to
  results/sweeps/NAME/ (the database names the artifact folder as it was on the GPU machine);
- docs/RESULTS.md and the GPU section of docs/PERFORMANCE.md are rebuilt from those files.
It prints what changed; commit it.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tarfile
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from tools.lease import plan as lease_plan
from tools.lease.pack import unpack
from tools.lease.perf_doc import update_performance_doc
from tuner.reproduce.run_file import RunFiles, epoch_lines
from tuner.reproduce.tables import build


class CollectError(Exception):
    """A returned folder that cannot be landed: one line, exit 2."""


def _move(source: Path, target: Path, changed: list[str], repo: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    changed.append(target.relative_to(repo).as_posix())


def _timed_epochs(path: Path) -> list[dict[str, Any]]:
    return [e for e in epoch_lines(path) if "epoch_seconds" in e]


def results_timing(manifest: dict[str, Any], unpacked: Path, repo: Path) -> dict[str, Any] | None:
    """The packing the results runs measured in this lease: the median seconds per epoch of a run (training
    and evaluation) with `parallel` at once, from the epochs this lease trained (the first of each run
    left out: it pays for start-up). Read before the returned files land, to know where each run began."""
    step = next((s for s in manifest.get("steps", []) if s.get("name") == "results"), {})
    names = list(step.get("finished", [])) + [c["name"] for c in step.get("cut", [])]
    parallel = step.get("parallel")
    if not names or not parallel or manifest.get("device_type") in (None, "cpu"):
        return None
    runs = []
    returned = unpacked / "results" / lease_plan.RESULTS_DIR  # the archive holds results/...
    for name in names:
        began = RunFiles(repo / lease_plan.RESULTS_DIR, name).checkpoint_epoch()
        came_back = RunFiles(returned, name)
        lines = _timed_epochs(came_back.finished) or _timed_epochs(came_back.lines)
        runs.append([e for e in lines if isinstance(e.get("epoch"), int) and e["epoch"] > began + 1])
    runs = [r for r in runs if r]
    if not runs:
        return None
    per_run_images = statistics.median(statistics.median(e["images_per_second"] for e in r) for r in runs)
    device = {k: manifest.get(k) for k in ("torch", "torchvision", "python", "host", "device_type", "device")}
    return {"kind": lease_plan.RESULTS_KIND, "date": str(manifest.get("started", "?"))[:10], **device, "runs": names,
            "commands": {"packed": f"{parallel} results runs at once: python -m tuner.reproduce (200 epochs each)"},
            "packed": {str(parallel): {"processes": parallel, "complete": True, "epochs": sum(len(r) for r in runs),
                                       "epoch_seconds": statistics.median(e["epoch_seconds"] for r in runs for e in r),
                                       "summed_train_images_per_second": per_run_images * parallel}}}


def collect(folder: Path, repo: Path) -> dict[str, Any]:
    if not (folder / "manifest.json").is_file():
        raise CollectError(f"{folder}: no manifest.json; give the folder a lease's files came back to")
    changed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            manifest = unpack(folder, Path(tmp))
        except (OSError, ValueError, KeyError, EOFError, zlib.error, tarfile.TarError) as exc:
            raise CollectError(f"{folder}: cannot unpack it ({exc}); was it brought back whole?") from None
        unpacked = Path(tmp)
        results = repo / lease_plan.RESULTS_DIR
        packing = results_timing(manifest, unpacked, repo)
        for kind in ("results", "checkpoints"):
            for path in sorted((unpacked / kind).rglob("*")):
                if not path.is_file():
                    continue
                relative = path.relative_to(unpacked / kind)
                _move(path, repo / relative, changed, repo)
        for done in results.glob("*.jsonl"):  # a finished run's partial files are no longer needed
            for leftover in (RunFiles(results, done.stem).lines, RunFiles(results, done.stem).checkpoint):
                if leftover.exists():
                    leftover.unlink()
                    changed.append(f"removed {leftover.relative_to(repo).as_posix()}")
        try:
            stamp = time.strftime("%Y-%m-%d-%H%M", time.strptime(str(manifest.get("started"))[:19], "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            stamp = time.strftime("%Y-%m-%d-%H%M")  # when it was landed, if the manifest does not say when it ran
        perf_name = f"{manifest.get('device_type', 'gpu')}-{stamp}"
        bench = unpacked / "bench" / "bench.json"
        if bench.is_file():
            _move(bench, repo / lease_plan.PERF_DIR / f"{perf_name}.json", changed, repo)
        workers = unpacked / "bench" / "workers.json"
        if workers.is_file():
            _move(workers, repo / lease_plan.PERF_DIR / f"{perf_name}-{lease_plan.WORKERS_KIND}.json", changed, repo)
        streaming = unpacked / "bench" / "streaming.json"
        if not streaming.is_file():
            step = next((s for s in manifest.get("steps", []) if s.get("name") == lease_plan.STREAMING_KIND), {})
            if isinstance(step.get("document"), dict):
                streaming.parent.mkdir(parents=True, exist_ok=True)
                streaming.write_text(json.dumps(step["document"], indent=1))
        if streaming.is_file():
            _move(streaming, repo / lease_plan.PERF_DIR / f"{perf_name}-{lease_plan.STREAMING_KIND}.json", changed, repo)
        step = next((s for s in manifest.get("steps", []) if s.get("name") == lease_plan.DATA_PARALLEL_KIND), {})
        if isinstance(step.get("document"), dict) and step["document"].get("lines"):
            target = repo / lease_plan.PERF_DIR / f"{perf_name}-{lease_plan.DATA_PARALLEL_KIND}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(step["document"], indent=1))
            changed.append(target.relative_to(repo).as_posix())
        if packing:
            (unpacked / "packing.json").write_text(json.dumps(packing, indent=1))
            _move(unpacked / "packing.json", repo / lease_plan.PERF_DIR / f"{perf_name}-{lease_plan.RESULTS_KIND}.json",
                  changed, repo)
        sweep = unpacked / "sweep"
        if sweep.is_dir() and any(sweep.rglob("*")):
            step = next((s for s in manifest["steps"] if s["name"] == "sweep"), {})
            name = Path(step.get("spec", "sweep")).stem
            for path in sorted(p for p in sweep.rglob("*") if p.is_file()):
                _move(path, repo / lease_plan.SWEEPS_DIR / name / path.relative_to(sweep), changed, repo)
    (repo / "docs").mkdir(exist_ok=True)
    results_doc = repo / "docs" / "RESULTS.md"
    text = build(repo / lease_plan.RESULTS_DIR, label=lease_plan.RESULTS_DIR.as_posix())
    if not results_doc.exists() or results_doc.read_text() != text:
        results_doc.write_text(text)
        changed.append("docs/RESULTS.md")
    if update_performance_doc(repo):
        changed.append("docs/PERFORMANCE.md")
    return {"manifest": manifest, "changed": changed}


def summary_lines(result: dict[str, Any]) -> list[str]:
    manifest = result["manifest"]
    lines = [f"lease of {manifest.get('started', '?')} on {manifest.get('device', '?')} "
             f"(torch {manifest.get('torch', '?')}, torchvision {manifest.get('torchvision', '?')}):"]
    for step in manifest.get("steps", []):
        detail = step.get("why") or ""
        if step["name"] == "results":
            detail = (f"{len(step.get('finished', []))} finished, "
                      + f"{len(step.get('cut', []))} cut" + (f" ({detail})" if detail else ""))
        rates = (step.get("document") or {}).get("images_per_second") or {}
        if step["name"] == lease_plan.STREAMING_KIND and rates.get("streamed") and rates.get("pil"):
            detail = f"streamed {rates['streamed']:,.0f} images/s, PIL {rates['pil']:,.0f} ({rates['streamed'] / rates['pil']:.2f}x)"
        if step["name"] == lease_plan.DATA_PARALLEL_KIND and (step.get("document") or {}).get("lines"):
            detail = ", ".join(f"{line['world']} GPU(s) {line['images_per_second']:,.0f} images/s ({line['efficiency']:.0%})"
                               for line in step["document"]["lines"])
        lines.append(f"  {step['name']}: {step['status']}" + (f": {detail}" if detail else ""))
    if manifest.get("checkpoints_left_out"):
        lines.append(f"  not brought back (too large), these runs start over: {', '.join(manifest['checkpoints_left_out'])}")
    lines.append("changed:" if result["changed"] else "nothing changed")
    lines += [f"  {c}" for c in result["changed"]]
    return lines
