"""The MLflow pyfunc face of a registered winner (a loader module, shipped inside the model).

A winner is saved by mlflow.pytorch (so `mlflow.pytorch.load_model` returns the torch module, an
`ExitInference` or `ExitEnsemble` from trainables/inference.py) and its python_function flavor
points here, so that

    model = mlflow.pyfunc.load_model("models:/NAME/VERSION")
    model.predict(images)        # uint8 (N, 32, 32, 3) -> DataFrame (CIFAR)
    model.predict(["a.jpg", ...])  # an image-file set's model: paths or (H, W, 3) arrays of any size

returns, per image, the predicted class index and name, its confidence (the probability of the
exit it left at) and the exit used (0 = first; an ensemble gives the deepest exit its members used).
This file is copied into the model's code folder and imported standalone: it imports torch,
numpy, pandas and trainables (shipped beside it), never tuner.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch


class ExitClassifier:
    def __init__(self, served: torch.nn.Module):
        self.served = served.eval()

    def predict(self, model_input, params=None) -> pd.DataFrame:
        if isinstance(model_input, dict):  # MLflow passes named tensor inputs as {"images": array}
            model_input = model_input.get("images", next(iter(model_input.values())))
        members = getattr(self.served, "members", None) or [self.served]
        if getattr(members[0], "image_size", None) is not None:
            x = _images_of_any_size(model_input)  # an image-file set's model: its evaluation transform is inside
        else:
            images = model_input.to_numpy() if isinstance(model_input, pd.DataFrame) else np.asarray(model_input)
            x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
            if x.ndim != 4 or tuple(x.shape[1:]) != (32, 32, 3):
                raise ValueError(f"expected uint8 images of shape (N, 32, 32, 3), got {tuple(x.shape)}")
        classes, confidence, exits = self.served.predict(x)
        names = list(getattr(self.served, "class_names", []) or [])
        return pd.DataFrame({
            "predicted_class": classes.cpu().numpy().astype(np.int64),
            "class_name": [names[i] if i < len(names) else str(i) for i in classes.tolist()],
            "confidence": confidence.cpu().numpy().astype(np.float32),
            "exit": exits.cpu().numpy().astype(np.int64),
        })


def _images_of_any_size(model_input) -> list[torch.Tensor]:
    """uint8 (H, W, 3) tensors from a list of file paths (decoded as training decodes them: any format, RGB),
    a list of arrays, a (N, H, W, 3) batch, or a DataFrame column of paths."""
    from trainables.data.streamed import decode_rgb

    if isinstance(model_input, pd.DataFrame):
        model_input = model_input.iloc[:, 0].tolist()
    if isinstance(model_input, np.ndarray) and model_input.ndim == 4:
        model_input = list(model_input)
    out = []
    for item in model_input:
        if isinstance(item, (str, os.PathLike)):
            out.append(decode_rgb(item).permute(1, 2, 0))
        else:
            image = torch.from_numpy(np.ascontiguousarray(np.asarray(item), dtype=np.uint8))
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"expected uint8 images of shape (H, W, 3) or image file paths, got one of shape {tuple(image.shape)}")
            out.append(image)
    return out


def _load_pyfunc(data_path: str) -> ExitClassifier:
    # The pytorch flavor's data folder: the module pickled by torch.save (trainables is importable
    # from the model's code folder, which MLflow puts on sys.path before calling us).
    served = torch.load(os.path.join(data_path, "model.pth"), weights_only=False, map_location="cpu")
    return ExitClassifier(served)
