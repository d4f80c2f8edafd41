"""A trained multi-exit model packaged for inference on raw images.

    served = ExitInference(model, threshold=0.5)
    probs = served(images_uint8_nhwc)          # (N, C): probabilities of the exit each image took
    pred, conf, exit_idx = served.predict(images_uint8_nhwc)

    ensemble = ExitEnsemble([served, other])   # softmax outputs averaged; evaluate_ensemble gives its metrics

Input is what a user has: uint8 images (N, 32, 32, 3), height-width-channel, for a CIFAR model; for a
model of an image-file set (`image_size` given), images of any size, as a list of uint8 (H, W, 3)
arrays or tensors, or a (N, H, W, 3) batch, which go through that set's evaluation transform (resize,
centre crop). Normalisation and the ELF exit rule (first exit whose top probability exceeds the
threshold) happen inside, with the same code the training loop evaluates with.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from trainables.data.augment import normalize
from trainables.data.streamed import eval_transform, normalize_imagenet
from trainables.evaluate import ExitPredictions, class_accuracy, exit_probabilities, group_accuracy
from trainables.names import COST, OBJECTIVE, TEST_METRIC


class ExitInference(nn.Module):
    def __init__(self, model: nn.Module, threshold: float, confidence_scale: float = 1.0, class_names: list[str] | None = None,
                 image_size: int | None = None):
        super().__init__()
        self.model = model.eval()
        self.threshold = float(threshold)
        self.confidence_scale = float(confidence_scale)
        self.class_names = list(class_names or [])
        self.image_size = image_size  # None: CIFAR's 32x32 as they are; else an image-file set's evaluation crop

    def prepare(self, images: torch.Tensor | list) -> torch.Tensor:
        """The model's input, normalised on its device, from uint8 HWC images."""
        device = next(self.model.parameters()).device
        if self.image_size is None:
            return normalize(images.to(device).permute(0, 3, 1, 2))
        transform = eval_transform(self.image_size)
        crops = [transform(torch.as_tensor(im).permute(2, 0, 1)) for im in images]
        return normalize_imagenet(torch.stack(crops).to(device))

    @torch.no_grad()
    def _taken(self, images: torch.Tensor | list) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = self.model(self.prepare(images))
        return ExitPredictions(exit_probabilities(outputs, self.confidence_scale)).at_threshold(self.threshold)

    def predict(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(predicted class (N,), its probability (N,), exit index (N,)) for uint8 images (N, 32, 32, 3)."""
        exit_idx, probs = self._taken(images)
        top = probs.max(1)
        return top.indices, top.values, exit_idx

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C) probabilities of the exit each image leaves at."""
        return self._taken(images)[1]


class ExitEnsemble(nn.Module):
    """The average of several trained models' probabilities, each at its own exit and threshold.

    The stacking of the imbalanced-CIFAR ensembles report: softmax outputs weighted equally. Its
    cost is the sum of its members' costs; `predict` reports the deepest exit any member used.
    """

    def __init__(self, members: list[ExitInference], class_names: list[str] | None = None):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.class_names = list(class_names or members[0].class_names)

    @torch.no_grad()
    def member_outputs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(exit each member took (M, N), averaged probabilities (N, C))."""
        taken = [m._taken(images) for m in self.members]
        return torch.stack([e for e, _ in taken]), torch.stack([p for _, p in taken]).mean(0)

    def predict(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        exits, probs = self.member_outputs(images)
        top = probs.max(1)
        return top.indices, top.values, exits.max(0).values

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.member_outputs(images)[1]


@torch.no_grad()
def evaluate_ensemble(ensemble: ExitEnsemble, val: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                      groups: dict[str, list[int]], member_exit_flops: list[list[int]], reference_flops: int,
                      batch_size: int = 256) -> dict:
    """An ensemble's val_acc, test_acc, group accuracies and flops_ratio on uint8 (N, 3, 32, 32) splits.

    Its cost is what its members pay together: each member the exits it took on the validation
    images, over the one FLOPs reference (trainables/flops.py)."""
    def run(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [ensemble.member_outputs(images[i:i + batch_size].permute(0, 2, 3, 1)) for i in range(0, len(images), batch_size)]
        return torch.cat([e for e, _ in parts], dim=1), torch.cat([p for _, p in parts]).argmax(1)

    val_exits, val_pred = run(val[0])
    _, test_pred = run(test[0])
    cost = sum(float(torch.tensor(flops, dtype=torch.float64)[val_exits[i].cpu()].mean()) / reference_flops
               for i, flops in enumerate(member_exit_flops))
    per_class = class_accuracy(test_pred.cpu(), test[1], len(ensemble.class_names) or int(test[1].max()) + 1).tolist()
    return {OBJECTIVE: float((val_pred.cpu() == val[1]).float().mean()), TEST_METRIC: float((test_pred.cpu() == test[1]).float().mean()),
            **{k: v for k, v in group_accuracy(per_class, groups).items() if v is not None},
            COST: cost, "members": len(member_exit_flops)}
