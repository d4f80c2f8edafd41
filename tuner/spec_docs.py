"""Generate docs/SPEC.md, the spec reference, from the definitions the validator uses.

    python -m tuner.spec_docs > docs/SPEC.md

A test fails when docs/SPEC.md differs from what this prints, so the reference cannot drift
from the code.
"""

from __future__ import annotations

import dataclasses

from trainables.config import FIELDS, TrainConfig, field_allows_none, field_kind
from trainables.presets import PRESETS
from tuner.spec import DATA_FIELDS, OBJECTIVES, PARAM_TYPES, SAMPLERS, SECOND_OBJECTIVES

SECTIONS: list[tuple[str, str, list[tuple[str, str, str]]]] = [
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
    ("search", "Searched fields, suggested in the order listed. A field is either fixed (data/train) or searched, never both.", [
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
    ("objective", "What the searcher optimises. Test images are never an objective: they are what gets reported.", [
        ("metric", "val_acc", f"primary objective: {', '.join(f'{k} ({v})' for k, v in OBJECTIVES.items())}; ASHA uses it"),
        ("mode", "max", "must match the metric's direction"),
        ("second", "none", f"optional {{metric, mode}}: {', '.join(f'{k} ({v})' for k, v in SECOND_OBJECTIVES.items())}; "
                           "makes the search multi-objective (needs exits)"),
    ]),
    ("searcher", "Optuna through Ray Tune's OptunaSearch.", [
        ("sampler", "tpe", f"one of {', '.join(SAMPLERS)} (tpe and nsga2 handle two objectives)"),
        ("seed", "0", "sampler seed (null: random)"),
        ("initial_points", "[]", "list of {searched field: value} tried first (e.g. the published settings)"),
    ]),
    ("scheduler", "Early stopping of weak trials.", [
        ("type", "asha", "asha or fifo (no early stopping)"),
        ("time_attr", "epoch", "epoch (= training_iteration: one report per epoch)"),
        ("grace_period", "min(10, max_t)", "epochs every trial runs before it can be stopped"),
        ("reduction_factor", "3", "ASHA keeps 1/reduction_factor of trials at each rung (> 1)"),
        ("max_t", "train.epochs", "epochs of the last rung"),
    ]),
    ("resources", "Per trial.", [
        ("cpu", "1", "CPU cores (also the trial's torch threads)"),
        ("gpu", "0", "a fraction of one GPU (0.125: eight trials per GPU; each bounds its own memory) or whole GPUs; "
                     "refused when the cluster has none"),
    ]),
    ("run", "", [
        ("num_samples", "8", "trials in the sweep"),
        ("max_concurrent", "null", "trials at once (null: as many as resources allow)"),
        ("storage_path", "experiments", "folder (relative to the working directory) or s3://, gs:// URI holding experiment "
                                        "folders; must be shared on a multi-node cluster"),
        ("checkpoint_every", "5", "epochs between checkpoints (and always the last epoch)"),
        ("keep_checkpoints", "2", "checkpoints kept per trial"),
        ("max_failures", "2", "retries of a crashed trial, each from its last checkpoint"),
    ]),
    ("tracking", "MLflow.", [
        ("uri", "null", "tracking URI; null: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the working directory; "
                        "a server (http://host:5000) on clusters"),
        ("experiment", "name", "MLflow experiment"),
        ("register_model", "true", "register the best trial's model"),
        ("model_name", "name", "registered model name"),
    ]),
]


def _constraint(name: str) -> str:
    rules = FIELDS[name].metadata
    parts = []
    if "choices" in rules:
        parts.append("one of " + ", ".join(rules["choices"]))
    lo = [f">= {rules['min']}"] if "min" in rules else ([f"> {rules['min_exclusive']}"] if "min_exclusive" in rules else [])
    hi = [f"<= {rules['max']}"] if "max" in rules else ([f"< {rules['max_exclusive']}"] if "max_exclusive" in rules else [])
    parts += lo + hi
    if "length" in rules:
        parts.append(f"{rules['length']} items")
    if field_allows_none(name):
        parts.append("or null")
    return "; ".join(parts)


def render() -> str:
    out = ["# Sweep spec reference", "",
           "Generated by `python -m tuner.spec_docs` from the validator's own definitions; a test keeps it current.",
           "A spec is one YAML file; `python -m tuner.launch SPEC` validates all of it before Ray starts and lists",
           "every problem in one message (exit 2). Examples: `search_spaces/`.", ""]
    for section, intro, keys in SECTIONS:
        out += [f"## {section}", ""] + ([intro, ""] if intro else [])
        out += ["| key | default | meaning |", "| --- | --- | --- |"]
        out += [f"| `{k}` | {d} | {m} |" for k, d, m in keys]
        out.append("")
    out += ["## Training fields (data, train, search)", "",
            "The fields of `trainables.config.TrainConfig`. Units and sources are in the descriptions.", "",
            "| field | type | default | allowed | meaning |", "| --- | --- | --- | --- | --- |"]
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        default = getattr(defaults, f.name)
        shown = list(default) if isinstance(default, tuple) else default
        out.append(f"| `{f.name}` | {field_kind(f.name)} | `{shown}` | {_constraint(f.name)} | {f.metadata['help']} |")
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render(), end="")
