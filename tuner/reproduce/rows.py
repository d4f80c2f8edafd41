"""The rows of docs/RESULTS.md: which preset reproduces which published CIFAR-10-LT number.

Published numbers are from ../shared/docs/REFERENCES.md (sections 2-4), top-1 test accuracy in
percent at imbalance 100 / 50 / 10. `in_house_yardstick` is the row every other row's gap is
measured against: our data is a JPEG copy of CIFAR-10, so absolute numbers sit a few points under
the papers', and the gap to LDAM-DRW on the same copy is what compares.
"""

from __future__ import annotations

from dataclasses import dataclass

IMBALANCES = (100, 50, 10)


@dataclass(frozen=True)
class Row:
    key: str  # file names in results/: {key}-ir{imbalance}-seed{seed}.jsonl
    label: str
    presets: dict[int, str]  # imbalance -> trainables preset
    published: dict[int, float]  # imbalance -> top-1 %, as published
    source: str
    versus: str  # what the published number is, in a few words (the plan's column)
    published_flops_saving: dict[int, float] | None = None  # % fewer FLOPs than the backbone, as published


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
)
ROWS_BY_KEY = {row.key: row for row in ROWS}
SWEEP_BEST = "sweep_best"  # the best trial of search_spaces/hybrid.yaml, retrained (tuner.reproduce --from-sweep)
IN_HOUSE_YARDSTICK = "ldam_drw"
