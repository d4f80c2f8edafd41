"""The MLflow tracking store: where it is, whether it answers, and patient calls to it.

Tracking URI: the spec's `tracking.uri`, else MLFLOW_TRACKING_URI, else `sqlite:///<cwd>/mlflow.db`
(absolute, because Ray runs trials in other working directories). `retry` rides out a tracking
server that restarts, or an SQLite file locked by a concurrent trial, retrying only transient
failures (TUNER_MLFLOW_PATIENCE_S, 300 s by default).
"""

from __future__ import annotations

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
    elif uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///"):]).parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise TrackingUnreachable(f"the folder of the SQLite tracking file {uri} is missing or not writable")


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
