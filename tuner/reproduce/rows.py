"""The rows of docs/RESULTS.md: which preset reproduces which published number.

Published numbers are from ../shared/docs/REFERENCES.md (sections 2-4), top-1 test accuracy in
percent. CIFAR-10-LT and CIFAR-100-LT rows are cut here at imbalance 100 / 50 / 10 (IMBALANCES); a
method on both datasets is two rows (the CIFAR-100 one's key ends in `_c100`). The headline rows are
the ELF paper's Tables 1 (ResNet-50) and 3 (DenseNet-169), 100 epochs, on ImageNet-LT and
iNaturalist'18, which are long-tailed as published: each has one imbalance, its published ratio
(HEADLINE_DATASETS), which names the run and cuts nothing. `YARDSTICKS` names, per dataset and
backbone, the row every other such row is measured against: our CIFAR-10 is a JPEG copy, so absolute
numbers sit a few points under the papers', and the gap to LDAM-DRW on the same data is what compares.
"""

from __future__ import annotations

from dataclasses import dataclass

IMBALANCES = (100, 50, 10)  # CIFAR's, cut here
# The datasets of the rows, in the order of the tables and of the lease's queue (CIFAR-10 first),
# with their names (long_tailed_name: what a table says).
DATASETS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet_lt": "ImageNet-LT", "inat2018": "iNaturalist'18"}
# The headline tables' datasets, long-tailed as published (trainables never cuts an image-file set:
# imbalance_ratio does not apply), each with its published ratio: its rows' only imbalance.
HEADLINE_DATASETS = {"imagenet_lt": 256, "inat2018": 500}


def long_tailed_name(dataset: str) -> str:
    """The long-tailed set's name: CIFAR-10-LT (cut here from CIFAR-10), ImageNet-LT, iNaturalist'18."""
    return DATASETS[dataset] if dataset in HEADLINE_DATASETS else f"{DATASETS[dataset]}-LT"


@dataclass(frozen=True)
class Row:
    key: str  # file names in results/: {key}-ir{imbalance}-seed{seed}.jsonl
    label: str
    presets: dict[int, str]  # imbalance -> trainables preset
    published: dict[int, float]  # imbalance -> top-1 %, as published
    source: str
    versus: str  # what the published number is, in a few words (the plan's column)
    published_flops_saving: dict[int, float] | None = None  # % fewer FLOPs than the backbone, as published
    dataset: str = "cifar10"  # a key of DATASETS: what its runs train on (trainables.train --set dataset=...)
    backbone: str = "ResNet-32"  # what its presets build, as the papers name it (the plan's line; YARDSTICKS)
    published_groups: dict[int, tuple[float, float, float]] | None = None  # imbalance -> many / medium / few top-1 %, as published


# The headline rows' methods and their names in the ELF paper; a row's preset is f"{backbone}_{method}"
# (trainables/presets.py: r50_ce, ..., d169_elf_ldam_drw).
HEADLINE_METHODS = {"ce": "CE", "ce_drw": "CE+DRW", "ldam_drw": "LDAM+DRW", "elf_ce_drw": "ELF(CE)+DRW",
                    "elf_ldam_drw": "ELF(LDAM)+DRW"}
BACKBONES = {"r50": ("ResNet-50", "ELF paper, Table 1"), "d169": ("DenseNet-169", "ELF paper, Table 3")}
HEADLINE_KEYS = {"imagenet_lt": "inlt", "inat2018": "inat"}  # dataset -> the end of its rows' keys


def _headline(backbone: str, method: str, dataset: str, published: tuple[float, float, float, float] | None,
              flops_saving: float | None = None) -> Row:
    """A row of the ELF paper's Table 1 or 3 (100 epochs): `published` many, medium, few, all top-1 %."""
    name, table = BACKBONES[backbone]
    method_name, imbalance = HEADLINE_METHODS[method], HEADLINE_DATASETS[dataset]
    source = (f"{table} ({name}, {DATASETS[dataset]}, 100 epochs)" if published
              else f"{table} has no {method_name} row for {name}")
    return Row(f"{backbone}_{method}_{HEADLINE_KEYS[dataset]}", f"{name}, {method_name}", {imbalance: f"{backbone}_{method}"},
               {imbalance: published[3]} if published else {}, source, table,
               published_flops_saving={imbalance: flops_saving} if flops_saving else None, dataset=dataset,
               backbone=name, published_groups={imbalance: published[:3]} if published else None)

ROWS = (
    Row("ldam_drw", "LDAM-DRW", dict.fromkeys(IMBALANCES, "ldam_drw"), {100: 77.0, 50: 81.4, 10: 87.6},
        "ELF paper Table 2 (LDAM-DRW, Cao et al. 2019)", "ELF paper, Table 2"),
    Row("elf_ldam_drw", "ELF(LDAM)+DRW", dict.fromkeys(IMBALANCES, "elf_ldam_drw"), {100: 78.1, 50: 82.4, 10: 88.0},
        "ELF paper Table 2", "ELF paper, Table 2", published_flops_saving={100: 15.1, 50: 21.4, 10: 19.6}),
    # The released recipe is what the published ResLT numbers come from; the seeds' narrower
    # re-implementation is its own row, against the seeds' own measurements.
    Row("reslt_released", "ResLT (released recipe)", dict.fromkeys(IMBALANCES, "reslt_released"),
        {100: 80.44, 50: 83.46, 10: 89.06},
        "ResLT (Cui et al.) as quoted by the seeds' reports; REFERENCES.md section 3 (89.7 at 10x elsewhere)",
        "published ResLT"),
    Row("reslt", "the seeds' ResLT (widths 16/32/48, alpha 0.95, AutoAugment, label smoothing)", dict.fromkeys(IMBALANCES, "reslt"),
        {100: 75.33, 50: 80.14, 10: 86.78}, "the seeds' own measurement (hybrid-elf-reslt-slides.txt, Phase 1.3)",
        "the seeds' ResLT"),
    Row("hybrid_routed_mixup", "routed hybrid, CE, Mixup (Models 8/12/13)", {100: "hybrid_m8", 50: "hybrid_m12", 10: "hybrid_m13"},
        {100: 79.59, 50: 82.89, 10: 85.77}, "hybrid-elf-reslt-report.txt", "the seeds' report"),
    Row("hybrid_full_power", "full-power hybrid, CE, AutoAugment (Models 14/15/16)",
        {100: "hybrid_m14", 50: "hybrid_m15", 10: "hybrid_m16"}, {100: 78.94, 50: 83.36, 10: 89.32}, "hybrid-elf-reslt-report.txt",
        "the seeds' report"),
    # CIFAR-100-LT: the same recipes, ELF paper Table 2's right half. The seeds' rows have no
    # CIFAR-100 numbers (their reports are on CIFAR-10 only), so they have no CIFAR-100 row.
    Row("ldam_drw_c100", "LDAM-DRW", dict.fromkeys(IMBALANCES, "ldam_drw"), {100: 42.0, 50: 46.6, 10: 58.7},
        "ELF paper Table 2, CIFAR-100-LT (LDAM-DRW, Cao et al. 2019)", "ELF paper, Table 2", dataset="cifar100"),
    Row("elf_ldam_drw_c100", "ELF(LDAM)+DRW", dict.fromkeys(IMBALANCES, "elf_ldam_drw"), {100: 43.1, 50: 47.5, 10: 58.9},
        "ELF paper Table 2, CIFAR-100-LT", "ELF paper, Table 2", published_flops_saving={100: 0.01, 50: 2.39, 10: 1.9},
        dataset="cifar100"),
    # ResLT's released CIFAR-100 recipe is known (its scripts' masks, classes 35-99 and 70-99, and --beta
    # 0.995 / 0.99 / 0.72: the reslt_released preset), its published CIFAR-100-LT accuracies are not:
    # REFERENCES.md section 3 and the seeds quote CIFAR-10-LT only, and a search of the stored pages and
    # code (2026-12-06) found no table with them. The row runs; its published column stays a dash until
    # someone with the paper's table fills it in.
    Row("reslt_released_c100", "ResLT (released recipe)", dict.fromkeys(IMBALANCES, "reslt_released"), {},
        "ResLT (Cui et al.): its CIFAR-100-LT accuracies are not in the documents here", "published ResLT",
        dataset="cifar100"),
    # The ELF paper's headline tables (../seeds/elf-paper.txt Tables 1 and 3; REFERENCES.md section 2):
    # many / medium / few / all, and % fewer FLOPs than CE's model where it saves any.
    _headline("r50", "ce", "imagenet_lt", (63.8, 38.5, 13.6, 44.6)),
    _headline("r50", "ce_drw", "imagenet_lt", (60.3, 45.2, 27.0, 48.5)),
    _headline("r50", "ldam_drw", "imagenet_lt", (61.1, 44.7, 28.0, 48.8)),
    _headline("r50", "elf_ce_drw", "imagenet_lt", (60.7, 45.5, 27.7, 48.9), 20.7),
    _headline("r50", "elf_ldam_drw", "imagenet_lt", (64.0, 46.8, 27.7, 50.8), 7.4),
    _headline("r50", "ce", "inat2018", (72.7, 63.8, 58.7, 62.7)),
    _headline("r50", "ce_drw", "inat2018", (67.1, 66.4, 65.6, 66.1)),
    _headline("r50", "ldam_drw", "inat2018", (70.0, 67.4, 66.1, 67.1)),
    _headline("r50", "elf_ce_drw", "inat2018", (67.4, 66.3, 65.1, 66.0), 13.5),
    _headline("r50", "elf_ldam_drw", "inat2018", (72.3, 68.8, 65.6, 67.9), 9.0),
    _headline("d169", "ce", "imagenet_lt", (63.5, 38.1, 14.4, 44.6)),
    _headline("d169", "ce_drw", "imagenet_lt", (60.3, 44.2, 25.8, 47.9)),
    _headline("d169", "ldam_drw", "imagenet_lt", (62.2, 44.1, 27.6, 48.8)),
    _headline("d169", "elf_ce_drw", "imagenet_lt", None),  # Table 3 has no ELF(CE) row: the run is ours alone
    _headline("d169", "elf_ldam_drw", "imagenet_lt", (63.8, 46.5, 29.0, 50.8), 1.7),
    _headline("d169", "ce", "inat2018", (73.9, 64.6, 58.1, 63.0)),
    _headline("d169", "ce_drw", "inat2018", (68.9, 67.3, 65.6, 66.8)),
    _headline("d169", "ldam_drw", "inat2018", (68.7, 67.9, 66.5, 67.5)),
    _headline("d169", "elf_ce_drw", "inat2018", None),
    _headline("d169", "elf_ldam_drw", "inat2018", (71.5, 68.5, 66.2, 67.9), 1.4),
)
ROWS_BY_KEY = {row.key: row for row in ROWS}
SWEEP_BEST = "sweep_best"  # the best trial of search_spaces/hybrid.yaml, retrained (tuner.reproduce --from-sweep)
# (dataset, backbone) -> the in-house yardstick row (docstring): each backbone of the headline tables
# against its own LDAM+DRW, as the paper's tables compare them.
YARDSTICKS = {("cifar10", "ResNet-32"): "ldam_drw", ("cifar100", "ResNet-32"): "ldam_drw_c100",
              **{(dataset, name): f"{backbone}_ldam_drw_{end}" for dataset, end in HEADLINE_KEYS.items()
                 for backbone, (name, _) in BACKBONES.items()}}


def yardstick(key: str, dataset: str) -> str:
    """The row a run of row `key` on `dataset` is measured against (a run of no row, the sweep's best: the
    dataset's first yardstick)."""
    row = ROWS_BY_KEY.get(key)
    if row is not None:
        return YARDSTICKS[row.dataset, row.backbone]
    return next(v for (d, _), v in YARDSTICKS.items() if d == dataset)
