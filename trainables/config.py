"""The typed configuration of one training run, with its validation and string parsing.

`TrainConfig` is the boundary between `trainables/` and everything that drives it (the CLI, the
sweep service). Each field carries, in its metadata, a help text with units and sources and the
constraints that `validate()` checks, so that the CLI, the YAML spec validator and the spec
reference in docs/ all read one definition.

    cfg = TrainConfig(loss="ldam", epochs=200)
    cfg = with_overrides(cfg, {"lr": "0.05", "exit_taps": "stage1,stage2"})   # strings parse
    cfg.validate()                                                            # ConfigError
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainables.data.image_lists import STREAMED_DATASETS, class_count
from trainables.fields import FieldSpec, check_value, coerce_value, declared, field_specs, parse_text
from trainables.models.taps import DEPTHS, TORCHVISION_BACKBONES


class ConfigError(ValueError):
    """A configuration problem a user can fix; the message names every offending field."""


_f = declared  # a field with its help and rules (trainables/fields.py)


def _d(default: Any, help: str, **rules: Any) -> Any:  # noqa: A002
    """A data field: the sweep spec takes it under `data:`, and every trial of a sweep shares it."""
    return declared(default, help, data=True, **rules)


# The ELF paper's line search for the inference threshold s (Appendix B): ELF(LDAM) searches
# s in {1.5, ..., 1.75}/|c| (the numbers below times 1/C), ELF(CE) searches {0.5, 0.55, ..., 0.95}.
# The speed options that keep the math (float32) and pay off on a CUDA GPU: NHWC convolutions and the
# training step compiled into CUDA graphs. The benchmarks time them, the GPU lease and docs/REPRODUCE.md's
# own-GPU commands use them; bf16 (bf16=true) is opt-in because it changes the numerics.
CUDA_FAST_PATH = {"channels_last": True, "compile": "reduce-overhead"}

# Where ResLT's medium+tail and tail branches begin, as shares of the C classes sorted head first, by C,
# so that a preset's groups follow the dataset. 'released': the masks of ResLT's released CIFAR scripts
# (dvlab-research/Imbalanced-Learning ResLT/CIFAR/cifarTrain_reslt_cifar10.py and _cifar100.py): classes
# 2-9 and 4-9 of CIFAR-10, 35-99 and 70-99 of CIFAR-100. 'seeds': the hybrid report's class splits 0-2 /
# 3-5 / 6-9, given for CIFAR-10 only. Any other class count takes the 10-class shares (for 'seeds' on
# CIFAR-100, 30-99 and 60-99): this project's reading.
RESLT_CLASS_SPLITS = {"released": {10: (0.2, 0.4), 100: (0.35, 0.7)}, "seeds": {10: (0.3, 0.6)}}

RESIDENT_DATASETS = ("cifar10", "cifar100", "synthetic")  # decoded once and held on the device (trainables/data/datasets.py)
RESIDENT_CLASSES = {"cifar10": 10, "cifar100": 100, "synthetic": 10}

ELF_LDAM_S_TIMES_C = (1.5, 1.55, 1.6, 1.65, 1.7, 1.75)
ELF_CE_S = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))

TAP_HELP = (
    "backbone taps where early exits attach: 'stem', 'stage1', 'stage2' (stage outputs) or "
    "'stageN.blockM' (after block M, 0-based, of stage N); the final exit is always the backbone's head"
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs. Paper constants are fields with their sources."""

    # --- data -----------------------------------------------------------------------------------
    dataset: str = _d(
        "cifar10",
        "which dataset: CIFAR-10/100 (long-tailed here) and synthetic, held on the device; or an image-file set, "
        "long-tailed already and streamed from disk: imagenet_lt, places_lt (their published split files), inat2018 "
        "(train2018.json, val2018.json), folder (data_dir/{train,val,test}/CLASS/*)",
        choices=(*RESIDENT_DATASETS, *STREAMED_DATASETS),
    )
    data_dir: str | None = _d(
        None, "CIFAR: folder with a torchvision folder or Parquet JPEG copy (None: TUNER_DATA_DIR, then a cache folder); "
              "image-file sets: the folder their split files' paths are relative to (None: TUNER_DATA_DIR/<dataset>)"
    )
    image_size: int = _d(
        224, "image-file sets: the side of the training crop (RandomResizedCrop) and of the evaluation's centre crop "
             "(after resizing to image_size x 256/224), pixels; CIFAR and synthetic images are 32x32", min=16)
    download: bool = _d(True, "download CIFAR with torchvision when it is not found locally")
    imbalance_ratio: float = _d(
        100.0, "CIFAR and synthetic: largest over smallest class count of the long-tailed training set cut from the "
               "balanced one (1 = balanced); an image-file set is long-tailed as published and never cut (unused)", min=1.0
    )
    imbalance_profile: str = _d(
        "exp", "how counts fall from head to tail (LDAM-DRW imbalance_cifar.py)", choices=("exp", "step")
    )
    imbalance_seed: int = _d(0, "numpy seed of the long-tailed selection (reference: np.random.seed(0))", min=0)
    val_per_class: int | None = _d(
        None,
        "test images per class carved out as the balanced validation split (val_acc); "
        "None: 200 for CIFAR-10, 50 for CIFAR-100, 20 for a folder set without val/ (the published sets bring their own)",
        min=1,
    )
    split_seed: int = _d(0, "seed of the validation/test carve of the test set", min=0)
    max_train_images: int | None = _d(
        None, "keep at most this many long-tailed training images, class proportions kept (quick runs)", min=1
    )
    max_eval_images: int | None = _d(
        None, "evaluate on at most this many validation and this many test images (quick runs)", min=1
    )
    synthetic_train_per_class: int = _d(
        500, "synthetic dataset only: balanced training images per class before the long-tailed cut", min=1
    )
    synthetic_test_per_class: int = _d(250, "synthetic dataset only: test images per class", min=2)
    class_groups: str = _d(
        "auto",
        "many/medium/few groups: 'count' (>100, 20-100, <20 training images, as ELF), 'seeds' "
        "(CIFAR-10 classes 0-2 / 3-5 / 6-9, as the hybrid report), an explicit '0-2;3-5;6-9', "
        "or 'auto' (seeds for 10 classes, count otherwise)",
    )

    # --- augmentation ---------------------------------------------------------------------------
    crop_padding: int = _f(4, "random crop after zero padding by this many pixels (0: no crop)", min=0, max=16)
    horizontal_flip: bool = _f(True, "random horizontal flip")
    autoaugment: bool = _f(False, "torchvision AutoAugment, CIFAR-10 policy, drawn per image")
    mixup_alpha: float = _f(0.0, "Mixup Beta(alpha, alpha) parameter (0: no Mixup)", min=0.0)
    label_smoothing: float = _f(0.0, "cross-entropy label smoothing", min=0.0, max_exclusive=1.0)

    data_workers: int = _f(
        2, "image-file sets: DataLoader worker processes that decode and transform the images, ahead of the training step "
           "(0: in the training process); which worker draws an image's augmentation depends on it, as on the seed", min=0)

    # --- model ----------------------------------------------------------------------------------
    backbone: str = _f("resnet32", "CIFAR ResNet with option-A shortcuts (resnet20..56), or torchvision's classification "
                                    "model by name (its own widths; taps 'stem', 'stage1'..'stage3')",
                       choices=(*DEPTHS, *TORCHVISION_BACKBONES))
    widths: tuple[int, ...] = _f(
        (16, 32, 64),
        "channels of the three stages; the seeds use (16, 32, 48) and (15, 30, 63) for grouped ResLT heads",
        length=3,
        item_min=1,
    )
    classifier: str = _f(
        "linear", "'linear' or 'cosine' (NormedLinear: cosine logits in [-1, 1], no bias; LDAM runs)",
        choices=("linear", "cosine"),
    )
    exit_taps: tuple[str, ...] = _f((), TAP_HELP)
    exit_channels: int = _f(64, "kernels of each of the two 3x3 convolutions of an early exit (ELF Appendix D)", min=1)
    exit_conv_stride: int = _f(
        2,
        "stride of each early-exit convolution; the paper does not give it, and with stride 1 leaving "
        "at an exit after stage 1 costs 1.03x the backbone's FLOPs, which rules out its reported savings",
        min=1,
        max=4,
    )
    head: str = _f(
        "plain",
        "classifier head: 'plain', 'reslt_bn' (ResLT as released: three BatchNorms on shared features, "
        "one shared classifier) or 'reslt_grouped' (the seeds: a 3-group convolution, one shared classifier)",
        choices=("plain", "reslt_bn", "reslt_grouped"),
    )
    reslt_heads_at: str = _f(
        "final", "where ResLT heads go: 'final' exit only, or 'all' exits (the seeds' 'full power')",
        choices=("final", "all"),
    )

    # --- loss -----------------------------------------------------------------------------------
    loss: str = _f("ce", "per-exit loss", choices=("ce", "ldam", "focal"))
    ldam_max_m: float = _f(0.5, "LDAM: largest margin, for the rarest class (Cao et al. 2019)", min_exclusive=0.0)
    ldam_s: float = _f(30.0, "LDAM: logit scale s (Cao et al. 2019)", min_exclusive=0.0)
    focal_gamma: float = _f(0.5, "focal loss gamma (ELF paper, section 4.1)", min=0.0)
    class_weighting: str = _f(
        "none", "per-class loss weights", choices=("none", "inverse", "inverse_sqrt", "effective_number")
    )
    effective_number_beta: float = _f(
        0.9999, "beta of effective-number weights (1 - beta) / (1 - beta^n) (Cui et al. 2019)",
        min_exclusive=0.0, max_exclusive=1.0,
    )
    drw_start_epoch: int = _f(
        160, "0-based epoch at which class weights switch on (deferred re-weighting); 0: from the start", min=0
    )
    reslt_alpha: float = _f(
        0.95,
        "ResLT: loss = alpha * L_branch + (1 - alpha) * L_fusion, where L_branch is the branch-independent "
        "loss (head branch on all samples, medium branch on medium+tail, tail branch on tail) and L_fusion "
        "the loss of the summed logits. The released code calls this weight --beta; the seeds call it alpha",
        min=0.0,
        max=1.0,
    )
    reslt_class_split: str = _f(
        "released",
        "ResLT: where the medium+tail and tail groups begin (classes sorted head first), so that they follow the "
        "dataset: 'released' (ResLT's released CIFAR scripts: classes 2-9 and 4-9 of CIFAR-10, 35-99 and 70-99 of "
        "CIFAR-100) or 'seeds' (the hybrid report's 'many [0, 1, 2], medium [3, 4, 5], few [6, 7, 8, 9]': 3-9 and 6-9 "
        "of CIFAR-10, the same shares of other class counts: 30-99 and 60-99 of CIFAR-100); reslt_medium_from/"
        "reslt_tail_from override it",
        choices=tuple(RESLT_CLASS_SPLITS),
    )
    reslt_medium_from: int | None = _f(
        None, "ResLT: first class index of the medium+tail group; None: from reslt_class_split", min=0
    )
    reslt_tail_from: int | None = _f(
        None, "ResLT: first class index of the tail group; None: from reslt_class_split", min=0
    )
    exit_aggregation: str = _f(
        "accumulative",
        "ELF: 'accumulative' sums exit losses up to the sample's exit (ELF Eq. 2); 'routed' keeps only "
        "the loss at that exit (the seeds' Models 4, 7, 8, 12-16)",
        choices=("accumulative", "routed"),
    )
    train_exit_threshold: float | None = _f(
        None,
        "ELF training threshold t: a sample leaves exit k when argmax is right and its probability "
        "exceeds t (Eq. 1); None: 2/C for LDAM and 0.9 otherwise (ELF paper, section 4.1)",
        min_exclusive=0.0, max_exclusive=1.0,
    )
    inference_exit_threshold: float = _f(
        0.5, "ELF inference threshold s: a sample leaves at the first exit whose top probability exceeds s (Eq. 5); "
        "used as it is when inference_threshold_selection is 'fixed'",
        min_exclusive=0.0, max=1.0,
    )
    inference_threshold_selection: str = _f(
        "fixed",
        "how s is chosen at each evaluation: 'fixed' takes inference_exit_threshold; 'elf_ldam' picks it from "
        "{1.5, 1.55, 1.6, 1.65, 1.7, 1.75}/C and 'elf_ce' from {0.5, 0.55, ..., 0.95} by val_acc on the "
        "validation split, ties going to fewer FLOPs (ELF paper, section 4.1 and Appendix B); test_acc and "
        "flops_ratio are reported at the s selected",
        choices=("fixed", "elf_ldam", "elf_ce"),
    )
    exit_confidence_scale: float = _f(
        1.0,
        "exit probabilities are softmax(scale * logits); 1 reads the ELF rule t = 2/C on cosine logits",
        min_exclusive=0.0,
    )
    simulated_reslt_loss: bool = _f(
        False,
        "hybrids: at single-branch early exits, count a medium+tail sample's loss twice and a tail "
        "sample's three times (the hybrid report's 'simulated loss')",
    )

    # --- optimisation ---------------------------------------------------------------------------
    epochs: int = _f(200, "training epochs", min=1)
    batch_size: int = _f(128, "images per step", min=1)
    lr: float = _f(0.1, "peak learning rate (per batch of batch_size)", min_exclusive=0.0, max=10.0)
    momentum: float = _f(0.9, "SGD momentum", min=0.0, max_exclusive=1.0)
    nesterov: bool = _f(False, "Nesterov momentum (ResLT uses it; LDAM-DRW does not)")
    weight_decay: float = _f(2e-4, "L2 weight decay (LDAM-DRW 2e-4, ResLT 5e-4)", min=0.0)
    warmup_epochs: int = _f(5, "linear warm-up epochs (LDAM-DRW, ELF, ResLT: 5)", min=0)
    warmup_start_factor: float = _f(
        0.0,
        "warm-up: lr factor in epoch e < warmup_epochs is f + (1 - f) * (e + 1) / warmup_epochs "
        "(0: LDAM-DRW's lr * (e + 1) / 5; ResLT starts from lr / 3)",
        min=0.0, max=1.0,
    )
    lr_schedule: str = _f("step", "after warm-up: 'step' decay or 'cosine' to zero", choices=("step", "cosine"))
    lr_decay_epochs: tuple[int, ...] = _f(
        (160, 180), "step schedule: 0-based epochs at which lr is multiplied by lr_decay_factor", item_min=0
    )
    lr_decay_factor: float = _f(
        0.01, "step schedule: factor at each decay epoch (LDAM-DRW 0.01: 0.1 -> 1e-3 -> 1e-5; ResLT 0.1)",
        min_exclusive=0.0, max=1.0,
    )
    grad_clip_norm: float | None = _f(
        None, "clip the gradient norm to this value (the seeds' fix for exploding LDAM loss); None: off",
        min_exclusive=0.0,
    )

    # --- guards ---------------------------------------------------------------------------------
    divergence_loss_bound: float = _f(
        1000.0, "a batch loss above this (or non-finite) ends the run as diverged (the seeds saw > 1200)",
        min_exclusive=0.0,
    )
    collapse_patience: int = _f(
        5,
        "end the run as diverged after this many epochs (past warm-up) with val_acc at chance "
        "(the seeds' epoch-111 collapse); 0: off",
        min=0,
    )

    # --- runtime --------------------------------------------------------------------------------
    seed: int = _f(0, "seed of weights, batch order and augmentation", min=0)
    device: str = _f("auto", "'cpu', 'cuda', 'cuda:N' or 'auto' (cuda when available)")
    channels_last: bool = _f(False, "speed: NHWC memory layout for the convolutions (same math)")
    bf16: bool = _f(False, "speed: bfloat16 autocast for the forward pass (losses stay float32)")
    sync_batchnorm: bool = _f(
        True, "data-parallel runs on CUDA (several train workers): BatchNorm statistics over the global batch "
              "(SyncBatchNorm), as on one GPU; false: over each worker's part (on CPU always: torch has no CPU kernel)")
    compile: str = _f(
        "off", "speed: torch.compile the training step: 'off', 'default', 'reduce-overhead' (CUDA graphs) or 'max-autotune'",
        choices=("off", "default", "reduce-overhead", "max-autotune"),
    )
    divergence_check_every: int = _f(
        0, "steps between divergence checks (each is a host sync); 0: every step on CPU, every 16 on CUDA", min=0
    )
    eval_every: int = _f(1, "evaluate every this many epochs (and always after the last)", min=1)
    threshold_grid: tuple[float, ...] = _f(
        tuple(round(0.05 * i, 2) for i in range(1, 21)),
        "inference thresholds of the accuracy/FLOPs curve reported in the summary",
        item_min_exclusive=0.0, item_max=1.0,
    )

    # ----------------------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """The dataset's class count (an image-file set: as its training list has it, trainables/data/image_lists.py)."""
        if self.dataset in RESIDENT_CLASSES:
            return RESIDENT_CLASSES[self.dataset]
        return class_count(self.dataset, self.data_dir)

    @property
    def streamed(self) -> bool:
        """An image-file set, streamed from disk (trainables/data/streamed.py), not held on the device."""
        return self.dataset in STREAMED_DATASETS

    @property
    def has_exits(self) -> bool:
        return len(self.exit_taps) > 0

    def resolved_train_exit_threshold(self) -> float:
        """t, with the ELF paper's rule when unset: 2/C for LDAM, 0.9 for CE and focal."""
        if self.train_exit_threshold is not None:
            return self.train_exit_threshold
        return 2.0 / self.num_classes if self.loss == "ldam" else 0.9

    def inference_threshold_candidates(self) -> tuple[float, ...]:
        """The values of s an evaluation chooses from (one value when the selection is 'fixed')."""
        if self.inference_threshold_selection == "elf_ldam":
            return tuple(round(m / self.num_classes, 6) for m in ELF_LDAM_S_TIMES_C)
        if self.inference_threshold_selection == "elf_ce":
            return ELF_CE_S
        return (self.inference_exit_threshold,)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """The defaults with `values` applied (with_overrides: parsed, typed, unknown keys refused); not yet validated."""
        return with_overrides(cls(), values)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    def validate(self) -> TrainConfig:
        """Raise ConfigError listing every problem at once; return self when valid."""
        problems = field_problems(self.to_dict())
        problems += self._cross_field_problems()
        if problems:
            raise ConfigError("; ".join(problems))
        return self

    def _cross_field_problems(self) -> list[str]:
        from trainables.models.taps import backbone_tap_problems

        problems = backbone_tap_problems(self.backbone, self.exit_taps)
        c = self.num_classes
        grouped_widths = [self.widths[-1]] + ([self.exit_channels] if self.reslt_heads_at == "all" and self.has_exits else [])
        if self.head == "reslt_grouped" and self.backbone in DEPTHS and any(w % 3 for w in grouped_widths):
            problems.append(
                f"head: 'reslt_grouped' needs channels divisible by 3, got widths[-1]={self.widths[-1]}"
                + (f", exit_channels={self.exit_channels}" if len(grouped_widths) > 1 else "")
                + " (the seeds use widths 16,32,48 or 15,30,63 and exit_channels 63)"
            )
        if self.streamed and self.autoaugment:
            problems.append("autoaugment: the CIFAR-10 policy is for 32x32 CIFAR images; an image-file set trains with "
                            "ImageNet's RandomResizedCrop and flip (set autoaugment: false)")
        if self.backbone in TORCHVISION_BACKBONES and self.head == "reslt_grouped":
            problems.append(f"head: 'reslt_grouped' needs a CIFAR ResNet's widths divisible by 3; {self.backbone} takes "
                            "'reslt_bn' (ResLT as released: three BatchNorms on its final features)")
        if self.reslt_heads_at == "all" and self.head == "plain":
            problems.append("reslt_heads_at: 'all' needs head 'reslt_bn' or 'reslt_grouped'")
        if self.simulated_reslt_loss and self.head == "plain":
            problems.append("simulated_reslt_loss: needs a ResLT head (its class groups come from it)")
        med, tail = self.reslt_groups()
        if not 0 < med <= tail < c:
            problems.append(
                f"reslt_medium_from/reslt_tail_from: need 0 < medium_from <= tail_from < {c}, got {med}, {tail}"
            )
        if self.has_exits:
            from trainables.losses.elf import exit_confidence_cap

            branches = 3 if self.reslt_heads_at == "all" and self.head != "plain" else 1
            cap = exit_confidence_cap(self.classifier == "cosine", branches, self.exit_confidence_scale, c)
            t = self.resolved_train_exit_threshold()
            if t >= cap:
                problems.append(
                    f"train_exit_threshold: {t:g} can never be reached: early exits give softmax({self.exit_confidence_scale:g} "
                    f"x cosine logits), at most {cap:.3f} for {c} classes, so no sample would ever leave early; "
                    f"use a threshold below {cap:.3f} (ELF(LDAM): 2/C) or raise exit_confidence_scale")
        if list(self.lr_decay_epochs) != sorted(self.lr_decay_epochs):
            problems.append(f"lr_decay_epochs: must be increasing, got {list(self.lr_decay_epochs)}")
        if self.max_eval_images is not None and self.max_eval_images < c:
            problems.append(f"max_eval_images: must be at least the class count {c}, got {self.max_eval_images}")
        try:
            from trainables.data.groups import parse_class_groups

            parse_class_groups(self.class_groups, c)
        except ValueError as exc:
            problems.append(f"class_groups: {exc}")
        if not (self.device in ("cpu", "cuda", "auto") or self.device.startswith("cuda:")):
            problems.append(f"device: expected 'cpu', 'cuda', 'cuda:N' or 'auto', got {self.device!r}")
        return problems

    def reslt_groups(self) -> tuple[int, int]:
        """(first medium+tail class, first tail class), classes sorted head first."""
        c = self.num_classes
        shares = RESLT_CLASS_SPLITS[self.reslt_class_split]
        medium_share, tail_share = shares.get(c, shares[10])
        med = self.reslt_medium_from if self.reslt_medium_from is not None else round(medium_share * c)
        tail = self.reslt_tail_from if self.reslt_tail_from is not None else round(tail_share * c)
        return med, tail


# ----------------------------------------------------------------------------------------------------
# Field introspection, shared with the sweep spec validator and the docs generator.

FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainConfig)}
SPECS: dict[str, FieldSpec] = field_specs(TrainConfig)
DATA_FIELDS: tuple[str, ...] = tuple(name for name, f in FIELDS.items() if f.metadata.get("data"))


MEMBER_STRATEGIES = ("streams", "fused")  # how a worker trains several members (trainables/members.py)
# What the members of one worker share (a sweep spec may not search them when trials share workers):
# the data, the architecture (fused members are one stacked model), the batch size (their steps go
# together) and the device and speed settings.
ARCHITECTURE_FIELDS = ("backbone", "widths", "classifier", "exit_taps", "exit_channels", "exit_conv_stride", "head",
                       "reslt_heads_at")
MEMBER_SHARED_FIELDS = (*DATA_FIELDS, *ARCHITECTURE_FIELDS, "batch_size", "device", "channels_last", "bf16", "compile")


def field_kind(name: str) -> str:
    """'bool', 'int', 'float', 'str', 'tuple[int]', 'tuple[str]' or 'tuple[float]'."""
    return SPECS[name].kind


def _unknown(name: str) -> str:
    return f"{name}: unknown field; known fields: {', '.join(sorted(FIELDS))}"


def value_problems(name: str, value: Any) -> list[str]:
    """Problems of one already-typed value for field `name` (type, choices, ranges)."""
    return check_value(name, value, SPECS[name]) if name in SPECS else [_unknown(name)]


def field_problems(values: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for name, value in values.items():
        out += value_problems(name, value)
    return out


def parse_value(name: str, text: str) -> Any:
    """Parse a command-line string into field `name`'s type; raises ConfigError."""
    if name not in SPECS:
        raise ConfigError(_unknown(name))
    try:
        return parse_text(name, text, SPECS[name])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def coerce(name: str, value: Any) -> Any:
    """A value as YAML or JSON gives it, in field `name`'s type: lists become tuples, integers fill floats."""
    return coerce_value(value, SPECS[name])


def with_overrides(config: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """A copy of `config` with `overrides` applied; string values are parsed to the field's type.

    Unknown keys and wrong types raise ConfigError naming every offending key. Lists become tuples
    and integers given for float fields become floats, so the result is a well-typed config.
    """
    problems, values = [], {}
    for key, raw in overrides.items():
        if key not in FIELDS:
            problems.append(_unknown(key))
            continue
        try:
            value = parse_value(key, raw) if isinstance(raw, str) and field_kind(key) != "str" else raw
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        value = coerce(key, value)
        problems += value_problems(key, value)
        values[key] = value
    if problems:
        raise ConfigError("; ".join(problems))
    return dataclasses.replace(config, **values)
