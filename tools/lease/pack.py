"""Pack what a GPU lease made into the few files a device call brings back, and unpack them here.

At most 8 files of at most 16 MiB come back from a lease. They are:
    manifest.json          what ran, what finished, what was cut and why, and the files below
    results.tar.gz         new or changed files of results/: finished runs' lines, unfinished runs' lines
    checkpoints-N.tar      unfinished runs' checkpoints (results/partial/*.pt), split to stay under the limit
    bench.tar.gz           the benchmark documents (bench.json, workers.json) when the lease measured them
    sweep.tar.gz           the sweep's trials.parquet, MLflow store (mlflow.db) and log
A checkpoint that does not fit is left out and the manifest says so: that run starts over.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

from tuner.sweep.experiment import SWEEP_STATE_FILE, TABLE_FILE

MAX_FILES = 8
MAX_BYTES = 15 * 2**20  # under the 16 MiB a returned file may have
MANIFEST = "manifest.json"


def _tar(path: Path, members: list[tuple[Path, str]], compress: bool = True) -> Path:
    with tarfile.open(path, "w:gz" if compress else "w") as tar:
        for source, name in members:
            tar.add(source, arcname=name)
    return path


def pack(out: Path, repo: Path, changed: list[Path], work: Path, manifest: dict[str, Any]) -> list[str]:
    """Write the archives and manifest.json into `out`; the names written."""
    files: list[Path] = []
    lines = [p for p in changed if p.suffix != ".pt"]
    if lines:
        files.append(_tar(out / "results.tar.gz", [(p, p.relative_to(repo).as_posix()) for p in lines]))
    # Checkpoints go in groups of at most MAX_BYTES, one archive each, as many as files are left
    # beside the manifest, the benchmark and the sweep; the rest are left out (those runs start over).
    left_out: list[str] = []
    groups: list[list[Path]] = []
    group_bytes = 0
    for checkpoint in sorted(p for p in changed if p.suffix == ".pt"):
        size = checkpoint.stat().st_size
        if size > MAX_BYTES:
            left_out.append(checkpoint.name)
            continue
        if not groups or group_bytes + size > MAX_BYTES:
            groups.append([])
            group_bytes = 0
        groups[-1].append(checkpoint)
        group_bytes += size
    benches = [p for p in (work / "bench.json", work / "workers.json", work / "streaming.json") if p.exists()]
    room = MAX_FILES - 1 - len(files) - bool(benches) - any((work / "sweep").glob("*"))
    left_out += [p.name for group in groups[max(room, 0):] for p in group]
    for group in groups[:max(room, 0)]:
        files.append(_tar(out / f"checkpoints-{len(files)}.tar", [(p, p.relative_to(repo).as_posix()) for p in group],
                          compress=False))
    if benches:
        files.append(_tar(out / "bench.tar.gz", [(p, p.name) for p in benches]))
    sweep = sorted((work / "sweep").rglob("*")) if (work / "sweep").exists() else []
    # The sweep's table and state, its log, and the MLflow store (database and artifacts, the registered
    # model among them); not the trials' checkpoints, which would not fit.
    wanted = [p for p in sweep if p.is_file() and (p.name in ("mlflow.db", "launch.log", TABLE_FILE, SWEEP_STATE_FILE)
                                                     or "mlruns" in p.relative_to(work / "sweep").parts)]
    if wanted:
        files.append(_tar(out / "sweep.tar.gz", [(p, p.relative_to(work / "sweep").as_posix()) for p in wanted]))
    manifest["checkpoints_left_out"] = left_out
    manifest["archives"] = [f.name for f in files]
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return [f.name for f in files] + [MANIFEST]


def unpack(folder: Path, into: Path) -> dict[str, Any]:
    """Extract every archive of a lease's returned folder into `into`; the manifest."""
    manifest = json.loads((folder / MANIFEST).read_bytes())
    if not isinstance(manifest, dict) or not isinstance(manifest.get("archives", []), list) \
            or not isinstance(manifest.get("steps", []), list):
        raise ValueError(f"{folder / MANIFEST} is not a lease's manifest")
    for name in manifest.get("archives", []):
        with tarfile.open(folder / name) as tar:
            tar.extractall(into / Path(name).name.split(".")[0].split("-")[0], filter="data")
    return manifest
