"""Log and register a winner (one trial's model, or an ensemble) so that it can be used as it is.

The model directory is written by mlflow.pytorch (pytorch flavor: `mlflow.pytorch.load_model`
returns the torch module) and its python_function flavor is pointed at
tuner/tracking/exit_classifier_pyfunc.py (`mlflow.pyfunc.load_model(...).predict(images)` returns class,
class name, confidence and exit). Both flavors take uint8 images (N, 32, 32, 3): normalisation
and the inference threshold live inside the model. The MLmodel metadata and the registered
version's tags carry the threshold, the class names, the preprocessing, the config and metrics.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from tuner.tracking import TrialTracking, retry, tracking_client

PYFUNC_LOADER = Path(__file__).with_name("exit_classifier_pyfunc.py")
PREPROCESSING = ("uint8 RGB images (N, 32, 32, 3), height-width-channel; inside the model: /255, then normalised "
                 "with mean (0.4914, 0.4822, 0.4465), std (0.2023, 0.1994, 0.2010)")
FILE_PREPROCESSING = ("images of any size: a list of image file paths, or of uint8 RGB (H, W, 3) arrays, or a (N, H, W, 3) "
                      "batch; inside the model: the short side resized to {resize}, a centre crop of {size}x{size}, /255, "
                      "then normalised with ImageNet's mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225)")


def preprocessing(config) -> str:
    """What the served model takes, in words (the MLmodel metadata)."""
    if not config.streamed:
        return PREPROCESSING
    from trainables.data.streamed import eval_size

    return FILE_PREPROCESSING.format(resize=eval_size(config.image_size), size=config.image_size)


def build_served(config_dict: dict[str, Any], state_path: Path, class_names: list[str] | None = None):
    """An ExitInference for the checkpoint at `state_path`, trained with `config_dict`."""
    from trainables.config import TrainConfig
    from trainables.inference import ExitInference
    from trainables.models.network import build_model

    config = TrainConfig.from_dict(config_dict)
    state = torch.load(state_path, weights_only=True, map_location="cpu")
    names = class_names or list(state.get("class_names", []))
    model = build_model(config, len(names) or None)
    model.load_state_dict(state["model"])
    # The threshold the run was evaluated at: chosen on the validation split when the config selects
    # it (ELF's line search over s), else the configured one.
    threshold = state.get("inference_threshold") or config.inference_exit_threshold
    return ExitInference(model, threshold, config.exit_confidence_scale, names,
                         config.image_size if config.streamed else None), config


def _signature(served: torch.nn.Module):
    """CIFAR models take (N, 32, 32, 3) uint8 tensors; a model of an image-file set takes images of any size
    (file paths or arrays), which no tensor schema describes: its input is left open."""
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    members = getattr(served, "members", None) or [served]
    any_size = getattr(members[0], "image_size", None) is not None
    return ModelSignature(
        inputs=None if any_size else Schema([TensorSpec(np.dtype(np.uint8), (-1, 32, 32, 3), "images")]),
        outputs=Schema([ColSpec("long", "predicted_class"), ColSpec("string", "class_name"),
                        ColSpec("float", "confidence"), ColSpec("long", "exit")]),
    )


def save_model_dir(served: torch.nn.Module, path: Path, num_classes: int, metadata: dict[str, Any]) -> None:
    import mlflow.pytorch
    from mlflow.models import Model

    import trainables

    mlflow.pytorch.save_model(
        served, str(path), signature=_signature(served), metadata=metadata,
        serialization_format="pickle",  # the exit choice is data-dependent: a pt2 trace cannot hold it
        code_paths=[str(Path(trainables.__file__).parent), str(PYFUNC_LOADER)],
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "numpy", "pandas"],
    )
    model = Model.load(str(path))
    pyfunc = model.flavors["python_function"]
    pyfunc["loader_module"] = PYFUNC_LOADER.stem
    for key in ("pickle_module_name", "config"):
        pyfunc.pop(key, None)
    model.save(str(path / "MLmodel"))


def log_and_register(tracking: TrialTracking, run_id: str, served: torch.nn.Module, num_classes: int,
                     model_name: str, metadata: dict[str, Any], tags: dict[str, str], artifact: str = "winner") -> dict[str, Any]:
    """Log the model as an MLflow logged model of run `run_id` and register it as a new version of `model_name`.

    A logged model (MLflow 3) whose source run is `run_id`, listed among that run's outputs, is what
    the UI's runs table shows in the run's Models column; registering it from `models:/MODEL_ID`
    makes the version point at the same run, so the run and the model's page lead to each other."""
    import logging

    import mlflow
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus

    logging.getLogger("mlflow.pytorch").setLevel(logging.ERROR)  # the pickle-format warning: chosen knowingly
    client = tracking_client(tracking.uri)
    experiment_id = retry(lambda: client.get_run(run_id)).info.experiment_id
    model = retry(lambda: client.create_logged_model(experiment_id, name=artifact, source_run_id=run_id, model_type="pytorch"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / artifact
        save_model_dir(served, path, num_classes, metadata)
        retry(lambda: client.log_model_artifacts(model.model_id, str(path)))
    retry(lambda: client.finalize_logged_model(model.model_id, LoggedModelStatus.READY))
    retry(lambda: client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)]))
    mlflow.set_tracking_uri(tracking.uri)
    version = retry(lambda: mlflow.register_model(f"models:/{model.model_id}", model_name, tags=tags))
    return version_record(model_name, version.version, run_id)


def version_record(model_name: str, version: int | str, run_id: str) -> dict[str, Any]:
    """A registered version as the sweep's summary and state keep it."""
    return {"model_uri": f"models:/{model_name}/{version}", "registered_model": model_name, "version": int(version),
            "run_id": run_id}


def winner_metadata(config: dict[str, Any], metrics: dict[str, Any], class_names: list[str], threshold: float | None,
                    preprocessing_text: str = PREPROCESSING) -> dict:
    return {
        "inference_exit_threshold": threshold, "class_names": class_names, "preprocessing": preprocessing_text,
        "config": config, "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
        "output": "predicted_class, class_name, confidence (probability at the exit taken), exit (0 = first)",
    }


def version_tags(sweep: str, config: dict[str, Any], metrics: dict[str, Any], extra: dict[str, str]) -> dict[str, str]:
    tags = {"sweep": sweep, "config": json.dumps(config)[:5000], **extra}
    tags.update({k: f"{v:.6g}" for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    return tags
