"""A sweep's experiment folder: where it is, its state file, its driver's lock, and the fingerprint of
the spec it runs.

The folder is `run.storage_path/NAME`, a local path or an s3:// / gs:// URI, reached through
pyarrow's file systems. It holds Ray Tune's experiment, the Parquet table of trials,
`tuner_sweep.json`, the launcher's state (the spec fingerprint: a changed spec is refused on
resume; the MLflow parent run; whether the sweep finished), written whole or not at all, and
`tuner_driver.lock` while a driver runs the sweep (DriverLock: one sweep, one driver).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import pickle
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs

from trainables.cli import first_line
from tuner.spec.schema import DEFAULT_STORAGE, SweepSpec

SWEEP_STATE_FILE = "tuner_sweep.json"
LOCK_FILE = "tuner_driver.lock"
STOP_REQUEST_FILE = "tuner_stop_request.json"  # python -m tuner.stop writes it; the running driver reads it and stops
TABLE_FILE = "trials.parquet"  # one row per trial (tuner/sweep/trials_table.py), written as trials end and at the end
HEARTBEAT_SECONDS = 15.0  # how often a running driver renews its lock
STALE_SECONDS = 120.0  # a lock not renewed for this long belongs to a driver that died (another host, or no pid)


class ExperimentError(RuntimeError):
    """The experiment folder stands in the way (a sweep running, a damaged state file, none there); nothing has started."""


def experiment_filesystem(uri: str) -> tuple[pa.fs.FileSystem, str]:
    """(pyarrow file system, path in it) of an experiment folder: a local path or an s3://, gs:// URI."""
    if "://" in uri:
        return pa.fs.FileSystem.from_uri(uri)
    return pa.fs.LocalFileSystem(), uri


# Ray Tune's own files of a sweep, which a resume reads (the newest of each pattern), with the keys a
# JSON one must hold (None: a pickle, whatever its name says): the trials and their state, the
# searcher's generation counters, the pickled Optuna searcher (its study and sampler), the Tuner.
GENERATOR_STATE = "search_gen_state-*.json"  # Ray's SearchGenerator: trials to make and made (tuner/sweep/grow.py)
RAY_STATE_FILES = {"experiment_state-*.json": ("trial_data", "runner_data"), GENERATOR_STATE: None,
                   "searcher-state-*.pkl": None, "tuner.pkl": None}


def newest_ray_files(exp: str) -> tuple[pa.fs.FileSystem, dict[str, str]]:
    """(file system, {pattern of RAY_STATE_FILES: path of its newest file}) of a sweep's folder, from one
    listing; a pattern with no file, or a folder not there yet, has no entry."""
    fs, base = experiment_filesystem(exp)
    try:
        names = sorted(info.base_name for info in fs.get_file_info(pa.fs.FileSelector(base, allow_not_found=True))
                       if info.type == pa.fs.FileType.File)
    except OSError:
        return fs, {}
    newest = {}
    for pattern in RAY_STATE_FILES:
        matching = fnmatch.filter(names, pattern)
        if matching:
            newest[pattern] = f"{base.rstrip('/')}/{matching[-1]}"  # the names end in a sortable time stamp
    return fs, newest


def damaged_ray_state(exp: str) -> str | None:
    """'FILE (what is wrong)' for the first of Ray Tune's saved files of this sweep that does not read, else None."""
    fs, newest = newest_ray_files(exp)
    for pattern, path in newest.items():
        keys = RAY_STATE_FILES[pattern]
        try:
            with fs.open_input_stream(path) as stream:
                data = stream.read()
            if keys is None:
                pickle.loads(data)  # noqa: S301 - the sweep's own file
            elif not isinstance(value := json.loads(data), dict) or not set(keys) <= set(value):
                raise ValueError(f"a JSON {type(value).__name__} without {', '.join(keys)}")
        except Exception as exc:  # noqa: BLE001 - cut short, random bytes, another type: all mean damaged
            return f"{path} ({type(exc).__name__}: {first_line(exc, 100)})"
    return None


def storage_location(spec: SweepSpec) -> str:
    """run.storage_path, made absolute when it is a local folder."""
    storage = spec.run.storage_path
    return storage if "://" in storage else str(Path(storage).expanduser().resolve())


def experiment_uri(spec: SweepSpec) -> str:
    """Where the sweep's folder is; an URI's query (s3://b/p?endpoint_override=...) stays at the end."""
    base, sep, query = storage_location(spec).partition("?")
    return f"{base.rstrip('/')}/{spec.name}{sep}{query}"


MISSING = object()  # _read_json: no such file (a file holding JSON null is another thing: damaged)


def _read_json(exp: str, name: str) -> Any:
    """The JSON in the folder's file `name`; MISSING when there is no such file; ValueError when it is damaged."""
    fs, path = experiment_filesystem(exp)
    try:
        with fs.open_input_stream(f"{path}/{name}") as f:
            data = f.read()
    except (FileNotFoundError, OSError):
        return MISSING
    return json.loads(data.decode())  # ValueError (JSONDecodeError, UnicodeDecodeError) when damaged


def _write_json(exp: str, name: str, doc: Any) -> None:
    """Write whole or not at all: a temporary file renamed over the old one (a crash leaves either)."""
    fs, path = experiment_filesystem(exp)
    fs.create_dir(path, recursive=True)
    partial = f"{path}/.{name}.{os.getpid()}.tmp"
    with fs.open_output_stream(partial) as f:
        f.write(json.dumps(doc, indent=2).encode())
    fs.move(partial, f"{path}/{name}")


@dataclass(frozen=True)
class SweepState:
    """The launcher's state of one sweep, in the folder as tuner_sweep.json (to_json / from_json: its
    only reader and writer). `finished` is set once the sweep ended: trials, when, the registered
    model and slot use."""

    spec_fingerprint: str
    parent_run_id: str | None = None  # the sweep's MLflow parent run
    experiment_id: str | None = None  # its MLflow experiment
    tracking_uri: str | None = None  # the store they are in
    spec_file: str | None = None
    started: float = 0.0  # time.time() of the first launch
    finished: dict[str, Any] | None = None
    num_samples: int | None = None  # what the last launch asked for (python -m tuner.status's "of N")
    gpu_per_trial: float | None = None  # its resources.gpu (trial-hours become GPU-hours)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, doc: Any) -> SweepState:
        """ValueError for anything that is not a state this launcher wrote."""
        if not isinstance(doc, dict) or not isinstance(doc.get("spec_fingerprint"), str):
            raise ValueError("not the launcher's JSON state")
        known = {f.name for f in fields(cls)}
        state = cls(**{k: v for k, v in doc.items() if k in known})
        if state.finished is not None and not isinstance(state.finished, dict):
            raise ValueError("'finished' is not an object")
        return state

    def finish(self, summary: dict[str, Any]) -> SweepState:
        return replace(self, finished={"trials": summary["trials"], "at": time.time(),
                                       "registered_model": summary["registered_model"], "slot_use": summary["slot_use"]})


def read_state(exp: str) -> SweepState | None:
    """The launcher's state, or None for a new sweep; ExperimentError when the file is damaged."""
    try:
        doc = _read_json(exp, SWEEP_STATE_FILE)
        if doc is MISSING:
            return None
        return SweepState.from_json(doc)
    except ValueError:
        raise ExperimentError(
            f"{exp}/{SWEEP_STATE_FILE} is damaged (not the launcher's JSON state); rerun with --restart to start the sweep "
            f"over, or remove that file to resume Ray's trials under a new MLflow parent run") from None


def write_state(exp: str, state: SweepState) -> None:
    _write_json(exp, SWEEP_STATE_FILE, state.to_json())


def delete_experiment(exp: str) -> None:
    """Everything in the folder but the driver's lock (the driver deleting it holds it)."""
    fs, path = experiment_filesystem(exp)
    if fs.get_file_info(path).type == pa.fs.FileType.NotFound:
        return
    for entry in fs.get_file_info(pa.fs.FileSelector(path)):
        if entry.base_name == LOCK_FILE:
            continue
        if entry.type == pa.fs.FileType.Directory:
            fs.delete_dir(entry.path)
        else:
            fs.delete_file(entry.path)


def spec_fingerprint(spec: SweepSpec, legacy: bool = False) -> str:
    """What must not change between a sweep and its resumption: what changes a trial's result (the fixed
    training and data fields, the search space, the objective, the searcher and the scheduler). The run
    settings (num_samples: a sweep grows; max_concurrent, retries, checkpoints) and the resources may
    change (tuner/sweep/grow.py). `legacy`: the fingerprint sweeps began with before 2026-12-06, which
    held them too; such a sweep resumes unchanged, and grows once its state holds the new one."""
    essentials = {
        "base": spec.base_config.to_dict(), "search": [asdict(p) for p in spec.search],
        "objective": asdict(spec.objective), "searcher": asdict(spec.searcher), "scheduler": asdict(spec.scheduler),
    }
    if legacy:
        essentials.update(resources=asdict(spec.resources),
                          run={k: v for k, v in asdict(spec.run).items() if k != "min_free_mb"})
    return hashlib.sha256(json.dumps(essentials, sort_keys=True, default=str).encode()).hexdigest()


def process_start(pid: int) -> str | None:
    """When process `pid` started (Linux clock ticks since boot), so a reused pid is not taken for the driver."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class DriverLock:
    """One sweep, one driver: a lock file in the experiment folder, renewed while the driver runs.

    A second launch of a running sweep is refused (ExperimentError naming the driver's host and
    process). A lock left by a driver that died does not block the rerun that resumes it: on the
    same host a holder whose process is gone is dead at once; from another host, a lock not renewed
    for STALE_SECONDS is. On a local folder the lock is created exclusively (O_EXCL); on s3:// or
    gs:// it is written and read back, which is as close as object stores allow.
    """

    def __init__(self, exp: str):
        self.exp = exp
        self.me = {"host": socket.gethostname(), "pid": os.getpid(), "process_start": process_start(os.getpid()),
                   "started": time.time(), "command": " ".join(sys.argv)}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._made: list[Path] = []  # folders the lock created (a sweep refused before it started leaves none)

    def _holder(self) -> dict[str, Any] | None:
        try:
            holder = _read_json(self.exp, LOCK_FILE)
        except ValueError:
            return {}  # half a lock: whoever wrote it is no longer writing
        if holder is MISSING:
            return None
        return holder if isinstance(holder, dict) else {}

    def _mine(self, holder: dict[str, Any] | None) -> bool:
        return bool(holder) and holder.get("pid") == self.me["pid"] and holder.get("host") == self.me["host"]

    def _alive(self, holder: dict[str, Any]) -> bool:
        if holder.get("host") == self.me["host"] and isinstance(holder.get("pid"), int):
            start = process_start(holder["pid"])
            return start is not None and start == holder.get("process_start", start)
        return time.time() - float(holder.get("heartbeat", 0)) < STALE_SECONDS

    def _create(self) -> bool:
        """Write our lock unless another appeared first."""
        doc = {**self.me, "heartbeat": time.time()}
        if "://" not in self.exp:
            folder = Path(self.exp)
            self._made = [d for d in [folder, *folder.parents] if not d.exists()]  # removed on release when left empty
            folder.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(folder / LOCK_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f)
            return True
        _write_json(self.exp, LOCK_FILE, doc)
        time.sleep(1.0)
        return self._mine(self._holder())

    def acquire(self) -> None:
        for _ in range(3):
            holder = self._holder()
            if holder and self._alive(holder):
                since = time.strftime("%H:%M:%S", time.localtime(float(holder.get("started", 0))))
                raise ExperimentError(
                    f"{self.exp} is being run by another driver (process {holder.get('pid')} on host {holder.get('host')}, "
                    f"since {since}); wait for it to finish, or stop it (kill {holder.get('pid')}) and rerun this command "
                    f"to resume. A driver that died leaves no obstacle: its lock is taken over at once on its own host, "
                    f"after {STALE_SECONDS:.0f} s elsewhere")
            if holder is not None:
                print(f"tuner: taking over the lock of a driver that is gone (process {holder.get('pid')} on host "
                      f"{holder.get('host')})", flush=True)
                self._remove()
            if self._create():
                self._thread = threading.Thread(target=self._renew, name="tuner-driver-lock", daemon=True)
                self._thread.start()
                return
        raise ExperimentError(f"{self.exp}: another driver took the sweep's lock at the same moment; rerun this command")

    def _renew(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(OSError):  # a full disk or a lost mount: the next renewal tries again
                _write_json(self.exp, LOCK_FILE, {**self.me, "heartbeat": time.time()})

    def _remove(self) -> None:
        fs, path = experiment_filesystem(self.exp)
        with contextlib.suppress(OSError):  # FileNotFoundError included: gone already
            fs.delete_file(f"{path}/{LOCK_FILE}")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            if self._mine(self._holder()):
                self._remove()
            self._thread = None
        for folder in self._made:  # innermost first; a folder with anything in it stays
            with contextlib.suppress(OSError):
                folder.rmdir()

    def __enter__(self) -> DriverLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def running_driver(exp: str) -> dict[str, Any] | None:
    """The lock of the driver running the sweep in `exp` (host, pid, heartbeat), or None when none is alive."""
    lock = DriverLock(exp)
    holder = lock._holder()
    return holder if holder and lock._alive(holder) else None


def request_stop(exp: str, requester: dict[str, Any]) -> None:
    """Ask the driver running `exp` to stop, as SIGTERM would (it polls for this file: tuner/sweep/stop.py)."""
    _write_json(exp, STOP_REQUEST_FILE, requester)


def take_stop_request(exp: str) -> dict[str, Any] | None:
    """The stop request waiting in `exp`, removed as it is taken (None: there is none)."""
    try:
        doc = _read_json(exp, STOP_REQUEST_FILE)
    except ValueError:
        doc = {}  # half written: a request all the same
    if doc is MISSING:
        return None
    fs, path = experiment_filesystem(exp)
    with contextlib.suppress(OSError):
        fs.delete_file(f"{path}/{STOP_REQUEST_FILE}")
    return doc if isinstance(doc, dict) else {}


def experiment_location(target: str) -> str:
    """The experiment folder (or URI) of a spec file, a folder, a URI, or a sweep name under ./experiments,
    running or not (the commands that act on a live sweep: tuner.stop, tuner.status)."""
    if "://" in target:
        return target
    path = Path(target).expanduser()
    if path.suffix in (".yaml", ".yml") and path.is_file():
        from tuner.spec.schema import SpecError, load_spec

        try:
            return experiment_uri(load_spec(path))
        except SpecError as exc:
            raise ExperimentError(str(exc)) from None
    for candidate in (path, Path(DEFAULT_STORAGE) / target):
        if candidate.is_dir():
            return str(candidate.resolve())
    raise ExperimentError(f"no sweep folder at {path} or {DEFAULT_STORAGE}/{target}; pass the experiment folder, its spec "
                          "file, or the name of a sweep launched from this folder")


def locate_experiment(target: str) -> Path:
    """The local folder of a sweep that has a trials table, from its folder, its spec file, or its name
    under ./experiments; ExperimentError naming what was looked at."""

    path = Path(target).expanduser()
    candidates = []
    if path.suffix in (".yaml", ".yml") and path.is_file():
        from tuner.spec.schema import load_spec

        exp = experiment_uri(load_spec(path))
        if "://" in exp:
            raise ExperimentError(f"{target}: the sweep lives at {exp}; copy it locally and pass the folder")
        candidates.append(Path(exp))
    else:
        candidates += [path, Path(DEFAULT_STORAGE) / target]
    for c in candidates:
        if (c / TABLE_FILE).is_file():
            return c.resolve()
    raise ExperimentError(f"no finished sweep at {' or '.join(str(c) for c in candidates)} (no {TABLE_FILE}); "
                          "pass the experiment folder, the spec file, or the name of a sweep run from this folder")
