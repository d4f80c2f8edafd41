"""A sweep's experiment folder: where it is, its state file, and the fingerprint of the spec it runs.

The folder is `run.storage_path/NAME`, a local path or an s3:// / gs:// URI, reached through
pyarrow's file systems. It holds Ray Tune's experiment, the Parquet table of trials and
`tuner_sweep.json`, the launcher's state: the spec fingerprint (a changed spec is refused on
resume), the MLflow parent run, and whether the sweep finished.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs

from tuner.spec import SweepSpec

SWEEP_STATE_FILE = "tuner_sweep.json"


def experiment_filesystem(uri: str) -> tuple[pa.fs.FileSystem, str]:
    """(pyarrow file system, path in it) of an experiment folder: a local path or an s3://, gs:// URI."""
    if "://" in uri:
        return pa.fs.FileSystem.from_uri(uri)
    return pa.fs.LocalFileSystem(), uri


def storage_location(spec: SweepSpec) -> str:
    """run.storage_path, made absolute when it is a local folder."""
    storage = spec.run.storage_path
    return storage if "://" in storage else str(Path(storage).expanduser().resolve())


def experiment_uri(spec: SweepSpec) -> str:
    """Where the sweep's folder is; an URI's query (s3://b/p?endpoint_override=...) stays at the end."""
    base, sep, query = storage_location(spec).partition("?")
    return f"{base.rstrip('/')}/{spec.name}{sep}{query}"


def read_state(exp: str) -> dict[str, Any] | None:
    fs, path = experiment_filesystem(exp)
    try:
        with fs.open_input_stream(f"{path}/{SWEEP_STATE_FILE}") as f:
            return json.loads(f.read().decode())
    except (FileNotFoundError, OSError):
        return None


def write_state(exp: str, state: dict[str, Any]) -> None:
    fs, path = experiment_filesystem(exp)
    fs.create_dir(path, recursive=True)
    with fs.open_output_stream(f"{path}/{SWEEP_STATE_FILE}") as f:
        f.write(json.dumps(state, indent=2).encode())


def delete_experiment(exp: str) -> None:
    import pyarrow.fs

    fs, path = experiment_filesystem(exp)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound:
        fs.delete_dir(path)


def spec_fingerprint(spec: SweepSpec) -> str:
    """What must not change between a sweep and its resumption (comments and tracking may)."""
    essentials = {
        "base": spec.base_config.to_dict(), "search": [asdict(p) for p in spec.search],
        "objective": asdict(spec.objective), "searcher": asdict(spec.searcher), "scheduler": asdict(spec.scheduler),
        "resources": asdict(spec.resources), "run": asdict(spec.run),
    }
    return hashlib.sha256(json.dumps(essentials, sort_keys=True, default=str).encode()).hexdigest()
