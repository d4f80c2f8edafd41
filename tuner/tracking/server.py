"""The MLflow tracking store: where it is, whether it answers, and patient calls to it.

Tracking URI: the spec's `tracking.uri`, else MLFLOW_TRACKING_URI, else `sqlite:///<cwd>/mlflow.db`
(absolute, because Ray runs trials in other working directories). `retry` rides out a tracking
server that restarts, or an SQLite file locked by a concurrent trial, retrying only transient
failures (TUNER_MLFLOW_PATIENCE_S, 300 s by default).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

# Fail fast inside mlflow's HTTP client; retry() does the patient retrying (and callers keep the data).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


def resolve_tracking_uri(spec_uri: str | None) -> str:
    uri = spec_uri or os.environ.get("MLFLOW_TRACKING_URI")
    return uri or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


class TrackingUnreachable(RuntimeError):
    """The tracking store cannot be used (checked before a sweep starts; raised when it stays down)."""


class TrackingStoreDamaged(TrackingUnreachable):
    """A local tracking file that is not a readable database: the message says what to do."""


def check_reachable(uri: str, timeout: float = 10.0) -> None:
    """Raise TrackingUnreachable when the tracking store cannot be used (before any trial starts)."""
    if uri.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as resp:
                if resp.status != 200:
                    raise TrackingUnreachable(f"{uri}/health answered HTTP {resp.status}")
        except (urllib.error.URLError, OSError) as exc:
            raise TrackingUnreachable(f"cannot reach the MLflow tracking server at {uri} ({exc})") from None
        _check_api(uri)
    elif uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
            raise TrackingUnreachable(f"the folder of the SQLite tracking file {uri} is missing or not writable")
        problem = sqlite_damage(path)
        if problem:
            raise TrackingStoreDamaged(f"{path} is damaged ({problem}); it holds your MLflow runs, so move it aside rather "
                                      "than delete it (and restore a backup if you have one)")


def _check_api(uri: str) -> None:
    """One real API call: /health answers even where the API refuses this client (MLflow 3's Host-header
    guard answers 403 to a server name it was not given with --allowed-hosts)."""
    from mlflow.exceptions import MlflowException

    try:
        tracking_client(uri).search_experiments(max_results=1)
    except MlflowException as exc:
        text = str(exc)
        hint = ""
        if "Invalid Host header" in text:
            host = uri.split("://", 1)[1].split("/", 1)[0]
            hint = f"; start `mlflow server` with --allowed-hosts naming {host} (MLflow 3 refuses Host names it was not given)"
        raise TrackingUnreachable(f"the MLflow server at {uri} answers but refuses the tracking API "
                                  f"({text.splitlines()[0][:200]}){hint}") from None


def prepare_store(uri: str) -> None:
    """Create (or check) a local SQLite store's schema once, under an exclusive lock on its folder, so that
    two sweeps that first use the same new file at the same moment do not both create its tables (one
    of them failed with `table ... already exists`). Other stores are created by their server."""
    if not uri.startswith("sqlite:///"):
        return
    import fcntl

    folder = Path(uri[len("sqlite:///"):]).parent
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the other launch waits here until the schema is whole
        retry(lambda: tracking_client(uri).search_experiments(max_results=1))  # makes the store, with its tables
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def sqlite_damage(path: Path) -> str | None:
    """What is wrong with an SQLite file, or None when it reads (an absent or empty file is a new store)."""
    import sqlite3

    if not path.is_file() or path.stat().st_size == 0:
        return None
    try:
        # Read-write (the file exists: nothing is created): a process killed mid-transaction (a SIGKILLed
        # driver or trial) leaves a hot journal, which SQLite rolls back on the next open, and that needs
        # write access; read-only, that store read as 'attempt to write a readonly database' (CI, 2026-12-06).
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=30)) as db:
            verdict = db.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None if verdict == "ok" else verdict


def tracking_client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


PATIENCE_SECONDS = float(os.environ.get("TUNER_MLFLOW_PATIENCE_S", "300"))


TRANSIENT_MLFLOW_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "DEADLINE_EXCEEDED"}


def transient(exc: BaseException) -> bool:
    """Worth retrying: the server unreachable or busy, or an SQLite file locked by another trial."""
    if isinstance(exc, (OSError, TimeoutError)):
        return True
    if type(exc).__name__ in ("OperationalError", "ConnectionError", "Timeout", "ChunkedEncodingError"):
        return True
    return getattr(exc, "error_code", None) in TRANSIENT_MLFLOW_CODES


def retry(fn, patience: float | None = None, first_wait: float = 0.5, max_wait: float = 10.0):
    """Call fn until it succeeds or `patience` seconds have passed (exponential back-off); then re-raise.

    Only transient failures are retried; a programming or request error raises at once. The default
    patience (PATIENCE_SECONDS: TUNER_MLFLOW_PATIENCE_S, 300 s) rides out a tracking-server restart.
    """
    deadline = time.time() + (PATIENCE_SECONDS if patience is None else patience)
    wait = first_wait
    while True:
        try:
            return fn()
        except Exception as exc:
            if not transient(exc) or time.time() + wait > deadline:
                raise
            time.sleep(wait)
            wait = min(wait * 2, max_wait)
