"""Free space on the local folders a sweep writes, checked before it starts and while it runs.

A sweep whose storage fills up would fail in many places at once: Ray's trial checkpoints, the
experiment state, MLflow's database, the decode cache. Rather than let each fail on its own, the
launcher refuses to start when a folder is already short of `run.min_free_mb` (exit 2), and while
the sweep runs tuner.sweep.storage_watch stops it as Ctrl-C would (trials keep their checkpoints, the
searcher its state) as soon as one falls short, with ExitCode.STORAGE_FULL and this module's message:
rerun the same command once there is space again.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path


def _local_path(uri: str) -> Path | None:
    """The local file or folder a URI or path names; None for a server or an object store."""
    for prefix in ("sqlite:///", "file://"):  # sqlite:///rel.db and sqlite:////abs.db alike
        if uri.startswith(prefix):
            return Path(uri[len(prefix):])
    return None if "://" in uri else Path(uri)


def sweep_folders(experiment: str, tracking_uri: str) -> list[Path]:
    """The local folders the sweep writes: its experiment folder, a local MLflow store, the decode cache."""
    from trainables.data.sources import cache_root

    candidates = [_local_path(experiment), _local_path(tracking_uri), cache_root()]
    folders = []
    for path in candidates:
        if path is None:
            continue
        path = Path(path).expanduser().resolve()
        folders.append(path.parent if path.suffix == ".db" else path)
    return folders


def _existing(path: Path) -> Path:
    """The folder itself, or its nearest ancestor that exists (a sweep's folder is made as it starts)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def unwritable(folders: list[Path]) -> list[str]:
    """'FOLDER (why)' for each folder the sweep cannot write: its nearest existing ancestor refuses a new
    file (read-only, no permission, not a folder). Checked before free space, which such a folder
    would report as 0 MB."""
    import tempfile

    problems = []
    for folder in folders:
        existing = _existing(folder)
        try:
            if not existing.is_dir():
                raise NotADirectoryError(f"{existing} is not a folder")
            with tempfile.NamedTemporaryFile(dir=existing, prefix=".tuner-write-check-"):
                pass
        except OSError as exc:
            problems.append(f"{folder} (a new file in {existing}: {exc.strerror or exc})")
    return problems


def shortages(folders: list[Path], min_free_mb: float) -> list[str]:
    """'FOLDER has N MB free' for each file system among `folders` with less than min_free_mb free."""
    short, seen = [], set()
    for folder in folders:
        existing = _existing(folder)
        try:
            device = os.stat(existing).st_dev
            free_mb = shutil.disk_usage(existing).free / 2**20
        except OSError:
            continue  # unreadable: the write itself will say what is wrong
        if device in seen:
            continue
        seen.add(device)
        if free_mb < min_free_mb:
            short.append(f"{folder} has {free_mb:.0f} MB free")
    return short


def storage_full_message(short: list[str], min_free_mb: float, started: bool) -> str:
    what = "stopped; every trial keeps its last checkpoint" if started else "not started"
    return (f"storage full: {'; '.join(short)}, below run.min_free_mb ({min_free_mb:g} MB). The sweep is {what}. "
            "Free some space (or move run.storage_path / the MLflow store elsewhere) and rerun the same command")


def is_disk_full(exc: BaseException) -> bool:
    """An error that means a file system is full (or a quota is reached), wherever it surfaced."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "database or disk is full" in str(exc):  # SQLite's way of saying it, through SQLAlchemy
            return True
        exc = exc.__cause__ or exc.__context__
    return False
