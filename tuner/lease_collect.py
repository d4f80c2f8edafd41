"""Land what a GPU lease brought back: results/, docs/perf/, the sweep's files, and the docs rebuilt.

    python -m tuner.lease collect FOLDER        (bash scripts/gpu_collect.sh FOLDER)

FOLDER is what the device call returned (manifest.json and the archives of lease_pack.py):
- finished runs' lines go to results/ (and their partial files go); unfinished runs' lines and
  checkpoints go to results/partial/, where the next lease resumes them;
- the benchmark document goes to docs/perf/gpu-DATE-HHMM.json;
- the sweep's trials.parquet, state, log and MLflow store (mlflow.db, mlruns/) go to
  results/sweeps/NAME/ (the database names the artifact folder as it was on the GPU machine);
- docs/RESULTS.md and the GPU section of docs/PERFORMANCE.md are rebuilt from those files.
It prints what changed; commit it.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from tuner import lease_plan
from tuner.lease_pack import unpack
from tuner.perf_doc import update_performance_doc
from tuner.reproduce import PARTIAL
from tuner.results_tables import build


class CollectError(Exception):
    """A returned folder that cannot be landed: one line, exit 2."""


def _move(source: Path, target: Path, changed: list[str], repo: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    changed.append(target.relative_to(repo).as_posix())


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
        for kind in ("results", "checkpoints"):
            for path in sorted((unpacked / kind).rglob("*")):
                if not path.is_file():
                    continue
                relative = path.relative_to(unpacked / kind)
                _move(path, repo / relative, changed, repo)
        for done in results.glob("*.jsonl"):  # a finished run's partial files are no longer needed
            for leftover in (results / PARTIAL / f"{done.stem}.jsonl.part", results / PARTIAL / f"{done.stem}.pt"):
                if leftover.exists():
                    leftover.unlink()
                    changed.append(f"removed {leftover.relative_to(repo).as_posix()}")
        bench = unpacked / "bench" / "bench.json"
        if bench.is_file():
            try:
                stamp = time.strftime("%Y-%m-%d-%H%M", time.strptime(str(manifest.get("started"))[:19], "%Y-%m-%d %H:%M:%S"))
            except ValueError:
                stamp = time.strftime("%Y-%m-%d-%H%M")  # when it was landed, if the manifest does not say when it ran
            _move(bench, repo / lease_plan.PERF_DIR / f"{manifest.get('device_type', 'gpu')}-{stamp}.json", changed, repo)
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
        lines.append(f"  {step['name']}: {step['status']}" + (f": {detail}" if detail else ""))
    if manifest.get("checkpoints_left_out"):
        lines.append(f"  not brought back (too large), these runs start over: {', '.join(manifest['checkpoints_left_out'])}")
    lines.append("changed:" if result["changed"] else "nothing changed")
    lines += [f"  {c}" for c in result["changed"]]
    return lines
