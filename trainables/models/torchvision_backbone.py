"""torchvision's classification backbones by name, tapped for early exits: ResNets (resnet18 ... 152,
wide_resnet50_2/101_2, resnext50_32x4d ...) and DenseNets (densenet121/161/169/201).

ELF puts "an auxiliary exit before each residual block" (the paper's ResNet-50 has "(final) exit 5",
Section 4 and Tables 1 and 3): before stages 2-4 of a ResNet and before dense blocks 2-4 of a
DenseNet, plus one after the stem, before the first. Their taps here, from input to output:

    stem    the stem's output (ResNet: maxpool; DenseNet: features.pool0)
    stage1  ResNet: layer1; DenseNet: transition1 (the output of dense block 1 and its transition)
    stage2  layer2 / transition2
    stage3  layer3 / transition3
    (final) layer4 / the ReLU after norm5: where the final head sits, not an early-exit tap

The taps are read with torchvision's feature extraction (torchvision.models.feature_extraction),
which traces the model and returns the named intermediate outputs; an extractor that stops at an
earlier tap computes only the part of the network before it (what an early exit costs). Weights
start from torchvision's own initialisation (no pretrained weights: the papers train from scratch).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from trainables.models.taps import TORCHVISION_BACKBONES
from trainables.models.taps import TORCHVISION_TAPS as TAPS

FAMILIES = {
    "resnet": {"stem": "maxpool", "stage1": "layer1", "stage2": "layer2", "stage3": "layer3", "final": "layer4"},
    "densenet": {"stem": "features.pool0", "stage1": "features.transition1.pool", "stage2": "features.transition2.pool",
                 "stage3": "features.transition3.pool", "final": "relu"},
}


def family(name: str) -> str:
    return "densenet" if name.startswith("densenet") else "resnet"


class TorchvisionBackbone(nn.Module):
    """A torchvision classification model's feature path with named taps; the same interface as the CIFAR
    ResNet (`forward_taps`, `channels_at`): positions are indices into TAPS, and 4 is the final features."""

    FINAL = len(TAPS)

    def __init__(self, name: str):
        super().__init__()
        import torchvision.models as tvm
        from torchvision.models.feature_extraction import create_feature_extractor

        if name not in TORCHVISION_BACKBONES:
            raise ValueError(f"backbone: unknown {name!r}; torchvision backbones are {', '.join(TORCHVISION_BACKBONES)}")
        self.name = name
        nodes = FAMILIES[family(name)]
        self.node_names = [nodes[t] for t in (*TAPS, "final")]
        model = getattr(tvm, name)(weights=None)
        # One extractor for the whole path; the prefixes (to an early exit) are made on first use.
        self.extractor = create_feature_extractor(model, {n: str(i) for i, n in enumerate(self.node_names)})
        self._prefixes: dict[tuple[int, ...], nn.Module] = {}
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            shapes = self.extractor.eval()(torch.zeros(1, 3, 64, 64))
        self.channels = [shapes[str(i)].shape[1] for i in range(len(self.node_names))]
        self.extractor.train()

    def channels_at(self, position: int) -> int:
        return self.channels[position]

    @property
    def out_channels(self) -> int:
        return self.channels[self.FINAL]

    def forward_taps(self, x: torch.Tensor, positions: tuple[int, ...], stop_after: int | None = None) -> list[torch.Tensor]:
        """Features at each of `positions`, then the final features; with `stop_after`, only the first that many taps."""
        if stop_after is None:
            out = self.extractor(x)
            return [out[str(p)] for p in positions] + [out[str(self.FINAL)]]
        wanted = tuple(positions[:stop_after])
        if wanted not in self._prefixes:
            from torchvision.models.feature_extraction import create_feature_extractor

            # The traced path, cut after the last wanted tap (the graph drops what no output needs).
            self._prefixes[wanted] = create_feature_extractor(self.extractor, {self.node_names[p]: str(p) for p in wanted})
        prefix = self._prefixes[wanted]
        prefix.train(self.training)
        out = prefix(x)
        return [out[str(p)] for p in wanted]
