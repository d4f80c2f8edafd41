"""A trial trained data-parallel by a group of Ray Train workers (resources.train_workers > 1).

The trial's own process (the Ray Tune function, tuner/trial/trainable.py) runs a TorchTrainer whose
workers each hold `resources.cpu` cores and `resources.gpu` GPUs. Ray Train places them, on one node or
across several, and sets up torch.distributed (NCCL on GPUs, gloo on CPUs); each worker runs
trainables' loop on its part of every global batch (trainables/distributed.py). Rank 0 hands each
epoch's metrics, with the checkpoint when one is due, to the trial's process through a Ray queue, and
that process reports them to Ray Tune and MLflow as a one-process trial does: the trial is one Tune
trial, one MLflow run, one row, one registered model.

Faults: Ray Train does not retry (its max_failures is 0). A lost worker or node fails the group, the
trial fails, and Ray Tune restarts it from its last checkpoint within run.max_failures, as any trial;
every worker resumes from that checkpoint. When Ray Tune stops the trial (ASHA), its process ends and
the group it owns ends with it.
"""

from __future__ import annotations

import dataclasses
import io
import threading
from collections.abc import Callable
from typing import Any

import ray
import torch

from trainables.config import TrainConfig

QUEUE_POLL_SECONDS = 1.0  # how often the trial's process looks whether the group has ended while it waits
# What the trial's own process asks of Ray: no CPU (its train workers hold the cores: two workers of one
# core fill a 2-core machine), but Ray Tune refuses an empty request, and the process does hold a
# checkpoint's bytes on their way to storage (a ResNet-50's weights and momentum are about 200 MB).
RELAY_RESOURCES = {"cpu": 0, "gpu": 0, "memory": 512 * 2**20}


def to_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def from_bytes(data: bytes) -> dict:
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _worker_loop(loop_config: dict[str, Any]) -> None:
    """One train worker: the run on its shard; rank 0 passes each epoch on to the trial's process."""
    import ray.train
    import ray.train.torch

    from trainables.distributed import Shard
    from trainables.loop import train

    shard = Shard.current()  # Ray Train set up the process group
    config: TrainConfig = loop_config["config"]
    if torch.cuda.is_available() and loop_config["gpu"] > 0:
        config = dataclasses.replace(config, device=str(ray.train.torch.get_device()))
    torch.set_num_threads(max(1, int(loop_config["cpu"])))
    resume = from_bytes(loop_config["resume"]) if loop_config["resume"] is not None else None
    due: Callable[[dict], bool] = loop_config["checkpoint_due"]
    epochs = loop_config["epochs"]
    node_id = ray.get_runtime_context().get_node_id()

    def report(metrics: dict, state: Any) -> None:
        if shard.leader:
            state_bytes = to_bytes(state.checkpoint()) if due(metrics) else None
            # put returns once the queue's actor holds the item: nothing of it lives only in this process
            epochs.put(({**metrics, "node_id": node_id}, state_bytes))

    train(config, report, resume=resume, shard=shard)


def train_on_group(config: TrainConfig, resume: dict | None, train_workers: int, cpu: float, gpu: float,
                   storage: str, checkpoint_due: Callable[[dict], bool],
                   report: Callable[[dict, Callable[[], dict]], None]) -> None:
    """Train `config` on `train_workers` Ray Train workers; `report(metrics, checkpoint)` for each epoch, in
    this process, with `checkpoint()` giving rank 0's state (called only where `checkpoint_due`)."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.util.queue import Empty, Queue

    epochs = Queue(maxsize=1, actor_options={"num_cpus": 0})
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={"config": config, "resume": to_bytes(resume) if resume is not None else None,
                           "cpu": cpu, "gpu": gpu, "epochs": epochs, "checkpoint_due": checkpoint_due},
        scaling_config=ScalingConfig(num_workers=train_workers, use_gpu=gpu > 0,
                                     resources_per_worker={"CPU": cpu, **({"GPU": gpu} if gpu > 0 else {})}),
        run_config=RunConfig(name="train_group", storage_path=storage, failure_config=FailureConfig(max_failures=0)),
    )
    failure: list[BaseException] = []

    def fit() -> None:
        try:
            trainer.fit()
        except BaseException as exc:  # noqa: BLE001 - handed to the trial's thread, which raises it
            failure.append(exc)

    group = threading.Thread(target=fit, name="train-group", daemon=True)
    group.start()
    try:
        while group.is_alive() or not epochs.empty():
            try:
                metrics, state_bytes = epochs.get(timeout=QUEUE_POLL_SECONDS)
            except Empty:
                continue
            report(metrics, lambda data=state_bytes: from_bytes(data))
        if failure:
            raise failure[0]
    finally:
        ray.kill(epochs.actor)
