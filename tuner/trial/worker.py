"""Per-device workers: one Ray actor per GPU (or per `resources.cpu` CPU cores) that trains up to
`resources.trials_per_worker` trials at once, each still its own Ray Tune trial.

    workers = start_workers(spec, cluster, tag)           # the driver, before Ray Tune starts
    train_on_worker(workers.names, trial_id, config, resume, checkpoint_every, report)   # in a trial

A trial hands its configuration (and its checkpoint, when it resumes) to a worker with a free slot,
then asks for its epochs one at a time and reports each as its own: its MLflow run, checkpoints,
trials.parquet row and ASHA decisions stay the trial's, so Optuna and the scheduler see trials as
ever. The worker's one training thread runs rounds: one epoch of every member whose trial is
waiting for one (trainables.members.run_epoch, with the spec's strategy). Members join and leave
between rounds: a trial that Ray Tune stops asks for no more epochs and leaves at once (its
`tune.report` raises SystemExit, and the `finally` below says so), freeing its slot for the next
pending trial; a member that joins starts at its own epoch 0 (or its checkpoint's).

Faults: a trial whose process died is evicted once its slot is wanted (STALE_SECONDS without a
request) or replaced at once by its retry, which joins under the same trial id. A worker process
that dies fails its trials' calls; Ray Tune retries them from their checkpoints (run.max_failures)
and Ray restarts the worker (max_restarts). A driver that dies takes its workers with it; the rerun
starts new ones, and every trial resumes from its checkpoint.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray
import torch

from trainables.config import TrainConfig
from trainables.data.datasets import cached_long_tailed, data_key
from trainables.device import resolve_device
from trainables.loop import epoch_batches, on_device
from trainables.members import Member, run_epoch
from trainables.names import RUNNING

WORKER_PREFIX = "tuner-worker"
TRIAL_CPU = 0.01  # what each trial's own process asks of Ray: it relays epochs and logs to MLflow; the worker trains
STALE_SECONDS = 60.0  # a member whose trial has not asked for an epoch this long is gone (its process died)
GATHER_SECONDS = 0.5  # fused: how long a round waits for members whose trials are about to ask
MEMORY_MARGIN = 1.25  # K members need K times one member's measured peak, and this much more
CALL_THREADS = 512  # at most this many trials' calls wait in one worker at once (each waiting call holds a thread)


class WorkerError(RuntimeError):
    """What a worker could not do (a configuration it cannot build, a member it does not hold)."""


@dataclass
class _Slot:
    """A trial's place in a worker; `member` is built by the training thread."""

    config: TrainConfig  # checked where the trial resolved it (tuner/spec/space.py), sent across Ray as itself
    resume: dict | None
    checkpoint_every: int
    member: Member | None = None
    wants_epoch: bool = False
    expected: bool = True  # its trial is about to ask for an epoch (a fused round waits for it)
    result: tuple | None = None
    error: str | None = None
    last_seen: float = field(default_factory=time.time)


def _to_cpu(value: Any) -> Any:
    """A checkpoint's tensors moved to the CPU (they travel through Ray's object store to the trial)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value


def _rss_bytes() -> int:
    """This process's resident memory now (its peak, ru_maxrss, may have been reached before a member existed)."""
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports kilobytes


def _tensor_bytes(member: Member) -> int:
    """What a member's own tensors take: weights, their gradients and momentum, and the buffers."""
    params = sum(p.numel() * p.element_size() for p in member.run.model.parameters())
    return 3 * params + sum(b.numel() * b.element_size() for b in member.run.model.buffers())


def _available_memory_bytes() -> int:
    with contextlib.suppress(OSError), open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


class TrialWorker:
    """The Ray actor (made remote by start_workers). Every call but the training runs in Ray's call
    threads; all torch work runs in one training thread, whose random state the members swap."""

    def __init__(self, capacity: int, strategy: str, threads: int):
        torch.set_num_threads(max(1, threads))
        self.capacity, self.strategy = capacity, strategy
        self.cond = threading.Condition()
        self.slots: dict[str, _Slot] = {}
        self.jobs: list[tuple[Callable[[], Any], dict]] = []  # torch work the training thread runs for a caller
        self.data: dict[tuple, Any] = {}  # one device copy of each dataset its members use
        self.thread = threading.Thread(target=self._train_forever, name="tuner-worker-training", daemon=True)
        self.thread.start()

    # -- what trials and the driver call ------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(), "capacity": self.capacity,
                "strategy": self.strategy, "cuda": torch.cuda.is_available()}

    def check_capacity(self, config: TrainConfig) -> dict[str, Any]:
        """One member of `config` built and stepped here: its measured memory, and whether `capacity` fit."""
        return self._run_job(lambda: self._measure(config))

    def join(self, trial_id: str, config: TrainConfig, resume: dict | None, checkpoint_every: int) -> bool:
        """Take the trial as a member (its retry replaces it); False when every slot is taken. The member
        is built between rounds; a configuration that cannot be built fails the trial's first next_epoch."""
        with self.cond:
            if trial_id not in self.slots and len(self.slots) >= self.capacity:
                self._evict_stale()
                if len(self.slots) >= self.capacity:
                    return False
            self.slots[trial_id] = _Slot(config, resume, checkpoint_every)
            self.cond.notify_all()
            return True

    def next_epoch(self, trial_id: str) -> tuple[dict[str, Any], dict | None]:
        """(the member's next epoch's metrics, its checkpoint when one is due), once its round has run."""
        with self.cond:
            slot = self.slots.get(trial_id)
            if slot is None:
                raise WorkerError(f"trial {trial_id} is not a member of this worker (evicted, or the worker restarted)")
            slot.wants_epoch, slot.expected, slot.result, slot.last_seen = True, False, None, time.time()
            self.cond.notify_all()
            while slot.result is None and slot.error is None and self.slots.get(trial_id) is slot:
                self.cond.wait()
            if self.slots.get(trial_id) is not slot:
                raise WorkerError(f"trial {trial_id} left this worker while it waited")
            if slot.error is not None:
                self.slots.pop(trial_id, None)
                raise WorkerError(slot.error)
            result, slot.result = slot.result, None
            slot.expected, slot.last_seen = True, time.time()
            return result

    def leave(self, trial_id: str) -> None:
        with self.cond:
            self.slots.pop(trial_id, None)
            self.cond.notify_all()

    def members(self) -> list[str]:
        with self.cond:
            return list(self.slots)

    # -- the training thread --------------------------------------------------------------------------

    def _run_job(self, work: Callable[[], Any]) -> Any:
        box: dict[str, Any] = {}
        with self.cond:
            self.jobs.append((work, box))
            self.cond.notify_all()
            while "result" not in box and "error" not in box:
                self.cond.wait()
        if "error" in box:
            raise WorkerError(box["error"])
        return box["result"]

    def _evict_stale(self) -> None:
        now = time.time()
        for trial_id, slot in list(self.slots.items()):
            if not slot.wants_epoch and now - slot.last_seen > STALE_SECONDS:
                del self.slots[trial_id]

    def _train_forever(self) -> None:
        while True:
            with self.cond:
                while not self.jobs and not self._unbuilt() and not self._waiting():
                    self.cond.wait()
                jobs, self.jobs = self.jobs, []
                unbuilt = self._unbuilt()
            for work, box in jobs:
                try:
                    box["result"] = work()
                except Exception as exc:  # noqa: BLE001 - handed to the caller, who raises it
                    box["error"] = f"{type(exc).__name__}: {exc}"
            for trial_id, slot in unbuilt:
                self._build(trial_id, slot)
            with self.cond:
                self.cond.notify_all()
                round_ = self._gather()
            if round_:
                self._run_round(round_)

    def _unbuilt(self) -> list[tuple[str, _Slot]]:
        return [(t, s) for t, s in self.slots.items() if s.member is None and s.error is None]

    def _waiting(self) -> list[tuple[str, _Slot]]:
        return [(t, s) for t, s in self.slots.items() if s.wants_epoch and s.member is not None and s.error is None]

    def _gather(self) -> list[tuple[str, _Slot]]:
        """The members whose trials wait for an epoch; fused rounds wait a moment for the rest (the cond is held)."""
        if self.strategy == "fused" and self._waiting():
            deadline = time.time() + GATHER_SECONDS
            while time.time() < deadline and any(
                    s.expected and s.member is not None and time.time() - s.last_seen < STALE_SECONDS
                    for s in self.slots.values()):
                self.cond.wait(timeout=max(deadline - time.time(), 0.01))
        round_ = self._waiting()
        for _, slot in round_:
            slot.wants_epoch = False
        return round_

    def _dataset(self, config: TrainConfig) -> Any:
        key = data_key(config)
        if key not in self.data:
            self.data[key] = on_device(cached_long_tailed(config), resolve_device(config.device))
        return self.data[key]

    def _build(self, trial_id: str, slot: _Slot) -> None:
        try:
            member = Member(trial_id, slot.config, self._dataset(slot.config), slot.resume)
            error = None
        except Exception as exc:  # noqa: BLE001 - the joining trial raises it
            member, error = None, f"{type(exc).__name__}: {exc}"
        with self.cond:
            slot.member, slot.error, slot.resume = member, error, None
            self.cond.notify_all()

    def _run_round(self, round_: list[tuple[str, _Slot]]) -> None:
        members = [slot.member for _, slot in round_]
        try:
            results = run_epoch(members, self.strategy)
            info = self.describe()
            packed = {}
            for trial_id, slot in round_:
                metrics = {**results[trial_id], "worker_pid": info["pid"], "node_id": info["node_id"]}
                due = metrics["status"] != RUNNING or metrics["epoch"] % slot.checkpoint_every == 0
                packed[trial_id] = (metrics, _to_cpu(slot.member.checkpoint()) if due else None)
            error = None
        except Exception:  # noqa: BLE001 - every member of the round fails; their trials retry from checkpoints
            packed, error = {}, traceback.format_exc(limit=8)
        with self.cond:
            for trial_id, slot in round_:
                if error is not None:
                    slot.error = error
                else:
                    slot.result = packed[trial_id]
            self.cond.notify_all()

    def _measure(self, config: TrainConfig) -> dict[str, Any]:
        """Build one member of `config` and train one batch: its peak memory on this worker's device."""
        device = resolve_device(config.device)
        data = self._dataset(config)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            before = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
        else:
            before = _rss_bytes()
        member = Member("capacity-check", config, data)
        with member.own_random_state():
            batch = next(epoch_batches(config, member.run.data, member.run.augment))
            member.run.step(*batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            per_member = torch.cuda.max_memory_allocated(device) - before
            free = torch.cuda.mem_get_info(device)[0]
            where = torch.cuda.get_device_name(device)
        else:  # the allocator keeps the step's pages: resident memory after it is about its peak
            per_member = max(_rss_bytes() - before, _tensor_bytes(member))
            free = _available_memory_bytes()
            where = "this node's memory"
        del member
        need = int(self.capacity * per_member * MEMORY_MARGIN)
        return {"per_member_bytes": per_member, "free_bytes": free, "need_bytes": need, "fits": need <= free,
                "device": where, "fits_members": int(free // max(per_member * MEMORY_MARGIN, 1))}


@dataclass
class Workers:
    names: list[str]
    handles: list[Any]  # the driver keeps them: a named actor lives as long as a handle to it does
    capacity: int
    described: list[dict[str, Any]]

    @property
    def slots(self) -> int:
        return len(self.names) * self.capacity


class CapacityError(RuntimeError):
    """trials_per_worker does not fit a worker's device memory (measured): nothing has started."""


def worker_count(spec: Any, cluster: dict[str, Any]) -> int:
    """One worker per GPU (resources.gpu: 1), else one per resources.cpu CPU cores; no more than the trials need."""
    res, k = spec.resources, spec.resources.trials_per_worker
    fits = int(cluster["gpus"]) if res.gpu > 0 else int(cluster["cpus"] // res.cpu)
    wanted = math.ceil(min(spec.run.num_samples, spec.run.max_concurrent or spec.run.num_samples) / k)
    return max(1, min(fits, wanted))


def start_workers(spec: Any, cluster: dict[str, Any], tag: str) -> Workers:
    """The sweep's workers, started and checked (CapacityError when K members do not fit one's memory)."""
    res = spec.resources
    k = res.trials_per_worker
    count = worker_count(spec, cluster)
    options = {"num_cpus": max(res.cpu - k * TRIAL_CPU, 0.0), "num_gpus": 1 if res.gpu > 0 else 0}
    remote = ray.remote(TrialWorker)
    names = [f"{WORKER_PREFIX}-{spec.name}-{tag}-{i}" for i in range(count)]
    handles = [remote.options(name=n, max_restarts=-1, max_task_retries=0, max_concurrency=min(k, CALL_THREADS) + 8, **options)
               .remote(k, res.strategy, int(res.cpu)) for n in names]
    described = ray.get([h.describe.remote() for h in handles])
    config = spec.base_config  # checked when the spec was read
    for name, check in zip(names, ray.get([h.check_capacity.remote(config) for h in handles])):
        if not check["fits"]:
            raise CapacityError(
                f"resources.trials_per_worker: {k} members need about {check['need_bytes'] / 2**30:.2f} GiB on "
                f"{check['device']} (one measured at {check['per_member_bytes'] / 2**30:.3f} GiB, plus "
                f"{MEMORY_MARGIN - 1:.0%}), but {check['free_bytes'] / 2**30:.2f} GiB is free (worker {name}); at most "
                f"{check['fits_members']} fit: lower trials_per_worker")
    return Workers(names, handles, k, described)


JOIN_SECONDS = 10.0  # a join is answered at once; a worker that does not answer in this long is restarting or gone


def join_worker(names: list[str], trial_id: str, config: TrainConfig, resume: dict | None, checkpoint_every: int,
                poll_seconds: float = 1.0) -> Any:
    """The handle of a worker that took the trial (waiting while every slot is taken; a worker that is
    restarting, or whose node is gone, is passed over)."""
    from ray.exceptions import GetTimeoutError, RayActorError

    while True:
        for name in names:
            try:
                handle = ray.get_actor(name)
                if ray.get(handle.join.remote(trial_id, config, resume, checkpoint_every), timeout=JOIN_SECONDS):
                    return handle
            except (ValueError, GetTimeoutError, RayActorError):
                continue  # not there, restarting or dead: another may take the trial
        time.sleep(poll_seconds)


def train_on_worker(names: list[str], trial_id: str, config: TrainConfig, resume: dict | None, checkpoint_every: int,
                    report: Callable[[dict, Callable[[], dict]], None]) -> None:
    """The trial's side: join a worker, report each epoch it trains for this trial, leave when done or stopped."""
    worker = join_worker(names, trial_id, config, resume, checkpoint_every)
    try:
        while True:
            metrics, checkpoint = ray.get(worker.next_epoch.remote(trial_id))
            report(metrics, lambda checkpoint=checkpoint: checkpoint)
            if metrics["status"] != RUNNING or metrics["epoch"] >= config.epochs:
                return
    finally:  # also when Ray Tune stops the trial: its tune.report raises SystemExit
        with contextlib.suppress(Exception):  # the worker is gone: its slot went with it
            worker.leave.remote(trial_id)
