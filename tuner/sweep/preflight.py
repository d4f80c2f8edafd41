"""Checks before anything starts: first the environment (tracking server, data), then the Ray cluster.

A failed check is a PreflightError: one message naming what is wrong and how to fix it, exit 2
from the launcher, and nothing started.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from tuner.spec.schema import SweepSpec
from tuner.tracking import TrackingStoreDamaged, TrackingUnreachable, check_reachable, prepare_store

SHARED_STORAGE_ENV = "TUNER_SHARED_STORAGE"  # 1: the local storage path is the same folder on every node (a shared volume)
NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "fuse", "ceph", "lustre", "gpfs", "glusterfs", "beegfs", "9p")


class PreflightError(RuntimeError):
    """Something outside the spec makes the sweep impossible; nothing has started."""


RAY_CONNECT_SECONDS = float(os.environ.get("TUNER_RAY_CONNECT_S", "20"))  # a cluster that is starting gets this long
CURRENT_CLUSTER = Path("/tmp/ray/ray_current_cluster")  # where `ray start` on this machine writes its address


def ray_endpoint(address: str) -> tuple[str, int]:
    """(host, port) a Ray address connects to: host:port (the GCS), ray://host:port (Ray Client), auto
    (the cluster `ray start` made on this machine); PreflightError for one that names no port."""
    if address == "auto":
        try:
            address = CURRENT_CLUSTER.read_text().strip()
        except OSError:
            raise PreflightError(f"--address auto: no Ray cluster was started on this machine ({CURRENT_CLUSTER} is "
                                 "missing); start one with `ray start --head`, or give its address") from None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise PreflightError(f"--address {address!r}: expected HOST:PORT (the head's GCS, 6379 by default), "
                             "ray://HOST:PORT (Ray Client, 10001) or auto")
    return host, int(port)


def check_ray_address(address: str | None, wait: float = RAY_CONNECT_SECONDS) -> None:
    """A cluster address must answer within `wait` seconds; Ray itself would retry for minutes."""
    if address in (None, "local"):
        return
    host, port = ray_endpoint(address)
    deadline, last = time.monotonic() + wait, None
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(3.0, max(wait, 0.1))):
                return
        except OSError as exc:
            last = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    why = "connection refused" if isinstance(last, ConnectionRefusedError) else (
        "no answer" if isinstance(last, (TimeoutError, socket.timeout)) else str(last))
    raise PreflightError(f"--address {address}: nothing answered at {host}:{port} for {wait:.0f} s ({why}); check that "
                         "the Ray head is up (`ray status` there), the address and port (GCS 6379, ray:// 10001), and "
                         "that no firewall is in the way")



def preflight_local(spec: SweepSpec, tracking_uri: str, address: str | None) -> None:
    check_ray_address(address)
    cfg = spec.base_config
    # The data first: a bad image list is found before the tracking store is touched (or made).
    if address is None and cfg.dataset != "synthetic":
        from trainables.data.sources import DataNotFoundError, load_cifar
        from trainables.data.streamed import load_streamed

        try:
            if cfg.streamed:  # every listed file exists, and a sample of each split decodes
                load_streamed(cfg)
            else:
                load_cifar(cfg.dataset, cfg.data_dir, cfg.download)  # also fills the decode cache the trials use
        except DataNotFoundError as exc:
            raise PreflightError(f"data: {exc}") from None
    try:
        check_reachable(tracking_uri)
        prepare_store(tracking_uri)
    except TrackingStoreDamaged as exc:
        raise PreflightError(f"tracking: {exc}; then rerun, or set tracking.uri / MLFLOW_TRACKING_URI to another store") from None
    except TrackingUnreachable as exc:
        raise PreflightError(f"tracking: {exc}; start the server, fix tracking.uri / MLFLOW_TRACKING_URI, "
                             "or unset both to use sqlite:///mlflow.db") from None


def mount_type(path: Path) -> str | None:
    """File-system type of the mount holding `path` (Linux), or None when unknown."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return None
    best = max((m for m in mounts if len(m) > 2 and str(path).startswith(m[1])), key=lambda m: len(m[1]), default=None)
    return best[2] if best else None


def cluster_problems(spec: SweepSpec, tracking_uri: str, exp: str, nodes: list[dict], resources: dict[str, float],
                     driver_ip: str, mount_type: str | None) -> list[str]:
    """What makes this sweep impossible on this Ray cluster (alive nodes as ray.nodes() lists them)."""
    gpus, cpus = resources.get("GPU", 0.0), resources.get("CPU", 0.0)
    res = spec.resources
    problems = []
    if res.gpu > 0 and gpus == 0:
        problems.append(f"resources.gpu: {res.gpu} GPU per trial asked for, but the Ray cluster has no GPU; "
                        "set resources.gpu: 0 to train on CPUs")
    elif res.gpu > gpus:
        problems.append(f"resources.gpu: {res.gpu} per trial, but the cluster has {gpus:g} GPUs")
    largest_node_cpus = max((n.get("Resources", {}).get("CPU", 0.0) for n in nodes), default=cpus)
    largest_node_gpus = max((n.get("Resources", {}).get("GPU", 0.0) for n in nodes), default=gpus)
    if res.cpu > largest_node_cpus:
        problems.append(f"resources.cpu: {res.cpu} per {'train worker' if res.data_parallel else 'trial'}, but the largest "
                        f"node has {largest_node_cpus:g} CPUs; trials would wait forever")
    if res.data_parallel:
        # A trial's train workers are placed together (Ray Train's placement group, spread over nodes as they fit).
        cpu_need, gpu_need = res.per_trial
        if 0 < gpus < gpu_need or res.gpu > largest_node_gpus > 0:
            problems.append(f"resources.train_workers: {res.train_workers} workers of {res.gpu:g} GPU each need {gpu_need:g} "
                            f"GPUs ({res.gpu:g} on one node), but the cluster has {gpus:g} (at most {largest_node_gpus:g} "
                            "on a node); the trial could never start: use fewer train workers or more GPUs")
        elif cpu_need > cpus:
            problems.append(f"resources.train_workers: {res.train_workers} workers of {res.cpu:g} CPUs each need "
                            f"{cpu_need:g} CPUs, but the cluster has {cpus:g}; the trial could never start: use fewer "
                            "train workers or a smaller resources.cpu")
    one_host = {n.get("NodeManagerAddress") for n in nodes} <= {driver_ip}  # every node on this machine
    if len(nodes) > 1 and not one_host:
        shared = os.environ.get(SHARED_STORAGE_ENV) == "1"
        if "://" not in exp and mount_type not in NETWORK_FILESYSTEMS and not shared:
            problems.append(f"run.storage_path: {len(nodes)} Ray nodes on several machines share no local folder; use "
                            f"s3://, gs:// or a network mount (--storage-path; this path is on {mount_type or 'an unknown file system'}), "
                            f"or set {SHARED_STORAGE_ENV}=1 when it is one volume every node mounts")
        if tracking_uri.startswith(("sqlite:", "file:")) or "://" not in tracking_uri:
            problems.append(f"tracking.uri: {tracking_uri} lives on one machine; a {len(nodes)}-node cluster needs an MLflow "
                            "tracking server (http://host:5000)")
    return problems


def preflight_cluster(spec: SweepSpec, tracking_uri: str, exp: str) -> dict[str, Any]:
    import ray
    from ray.util import get_node_ip_address

    resources = ray.cluster_resources()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    mount = None if "://" in exp else mount_type(Path(exp))
    problems = cluster_problems(spec, tracking_uri, exp, nodes, resources, get_node_ip_address(), mount)
    if problems:
        raise PreflightError("; ".join(problems))
    return {"nodes": len(nodes), "cpus": resources.get("CPU", 0.0), "gpus": resources.get("GPU", 0.0)}
