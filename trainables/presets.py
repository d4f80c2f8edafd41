"""Named configurations of every model in the seed documents, each with its source.

    config = build_preset("elf_ldam_drw", imbalance_ratio=50)

Readings taken where the documents are silent or disagree (each also noted at its preset):
- Schedules: LDAM-DRW/ELF use SGD 0.9, wd 2e-4, warm-up 5, lr x0.01 at epochs 160 and 180;
  ResLT uses Nesterov, wd 5e-4, warm-up from lr/3, x0.1. The hybrid report's logs show lr 0.1 at
  epoch 120 and 0.001 at epochs 188-200, i.e. x0.1 at 160 and 180; it gives no weight decay, so the
  hybrids keep ELF's 2e-4.
- The seeds' LDAM runs (their ELF re-implementation, hybrid Models 2-5) logged losses of ~9 and
  above 1,200. LDAM on cosine logits is bounded (about 80 at s = 30), so those runs must have
  scaled an ordinary linear classifier's logits: those presets use classifier 'linear', which is
  also why they are prone to divergence. The ELF paper's ELF(LDAM) uses LDAM-DRW's cosine classifier.
- The seeds' hybrids count four exits (after the stem, stage 1, stage 2, and the final head) and
  use the grouped ResLT head, widths (16, 32, 48) for the simulated-loss models and (15, 30, 63)
  for the full-power ones (the report once writes "15, 30, 48"; the slides and the list of extras
  say 63, which the grouped head needs anyway). Early exits of the full-power models get 63 kernels
  for the same reason.
- Label smoothing 0.1 (the report names it for Model 7 and among its extras, without a value);
  Mixup alpha 1.0 (Zhang et al.'s CIFAR value; the report gives none). DRW (effective number,
  epoch 160) for the LDAM hybrids, as in the seeds' ELF implementation; none for the CE hybrids.
- ELF thresholds: ELF(CE) t = 0.9, ELF(LDAM) t = 2/C (paper, section 4.1). The paper finds s by a
  line search (Appendix B): {1.5, ..., 1.75}/C for ELF(LDAM), {0.5, ..., 0.95} for ELF(CE); the ELF
  presets make that search on the validation split at every evaluation (never on the test images)
  and report test accuracy and FLOPs at the s it selects. The hybrids use t = s = 0.5 (LDAM),
  t = 0.9 and s = 0.5 (CE), Model 2 t = 0.2 / s = 0.25, Model 3 t = 0.8 / s = 0.25.
- ELF's exits: "an auxiliary exit before each residual block" (the paper's ResNet-50 has "(final)
  exit 5"); ResNet-32 has three stages, so ELF gets exits after the stem, stage 1 and stage 2, plus
  the final head: four exits, like the seeds' models.
- ResLT class groups. The released code's CIFAR-10 branches take classes 2-9 (medium+tail) and 4-9
  (tail), its CIFAR-100 ones 35-99 and 70-99; `reslt_released` keeps that. The seeds' models follow the hybrid report's "Class Splits:
  'many': [0, 1, 2], 'medium': [3, 4, 5], 'few': [6, 7, 8, 9]", which it lists among the
  hyperparameter values of its models (not only of its reporting), and its simulated loss is
  defined by the same "tail class" membership: so `reslt` and the hybrids train their medium
  branch on classes 3-9 and their tail branch on 6-9 (SEEDS_SPLITS below). The report gives the
  split for CIFAR-10 only; on other class counts these presets keep its shares, 30% head and 30%
  medium (medium+tail from class 30, tail from 60 on CIFAR-100), while `reslt_released` takes its
  released scripts' masks, 35-99 and 70-99 on CIFAR-100: trainables.config.RESLT_CLASS_SPLITS.
- ResLT's weight of the branch-independent loss (the released `--beta`) depends on the data in the
  released scripts: 0.998 / 0.998 / 0.96 on CIFAR-10-LT 100 / 50 / 10 and 0.995 / 0.99 / 0.72 on
  CIFAR-100-LT; `reslt_released` follows that for whatever dataset and imbalance it is built with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainables.config import ConfigError, TrainConfig, with_overrides

LDAM_DRW_SCHEDULE = dict(epochs=200, lr=0.1, momentum=0.9, weight_decay=2e-4, warmup_epochs=5,
                         lr_decay_epochs=(160, 180), lr_decay_factor=0.01)
RESLT_SCHEDULE = dict(epochs=200, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, warmup_epochs=5,
                      warmup_start_factor=1 / 3, lr_decay_epochs=(160, 180), lr_decay_factor=0.1)
HYBRID_SCHEDULE = dict(LDAM_DRW_SCHEDULE, lr_decay_factor=0.1)
DRW = dict(class_weighting="effective_number", effective_number_beta=0.9999, drw_start_epoch=160)
LDAM_COSINE = dict(loss="ldam", classifier="cosine", ldam_max_m=0.5, ldam_s=30.0)
ELF_EXITS = dict(exit_taps=("stem", "stage1", "stage2"), exit_channels=64, exit_aggregation="accumulative")
SEEDS_SPLITS = dict(reslt_class_split="seeds")  # the hybrid report's 'Class Splits', as shares of the classes (docstring)
SEEDS_EXITS = dict(exit_taps=("stem", "stage1", "stage2"), exit_channels=64)
SIMULATED = dict(head="reslt_grouped", widths=(16, 32, 48), reslt_heads_at="final", simulated_reslt_loss=True, reslt_alpha=0.95,
                 **SEEDS_SPLITS)
FULL_POWER = dict(head="reslt_grouped", widths=(15, 30, 63), exit_channels=63, reslt_heads_at="all", reslt_alpha=0.95,
                  **SEEDS_SPLITS)
# The ELF paper's headline tables (Section 4, Tables 1 and 3): ResNet-50 and DenseNet-169 on ImageNet-LT
# and iNaturalist'18, trained from scratch for 100 epochs, SGD at lr 0.1 decayed by 0.1 at epochs 60 and
# 80, weight decay 2e-4, 5 warm-up epochs. Readings where the paper is silent:
# - batch 256: it gives no batch size; lr 0.1 per 256 images is ImageNet's usual rule (Goyal et al. 2017);
# - momentum 0.9, no Nesterov, as its CIFAR recipe (LDAM-DRW's);
# - DRW from epoch 60, the first decay, as on CIFAR (160 of 200: the re-weighting starts with the decay);
# - exits before each residual stage or dense block ("(final) exit 5" of ResNet-50): after the stem and
#   after stages / dense blocks 1-3, each two 3x3 convolutions of 64 kernels (Appendix D), as on CIFAR;
# - the dataset is ImageNet-LT unless data says otherwise (dataset: inat2018 for the iNaturalist columns).
LARGE_SCHEDULE = dict(epochs=100, lr=0.1, momentum=0.9, weight_decay=2e-4, warmup_epochs=5, lr_decay_epochs=(60, 80),
                      lr_decay_factor=0.1, batch_size=256, dataset="imagenet_lt")
LARGE_DRW = dict(DRW, drw_start_epoch=60)
LARGE_ELF_EXITS = dict(exit_taps=("stem", "stage1", "stage2", "stage3"), exit_channels=64, exit_aggregation="accumulative")
HYBRID_LDAM = dict(loss="ldam", classifier="linear", train_exit_threshold=0.5, inference_exit_threshold=0.5, **DRW)
HYBRID_CE = dict(loss="ce", train_exit_threshold=0.9, inference_exit_threshold=0.5)


@dataclass(frozen=True)
class Preset:
    values: dict[str, Any]
    source: str
    # (dataset, imbalance ratio) -> values that replace `values` for that data (the released ResLT
    # scripts set --beta per dataset and ratio); a value the caller overrides is kept.
    per_data: dict[tuple[str, float], dict[str, Any]] = field(default_factory=dict)


def _hybrid(source: str, *parts: dict, **extra: Any) -> Preset:
    values: dict[str, Any] = dict(HYBRID_SCHEDULE)
    values.update(SEEDS_EXITS)
    for part in parts:
        values.update(part)
    values.update(extra)
    return Preset(values, source)


HYBRID = "hybrid-elf-reslt-report.txt"
PRESETS: dict[str, Preset] = {
    # Baselines of ELF Table 2 (ResNet-32, LDAM-DRW's recipe).
    "ce": Preset(dict(LDAM_DRW_SCHEDULE, loss="ce"), "ELF paper Table 2 'CE'; kaidic/LDAM-DRW cifar_train.py"),
    "ce_drw": Preset(dict(LDAM_DRW_SCHEDULE, loss="ce", **DRW), "ELF paper Table 2 'CE+DRW' (Cui et al. weights, DRW at 160)"),
    "focal_drw": Preset(dict(LDAM_DRW_SCHEDULE, loss="focal", focal_gamma=0.5, **DRW),
                        "ELF paper Table 2 'Focal+DRW', gamma 0.5 (section 4.1)"),
    "ldam_drw": Preset(dict(LDAM_DRW_SCHEDULE, **LDAM_COSINE, **DRW),
                       "kaidic/LDAM-DRW cifar_train.py --loss_type LDAM --train_rule DRW; ELF Table 2 'LDAM+DRW'"),
    # ELF (Duggal et al. 2020): exits after the stem, stage 1 and stage 2, plus the final head; s
    # selected on the validation split from the paper's set (inference_exit_threshold is then unused).
    "elf_ce_drw": Preset(
        dict(LDAM_DRW_SCHEDULE, **ELF_EXITS, loss="ce", train_exit_threshold=0.9, inference_exit_threshold=0.9,
             inference_threshold_selection="elf_ce", **DRW),
        "ELF paper section 4.1, Appendices B and D: ELF(CE)+DRW, four exits, t = 0.9, s from {0.5, 0.55, ..., 0.95}",
    ),
    "elf_ldam_drw": Preset(
        dict(LDAM_DRW_SCHEDULE, **ELF_EXITS, **LDAM_COSINE, train_exit_threshold=None, inference_exit_threshold=0.15,
             inference_threshold_selection="elf_ldam", **DRW),
        "ELF paper section 4.1, Appendices B and D: ELF(LDAM)+DRW, four exits, t = 2/C, s from {1.5, ..., 1.75}/C",
    ),
    "elf_ldam_drw_seeds": Preset(
        dict(LDAM_DRW_SCHEDULE, **SEEDS_EXITS, loss="ldam", classifier="linear", train_exit_threshold=0.2,
             inference_exit_threshold=0.2, grad_clip_norm=5.0, exit_aggregation="accumulative", **DRW),
        "elf-implementation-report.txt: four exits, LDAM + DRW, lr 0.1 with gradient clipping (norm not given; "
        "5.0 here), t = 0.2, best s = 0.2 at 100x",
    ),
    # ResLT (Cui et al.).
    "reslt": Preset(
        dict(RESLT_SCHEDULE, head="reslt_grouped", widths=(16, 32, 48), reslt_alpha=0.95, autoaugment=True, label_smoothing=0.1,
             **SEEDS_SPLITS),
        "hybrid-elf-reslt-slides.txt Phase 1.3: the seeds' ResLT, grouped head with 48 channels, alpha 0.95, "
        "AutoAugment, label smoothing, the report's class splits (75.33 / 80.14 / 86.78 at 100x / 50x / 10x)",
    ),
    "reslt_released": Preset(
        dict(RESLT_SCHEDULE, head="reslt_bn", reslt_alpha=0.998),
        "jiequancui/ResLT CIFAR/: three BatchNorm branches, shared linear classifier, --beta per data as its "
        "scripts: CIFAR-10-LT 0.998 / 0.998 / 0.96, CIFAR-100-LT 0.995 / 0.99 / 0.72 at 100x / 50x / 10x",
        per_data={("cifar10", 100.0): dict(reslt_alpha=0.998), ("cifar10", 50.0): dict(reslt_alpha=0.998),
                  ("cifar10", 10.0): dict(reslt_alpha=0.96), ("cifar100", 100.0): dict(reslt_alpha=0.995),
                  ("cifar100", 50.0): dict(reslt_alpha=0.99), ("cifar100", 10.0): dict(reslt_alpha=0.72)},
    ),
    # The seeds' hybrids (hybrid-elf-reslt-report.txt; Models 9-11 do not exist there).
    "hybrid_m1": _hybrid(f"{HYBRID} Model 1: accumulative, CE, simulated loss (56.9 at 100x)", SIMULATED, HYBRID_CE,
                         exit_aggregation="accumulative"),
    "hybrid_m2": _hybrid(f"{HYBRID} Model 2: accumulative, LDAM, t = 0.2, s = 0.25 (64.94)", SIMULATED, HYBRID_LDAM,
                         exit_aggregation="accumulative", train_exit_threshold=0.2, inference_exit_threshold=0.25),
    "hybrid_m3": _hybrid(f"{HYBRID} Model 3: accumulative, LDAM, t = 0.8, s = 0.25 (68.09)", SIMULATED, HYBRID_LDAM,
                         exit_aggregation="accumulative", train_exit_threshold=0.8, inference_exit_threshold=0.25),
    "hybrid_m4": _hybrid(f"{HYBRID} Model 4: routed, LDAM (collapsed at epoch 111)", SIMULATED, HYBRID_LDAM, exit_aggregation="routed"),
    "hybrid_m5": _hybrid(f"{HYBRID} Model 5: full power, LDAM, accumulative (60.26)", FULL_POWER, HYBRID_LDAM,
                         exit_aggregation="accumulative"),
    "hybrid_m6": _hybrid(f"{HYBRID} Model 6: full power, CE, accumulative (62.71)", FULL_POWER, HYBRID_CE, exit_aggregation="accumulative"),
    "hybrid_m7": _hybrid(f"{HYBRID} Model 7: routed, CE with label smoothing, AutoAugment (78.99)", SIMULATED, HYBRID_CE,
                         exit_aggregation="routed", label_smoothing=0.1, autoaugment=True),
    "hybrid_m8": _hybrid(f"{HYBRID} Model 8: Model 7 with Mixup instead of AutoAugment, 100x (79.59)", SIMULATED, HYBRID_CE,
                         exit_aggregation="routed", label_smoothing=0.1, mixup_alpha=1.0),
    "hybrid_m12": _hybrid(f"{HYBRID} Model 12: Model 8 at 50x (82.89)", SIMULATED, HYBRID_CE,
                          exit_aggregation="routed", label_smoothing=0.1, mixup_alpha=1.0, imbalance_ratio=50.0),
    "hybrid_m13": _hybrid(f"{HYBRID} Model 13: Model 8 at 10x (85.77)", SIMULATED, HYBRID_CE,
                          exit_aggregation="routed", label_smoothing=0.1, mixup_alpha=1.0, imbalance_ratio=10.0),
    "hybrid_m14": _hybrid(f"{HYBRID} Model 14: full power, CE, AutoAugment, routed, 100x (78.94)", FULL_POWER, HYBRID_CE,
                          exit_aggregation="routed", label_smoothing=0.1, autoaugment=True),
    "hybrid_m15": _hybrid(f"{HYBRID} Model 15: Model 14 at 50x (83.36)", FULL_POWER, HYBRID_CE,
                          exit_aggregation="routed", label_smoothing=0.1, autoaugment=True, imbalance_ratio=50.0),
    "hybrid_m16": _hybrid(f"{HYBRID} Model 16: Model 14 at 10x (89.32)", FULL_POWER, HYBRID_CE,
                          exit_aggregation="routed", label_smoothing=0.1, autoaugment=True, imbalance_ratio=10.0),
}
TABLES = "ELF paper, Tables 1 (ResNet-50) and 3 (DenseNet-169), ImageNet-LT and iNaturalist'18"


def _large(backbone: str, label: str, *parts: dict, **extra: Any) -> Preset:
    values: dict[str, Any] = dict(LARGE_SCHEDULE, backbone=backbone)
    for part in parts:
        values.update(part)
    values.update(extra)
    return Preset(values, f"{TABLES}: {label}, 100 epochs")


for _short, _backbone in (("r50", "resnet50"), ("d169", "densenet169")):
    PRESETS[f"{_short}_ce"] = _large(_backbone, "CE", loss="ce")
    PRESETS[f"{_short}_ce_drw"] = _large(_backbone, "CE+DRW", LARGE_DRW, loss="ce")
    PRESETS[f"{_short}_ldam_drw"] = _large(_backbone, "LDAM+DRW (cosine classifier, as LDAM-DRW's)", LDAM_COSINE, LARGE_DRW)
    PRESETS[f"{_short}_elf_ce_drw"] = _large(
        _backbone, "ELF(CE)+DRW, five exits, t = 0.9, s from {0.5, ..., 0.95}", LARGE_ELF_EXITS, LARGE_DRW, loss="ce",
        train_exit_threshold=0.9, inference_exit_threshold=0.9, inference_threshold_selection="elf_ce")
    PRESETS[f"{_short}_elf_ldam_drw"] = _large(
        _backbone, "ELF(LDAM)+DRW, five exits, t = 2/C, s from {1.5, ..., 1.75}/C", LARGE_ELF_EXITS, LDAM_COSINE, LARGE_DRW,
        train_exit_threshold=None, inference_exit_threshold=0.0015, inference_threshold_selection="elf_ldam")

# Friendly names for the two families the report ends with.
PRESETS["hybrid_routed_mixup"] = PRESETS["hybrid_m8"]
PRESETS["hybrid_full_power"] = PRESETS["hybrid_m14"]


def build_preset(name: str, **overrides: Any) -> TrainConfig:
    """The preset's TrainConfig with `overrides` applied (strings parse); ConfigError when unknown."""
    if name not in PRESETS:
        raise ConfigError(f"preset: unknown {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    preset = PRESETS[name]
    config = with_overrides(TrainConfig.from_dict(preset.values), overrides)
    for_data = preset.per_data.get((config.dataset, config.imbalance_ratio), {})
    return with_overrides(config, {k: v for k, v in for_data.items() if k not in overrides})
