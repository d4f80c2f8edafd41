"""The rows of docs/RESULTS.md: which preset reproduces which published CIFAR-10-LT or CIFAR-100-LT number.

Published numbers are from ../shared/docs/REFERENCES.md (sections 2-4), top-1 test accuracy in
percent at imbalance 100 / 50 / 10. A row trains on one dataset; a method on both datasets is two
rows (the CIFAR-100 one's key ends in `_c100`). `YARDSTICKS` names, per dataset, the row every
other row of that dataset is measured against: our CIFAR-10 is a JPEG copy, so absolute numbers
sit a few points under the papers', and the gap to LDAM-DRW on the same data is what compares.
"""

from __future__ import annotations

from dataclasses import dataclass

IMBALANCES = (100, 50, 10)
# The datasets of the rows, in the order of the tables and of the lease's queue (CIFAR-10 first),
# with their names; a row's table says f"{name}-LT".
DATASETS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


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
)
ROWS_BY_KEY = {row.key: row for row in ROWS}
SWEEP_BEST = "sweep_best"  # the best trial of search_spaces/hybrid.yaml, retrained (tuner.reproduce --from-sweep)
YARDSTICKS = {"cifar10": "ldam_drw", "cifar100": "ldam_drw_c100"}  # dataset -> the in-house yardstick row (docstring)
