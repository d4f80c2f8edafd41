"""Generate docs/SPEC.md, the spec reference, from the definitions the validator uses.

    python -m tuner.spec.reference > docs/SPEC.md

The sections of settings (objective, searcher, scheduler, resources, run, tracking) and the
training fields come from their declarations (tuner/spec/schema.py, trainables/config.py): the same
defaults, rules and help the parser checks against. The spec's structure (name, data, train,
search) is written here. A test fails when docs/SPEC.md differs from what this prints, so the
reference cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from trainables.config import DATA_FIELDS, SPECS, TrainConfig, field_kind
from trainables.fields import constraint_text, field_specs
from trainables.presets import PRESETS
from tuner.spec.schema import PARAM_TYPES, SECTIONS

STRUCTURE: list[tuple[str, str, list[tuple[str, str, str]]]] = [
    ("(top level)", "", [
        ("name", "required", "the sweep's name: its folder under run.storage_path, the MLflow experiment and the registered model "
                             "(letters, digits, '_', '-', '.')"),
        ("description", '""', "free text, shown on the MLflow parent run"),
    ]),
    ("data", "Data fields of the training config (table below): every trial sees the same data.", [
        (", ".join(DATA_FIELDS), "see below", "dataset, imbalance and splits; `data_dir` must exist when given"),
    ]),
    ("train", "Values every trial shares.", [
        ("preset", "none", f"a named configuration to start from: {', '.join(sorted(PRESETS))}"),
        ("any training field", "the preset's", "overrides the preset (table below)"),
    ]),
    ("search", "Searched fields, suggested in the order listed. A field is either fixed (data/train) or searched, not "
               "both; a conditional one (with `when`) may be both: its fixed value is used where the condition fails. "
               "Each value is checked where it applies, with the one-value choices it switches on.", [
        ("FIELD.type", "required", f"one of {', '.join(PARAM_TYPES)}"),
        ("FIELD.low, FIELD.high", "required (not for choice)",
         "inclusive bounds in the field's unit; each must be a valid value of the field; loguniform needs low > 0"),
        ("FIELD.step", "none", "uniform/int: quantisation step"),
        ("FIELD.log", "false", "int: sample on a log scale"),
        ("FIELD.values", "required for choice",
         "the candidate values (lists for list fields, e.g. exit_taps: [[stage1], [stage1, stage2]])"),
        ("FIELD.when", "always", "a mapping FIELD2: value or [values]: sample FIELD only when every condition holds; "
                                 "FIELD2 is a fixed field, one searched above, or has_exits"),
    ]),
]
SECTION_INTROS = {
    "objective": "What the searcher optimises. Test images are never an objective: they are what gets reported.",
    "searcher": "Optuna through Ray Tune's OptunaSearch.",
    "scheduler": "Early stopping of weak trials.",
    "resources": "Per trial.",
    "run": "",
    "tracking": "MLflow.",
}

# After the scheduler's table: why and where to put ASHA's cuts on a DRW schedule (tuner/sweep/rungs.py).
RUNGS_AND_DRW = [
    "### Rungs and the DRW schedule", "",
    "ASHA compares the trials at each rung and stops those below the top 1/reduction_factor. Its rungs are",
    "grace_period x reduction_factor^k (20, 60 and 180 for grace 20 and factor 3 over 200 epochs), or the",
    "epochs `milestones` lists. A DRW recipe (LDAM-DRW, ELF(CE/LDAM)+DRW, the LDAM hybrids) trains unweighted at",
    "the full learning rate until 0-based epoch 160, then re-weights the classes and decays the learning rate",
    "(x0.01, x0.1 for the hybrids); ResLT and the CE hybrids decay at 160 too. A cut at epoch 20 or 60 ranks",
    "trials on that first phase, in which tail accuracy hardly exists and a high learning rate that looks worse",
    "often ends better: the launcher warns at the start when a cut comes before DRW starts or the learning rate",
    "first decays, naming the epochs.", "",
    "Recommended for the 200-epoch DRW presets: `milestones: [170]` (the shipped 200-epoch specs use it): one",
    "cut after ten epochs of the last phase, once the re-weighting and the smaller learning rate have moved",
    "every trial; ten epochs is a reading, not a measurement. With reduction_factor 3, two thirds of the trials",
    "stop at 170 and the sweep trains 90% of the epochs FIFO would: cuts that can be trusted save little on such",
    "a schedule. Earlier cuts save more only where they rank as the end does: `python -m tuner.report` prints",
    "each rung's Spearman correlation with the final val_acc over the trials that ran to the end (with their",
    "count), so a pilot sweep with earlier rungs shows whether they can be trusted.", "",
]


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(list(value)) if isinstance(value, tuple) else str(value)


def _declared_section(name: str) -> list[str]:
    rows = ["| key | default | allowed | meaning |", "| --- | --- | --- | --- |"]
    for spec in field_specs(SECTIONS[name]).values():
        rows.append(f"| `{spec.key}` | `{_shown(spec.default)}` | {constraint_text(spec)} | {spec.help} |")
    return rows


def render() -> str:
    out = ["# Sweep spec reference", "",
           "Generated by `python -m tuner.spec.reference` from the validator's own definitions; a test keeps it current.",
           "A spec is one YAML file; `python -m tuner.launch SPEC` validates all of it before Ray starts and lists",
           "every problem in one message (exit 2). Examples: `search_spaces/`.", ""]
    for section, intro, keys in STRUCTURE:
        out += [f"## {section}", ""] + ([intro, ""] if intro else [])
        out += ["| key | default | meaning |", "| --- | --- | --- |"]
        out += [f"| `{k}` | {d} | {m} |" for k, d, m in keys]
        out.append("")
    for section, intro in SECTION_INTROS.items():
        out += [f"## {section}", ""] + ([intro, ""] if intro else []) + _declared_section(section) + [""]
        if section == "scheduler":
            out += RUNGS_AND_DRW
    out += ["## Training fields (data, train, search)", "",
            "The fields of `trainables.config.TrainConfig`. Units and sources are in the descriptions.", "",
            "| field | type | default | allowed | meaning |", "| --- | --- | --- | --- | --- |"]
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        default = getattr(defaults, f.name)
        shown = list(default) if isinstance(default, tuple) else default
        out.append(f"| `{f.name}` | {field_kind(f.name)} | `{shown}` | {constraint_text(SPECS[f.name])} | {f.metadata['help']} |")
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render(), end="")
