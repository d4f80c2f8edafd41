"""The sweep's saved Ray Tune state reaches a local experiment folder whole or not at all: a fix for Ray.

Ray Tune writes the experiment state (experiment_state-*.json, the searcher's searcher-state-*.pkl, ...)
into the driver's staging folder under /tmp/ray atomically, then copies the folder into the experiment
folder (ray/train/_internal/storage.py, `_upload_to_fs_path`, run by the driver's syncer thread) with
pyarrow's `copy_files`, which writes each file in place. A driver killed during that copy (SIGKILL, the
OOM killer, a lost machine) leaves a truncated file: seen as a 0-byte searcher-state-*.pkl after
test_faults.py's driver kill (2026-12-07, Ray 2.60.0), and the rerun could not resume ("Ray Tune's saved
state of this sweep is damaged").

The fix: into a local folder, each file is copied to a hidden name beside its destination and renamed
over it (a rename within one folder is atomic on POSIX), so a reader sees the last whole copy or the
new one; the experiment state, which names the trials, goes last (EXPERIMENT_STATE). Object stores
(s3://, gs://) already replace an object whole on upload, so they, and uploads with an exclude list
(trial checkpoints' paths, not the driver's state), go through Ray as before.
tests/tuner/test_whole_state_files.py SIGKILLs a process in the middle of such a copy.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path
from typing import Any

_APPLIED = "_tuner_whole_state_files_fix"
PARTIAL_SUFFIX = ".uploading"  # a copy in progress: `.<name>.uploading` beside `<name>`; a rerun overwrites it
# Copied after the other files: it names the trials, and a resume whose experiment state names a trial that the
# searcher's saved state lacks fails (KeyError in OptunaSearch.on_trial_result); a searcher ahead of it is a
# trial the sweep forgot, which the launcher handles. Copied in name order, it came first, and a CI run's driver
# killed between the two files could not resume (2026-12-07).
EXPERIMENT_STATE = "experiment_state-"


def _last_the_experiment_state(path: Path) -> tuple[bool, str]:
    return path.name.startswith(EXPERIMENT_STATE), str(path)


def copy_whole(source: Path, destination: Path) -> None:
    """Copy a file, or a folder's files, so that each destination file is replaced in one rename; Ray Tune's
    experiment state last."""
    pairs = [(source, destination)] if source.is_file() else [
        (path, destination / path.relative_to(source))
        for path in sorted(source.rglob("*"), key=_last_the_experiment_state) if path.is_file()]
    for src, dst in pairs:
        dst.parent.mkdir(parents=True, exist_ok=True)
        partial = dst.with_name(f".{dst.name}{PARTIAL_SUFFIX}")
        shutil.copyfile(src, partial)
        os.replace(partial, dst)


def upload_state_files_whole() -> None:
    """Patch Ray's upload to storage once per process (the driver); later calls do nothing."""
    import pyarrow.fs
    from ray.train._internal import storage

    upload = storage._upload_to_fs_path
    if getattr(upload, _APPLIED, False):
        return

    @functools.wraps(upload)
    def _upload_to_fs_path(local_path: str, fs: Any, fs_path: str, exclude: list[str] | None = None) -> None:
        if exclude or not isinstance(fs, pyarrow.fs.LocalFileSystem):
            return upload(local_path, fs, fs_path, exclude)
        copy_whole(Path(local_path), Path(fs_path))

    setattr(_upload_to_fs_path, _APPLIED, True)
    # The syncer looks the function up in the module when it makes each sync command (_sync_up_command).
    storage._upload_to_fs_path = _upload_to_fs_path
