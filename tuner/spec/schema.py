"""The sweep spec: one YAML file, validated completely before anything starts.

    spec = load_spec("search_spaces/hybrid.yaml")      # SpecError lists every problem at once

Sections (docs/SPEC.md has every key with its unit and default):
    name, description
    data:      dataset, imbalance_ratio, data_dir, ... (the data fields of trainables' TrainConfig)
    train:     preset plus any TrainConfig field: the values every trial shares
    search:    field -> {type: uniform|loguniform|int|choice, low, high, step, values, when}
    objective: metric val_acc (max); optional second: flops_ratio (min)
    searcher:  sampler tpe|random|nsga2, seed, initial_points, warm_start_from
    scheduler: type asha|fifo, time_attr, grace_period, reduction_factor, max_t, milestones
    resources: cpu, gpu per trial; trials_per_worker, worker_strategy (several trials per worker process)
    run:       num_samples, max_concurrent, storage_path, checkpoint_every, keep_checkpoints, max_failures
    tracking:  uri, experiment, register_model, model_name

YAML is read with a safe loader that also rejects duplicate keys. Messages name the file and the
key path (`search.lr.low: must be > 0, got 0.0`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainables.config import (
    DATA_FIELDS,
    FIELDS,
    MEMBER_SHARED_FIELDS,
    MEMBER_STRATEGIES,
    ConfigError,
    TrainConfig,
    coerce,
    field_kind,
    value_problems,
    with_overrides,
)
from trainables.fields import check_value, coerce_value, declared, field_specs
from trainables.names import COST, OBJECTIVE
from trainables.presets import PRESETS, build_preset

OBJECTIVES = {OBJECTIVE: "max"}  # the test images are never an objective: they are what we report
SECOND_OBJECTIVES = {COST: "min"}
SAMPLERS = ("tpe", "random", "nsga2")
PARAM_TYPES = ("uniform", "loguniform", "int", "choice")
DERIVED_CONDITIONS = {"has_exits": "bool"}  # conditions may also test these derived properties
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class SpecError(ValueError):
    """A spec a user must fix; str() is one message naming the file and every offending key."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path, self.problems = str(path), problems
        super().__init__(f"{path}: " + "; ".join(problems))


@dataclass(frozen=True)
class Param:
    """One searched TrainConfig field."""

    name: str
    kind: str  # uniform | loguniform | int | choice
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False  # int only
    values: tuple = ()
    when: dict[str, tuple] = field(default_factory=dict)  # field -> allowed values; all must hold


# The sections below are declared once: each field's default, rules and help are what the parser
# checks (_parse_declared) and what docs/SPEC.md shows (tuner/spec/reference.py). Checks that relate two
# values (a mode and its metric, the grace period and the epochs) follow the generic ones.


@dataclass(frozen=True)
class Objective:
    metric: str = declared(OBJECTIVE, "primary objective; ASHA uses it", choices=tuple(OBJECTIVES))
    mode: str = declared("max", "must match the metric's direction (" + ", ".join(f"{k}: {v}" for k, v in OBJECTIVES.items()) + ")",
                         choices=("max", "min"))
    second_metric: str | None = declared(None, "optional second objective (makes the search multi-objective; needs exits)",
                                         choices=tuple(SECOND_OBJECTIVES), key="second.metric")
    second_mode: str | None = declared(None, "the second objective's direction (" + ", ".join(
        f"{k}: {v}" for k, v in SECOND_OBJECTIVES.items()) + "); null: that direction", choices=("max", "min"), key="second.mode")

    @property
    def metrics(self) -> list[str]:
        return [self.metric] + ([self.second_metric] if self.second_metric else [])

    @property
    def modes(self) -> list[str]:
        return [self.mode] + ([self.second_mode] if self.second_mode else [])


@dataclass(frozen=True)
class Searcher:
    sampler: str = declared("tpe", "Optuna's sampler (tpe and nsga2 handle two objectives)", choices=SAMPLERS)
    seed: int | None = declared(0, "sampler seed (null: random)", min=0)
    initial_points: tuple = declared((), "list of {searched field: value} tried first (e.g. the published settings)")
    warm_start_from: str | None = declared(
        None, "a previous sweep (its name under run.storage_path, its folder, or its spec file) whose completed trials, "
              "with their values, enter the Optuna study before its first proposal; trials outside this search space "
              "are skipped (tuner/sweep/warm_start.py)", nonempty=True)


@dataclass(frozen=True)
class Scheduler:
    kind: str = declared("asha", "asha, or fifo (no early stopping)", choices=("asha", "fifo"), key="type")
    time_attr: str = declared("epoch", "epoch (= training_iteration: one report per epoch)", choices=("epoch", "training_iteration"))
    grace_period: int | None = declared(None, "epochs every trial runs before it can be stopped (null: min(10, max_t))", min=1)
    reduction_factor: float = declared(3.0, "ASHA keeps 1/reduction_factor of the trials at each rung", min_exclusive=1)
    max_t: int | None = declared(None, "epochs of the last rung (null: train.epochs)", min=1)
    milestones: tuple[int, ...] = declared(
        (), "epochs at which ASHA compares trials and stops all but the top 1/reduction_factor, instead of its geometric "
            "rungs (grace_period x reduction_factor^k); increasing, below max_t. DRW presets: [170] (docs/SPEC.md, "
            "'Rungs and the DRW schedule')", item_min=1)

    def rungs(self, max_t: int) -> tuple[int, ...]:
        """The epochs where ASHA may stop a trial, before max_t (where every trial ends): the milestones, else Ray
        Tune's geometric rungs grace_period x reduction_factor^k, each at the first whole epoch it reaches (a trial
        reports whole epochs, so Ray compares at that one too)."""
        if self.kind != "asha":
            return ()
        if self.milestones:
            return tuple(self.milestones)
        out, k = [], 0
        while self.grace_period * self.reduction_factor ** k < max_t:
            out.append(math.ceil(self.grace_period * self.reduction_factor ** k))
            k += 1
        return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class Resources:
    cpu: float = declared(1.0, "CPU cores per trial (also the trial's torch threads); with trials_per_worker > 1, "
                               "per worker", min_exclusive=0)
    gpu: float = declared(0.0, "a fraction of one GPU per trial (0.125: eight trials per GPU; each bounds its own memory) "
                               "or whole GPUs; refused when the cluster has none. With trials_per_worker > 1: 1, "
                               "a worker per GPU", min=0)
    trials_per_worker: int = declared(1, "trials one worker process trains at once, each still its own Ray Tune trial "
                                         "(1: a process per trial); the searched values may not change the architecture, "
                                         "batch size or data", min=1)
    train_workers: int = declared(1, "Ray Train workers that train each trial data-parallel, each with `cpu` cores and "
                                      "`gpu` whole GPUs (NCCL on GPUs, gloo on CPUs); train.batch_size stays the global "
                                      "batch, split between them, so lr needs no change (docs/DISTRIBUTED.md)", min=1)
    worker_strategy: str = declared("auto", "how a worker runs its trials: streams (each its own step; CUDA graphs on "
                                            "their own streams), fused (one vmapped model), auto (streams)",
                                    choices=("auto", *MEMBER_STRATEGIES))

    @property
    def uses_workers(self) -> bool:
        return self.trials_per_worker > 1

    @property
    def data_parallel(self) -> bool:
        return self.train_workers > 1

    @property
    def per_trial(self) -> tuple[float, float]:
        """(CPUs, GPUs) one trial holds: all its train workers' together."""
        return self.cpu * self.train_workers, self.gpu * self.train_workers

    @property
    def strategy(self) -> str:
        return "streams" if self.worker_strategy == "auto" else self.worker_strategy


DEFAULT_STORAGE = "experiments"  # run.storage_path: where sweeps launched from a folder keep their experiment folders


@dataclass(frozen=True)
class RunSettings:
    num_samples: int = declared(8, "trials in the sweep", min=1)
    max_concurrent: int | None = declared(None, "trials at once (null: as many as resources allow)", min=1)
    storage_path: str = declared(DEFAULT_STORAGE, "folder (relative to the working directory) or s3://, gs:// URI holding "
                                                "experiment folders; must be shared on a multi-node cluster", nonempty=True)
    checkpoint_every: int = declared(5, "epochs between checkpoints (and always the last epoch; a trial ASHA stops "
                                        "before its first has none, and if it ranks first no model is registered)", min=1)
    keep_checkpoints: int = declared(2, "checkpoints kept per trial", min=1)
    max_failures: int = declared(2, "retries of a crashed trial, each from its last checkpoint", min=0)
    min_free_mb: float = declared(100.0, "free space (MB) every local folder the sweep writes must keep: below it the "
                                         "sweep does not start, or stops resumably (exit 4)", min=0)


@dataclass(frozen=True)
class Tracking:
    uri: str | None = declared(None, "tracking URI; null: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the working "
                                     "directory; a server (http://host:5000) on clusters", nonempty=True)
    experiment: str | None = declared(None, "MLflow experiment (null: the sweep's name)", nonempty=True)
    register_model: bool = declared(True, "register the best trial's model")
    model_name: str | None = declared(None, "registered model name (null: the sweep's name)", nonempty=True)


SECTIONS = {"objective": Objective, "searcher": Searcher, "scheduler": Scheduler, "resources": Resources, "run": RunSettings,
            "tracking": Tracking}


@dataclass(frozen=True)
class SweepSpec:
    path: str
    text: str  # the file as written, logged with the sweep
    name: str
    description: str
    preset: str | None
    fixed: dict[str, Any]  # data + train values as written (preset applied on top in base_config)
    base_config: TrainConfig  # preset + fixed values: what every trial starts from
    search: tuple[Param, ...]
    objective: Objective
    searcher: Searcher
    scheduler: Scheduler
    resources: Resources
    run: RunSettings
    tracking: Tracking

    @property
    def max_t(self) -> int:
        return self.scheduler.max_t or self.base_config.epochs

    @property
    def mlflow_experiment(self) -> str:
        return self.tracking.experiment or self.name

    @property
    def model_name(self) -> str:
        return self.tracking.model_name or self.name


# ------------------------------------------------------------------------------------------------
# YAML


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice (line {key_node.start_mark.line + 1})", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> tuple[Any, str]:
    """(document, text) of a YAML file; SpecError when it cannot be read or parsed."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(path, ["file not found"]) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise SpecError(path, [f"cannot read the file ({type(exc).__name__})"]) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader), text
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(path, [f"not valid YAML{where}: {problem}"]) from None


# ------------------------------------------------------------------------------------------------
# Validation helpers: each appends "key.path: message" strings to `problems`.


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    def section(self, raw: dict, key: str, known: tuple[str, ...]) -> dict:
        value = raw.get(key, {})
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(key, f"expected a mapping with keys {', '.join(known)}, got {type(value).__name__}")
            return {}
        self.unknown(key, value, known)
        return value

    def unknown(self, key: str, mapping: dict, known: tuple[str, ...]) -> None:
        for k in mapping:
            if k not in known:
                self.add(f"{key}.{k}", f"unknown key; expected one of {', '.join(known)}")

    def number(self, key: str, value: Any, *, integer: bool = False, lo: float | None = None, lo_open: bool = False,
               hi: float | None = None, allow_none: bool = False) -> Any:
        if value is None:
            if not allow_none:
                self.add(key, "must not be empty")
            return None
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            self.add(key, f"expected {'an integer' if integer else 'a number'}, got {value!r}")
            return None
        if not math.isfinite(value):
            self.add(key, f"must be a finite number, got {value}")
            return None
        if lo is not None and (value <= lo if lo_open else value < lo):
            self.add(key, f"must be {'>' if lo_open else '>='} {lo}, got {value}")
            return None
        if hi is not None and value > hi:
            self.add(key, f"must be <= {hi}, got {value}")
            return None
        return value

    def boolean(self, key: str, value: Any) -> Any:
        if not isinstance(value, bool):
            self.add(key, f"expected true or false, got {value!r}")
            return None
        return value

    def field_value(self, key: str, name: str, value: Any) -> Any:
        """A TrainConfig field value as written in YAML, in the field's type, its problems recorded."""
        value = coerce(name, value)
        for p in value_problems(name, value):
            self.add(key, p.split(": ", 1)[1] if p.startswith(name) else p)
        return value


# ------------------------------------------------------------------------------------------------


def _parse_fixed(c: _Checker, raw: dict) -> tuple[str | None, dict[str, Any]]:
    fixed: dict[str, Any] = {}
    data = c.section(raw, "data", DATA_FIELDS)
    for k, v in data.items():
        if k in DATA_FIELDS:
            fixed[k] = c.field_value(f"data.{k}", k, v)
    train = raw.get("train", {}) or {}
    if not isinstance(train, dict):
        c.add("train", f"expected a mapping of training values, got {type(train).__name__}")
        train = {}
    preset = train.get("preset")
    if preset is not None and preset not in PRESETS:
        c.add("train.preset", f"unknown preset {preset!r}; known presets: {', '.join(sorted(PRESETS))}")
        preset = None
    for k, v in train.items():
        if k == "preset":
            continue
        if k not in FIELDS:
            c.add(f"train.{k}", "unknown training field; see docs/SPEC.md (or `python -m trainables.train --help`)")
            continue
        if k in fixed:
            c.add(f"train.{k}", f"also set in data.{k}; set it once")
            continue
        fixed[k] = c.field_value(f"train.{k}", k, v)
    data_dir = fixed.get("data_dir")
    if isinstance(data_dir, str) and not Path(data_dir).expanduser().is_dir():
        c.add("data.data_dir", f"folder {data_dir} does not exist")
    return preset, fixed


def _parse_param(c: _Checker, name: str, raw: Any, later: set[str], fixed: dict) -> Param | None:
    """One search entry; `later` holds the names searched after it (conditions may not look ahead)."""
    key = f"search.{name}"
    if name not in FIELDS:
        c.add(key, "unknown training field; only TrainConfig fields can be searched")
        return None
    if name in fixed and not (isinstance(raw, dict) and raw.get("when")):
        # a conditional parameter may be fixed too: the fixed value is the one trials use when its condition fails
        c.add(key, "is both fixed (in data/train) and searched; remove one (or give the search a `when:`, and the fixed "
                   "value is the one used where it does not hold)")
        return None
    if name in DATA_FIELDS:
        c.add(key, "data fields are fixed for a sweep (every trial must see the same data); set it under data")
        return None
    if not isinstance(raw, dict):
        c.add(key, "expected a mapping like {type: uniform, low: 0.1, high: 0.9}")
        return None
    kind = raw.get("type")
    if kind not in PARAM_TYPES:
        c.add(f"{key}.type", f"expected one of {', '.join(PARAM_TYPES)}; got {kind!r}")
        return None
    known = {"uniform": ("type", "low", "high", "step", "when"), "loguniform": ("type", "low", "high", "when"),
             "int": ("type", "low", "high", "step", "log", "when"), "choice": ("type", "values", "when")}[kind]
    c.unknown(key, raw, known)
    fkind = field_kind(name)
    before = len(c.problems)
    param = dict(name=name, kind=kind)
    if kind == "choice":
        values = raw.get("values")
        if not isinstance(values, list) or not values:
            c.add(f"{key}.values", "expected a non-empty list of values")
            return None
        coerced = []
        for i, v in enumerate(values):
            coerced.append(c.field_value(f"{key}.values[{i}]", name, v))
        if len({repr(v) for v in coerced}) != len(coerced):
            c.add(f"{key}.values", "lists a value twice")
        param["values"] = tuple(coerced)
    else:
        if kind in ("uniform", "loguniform") and fkind != "float":
            c.add(f"{key}.type", f"{kind} needs a float field; {name} is {fkind} (use int or choice)")
            return None
        if kind == "int" and fkind != "int":
            c.add(f"{key}.type", f"int needs an integer field; {name} is {fkind}")
            return None
        integer = kind == "int"
        lo = c.number(f"{key}.low", raw.get("low"), integer=integer)
        hi = c.number(f"{key}.high", raw.get("high"), integer=integer)
        if lo is not None and hi is not None:
            if lo >= hi:
                c.add(key, f"empty or inverted range: low {lo} must be below high {hi}")
            if (kind == "loguniform" or raw.get("log")) and lo <= 0:
                c.add(f"{key}.low", f"a log scale needs low > 0, got {lo}")
            for end, v in (("low", lo), ("high", hi)):
                c.field_value(f"{key}.{end}", name, v)
        step = raw.get("step")
        if step is not None:
            step = c.number(f"{key}.step", step, integer=integer, lo=0, lo_open=True)
            if step is not None and lo is not None and hi is not None and step > hi - lo:
                c.add(f"{key}.step", f"step {step} is wider than the range {lo}..{hi}")
        if "log" in raw:
            c.boolean(f"{key}.log", raw["log"])
        param.update(low=lo, high=hi, step=step, log=bool(raw.get("log", False)))
    when = raw.get("when", {}) or {}
    conds: dict[str, tuple] = {}
    if not isinstance(when, dict):
        c.add(f"{key}.when", "expected a mapping like {loss: ldam} or {has_exits: true}")
    else:
        for cond_field, allowed in when.items():
            ckey = f"{key}.when.{cond_field}"
            allowed_list = allowed if isinstance(allowed, list) else [allowed]
            if cond_field in DERIVED_CONDITIONS:
                for v in allowed_list:
                    c.boolean(ckey, v)
            elif cond_field not in FIELDS:
                c.add(ckey, f"unknown field; conditions test TrainConfig fields or {', '.join(DERIVED_CONDITIONS)}")
                continue
            else:
                if cond_field in later or cond_field == name:
                    c.add(ckey, f"{cond_field} is searched at or below {name}; list it before the parameters that depend on it")
                allowed_list = [c.field_value(ckey, cond_field, v) for v in allowed_list]
            conds[cond_field] = tuple(allowed_list)
    param["when"] = conds
    if len(c.problems) > before:
        return None
    return Param(**param)


def _parse_search(c: _Checker, raw: dict, fixed: dict) -> tuple[Param, ...]:
    search = raw.get("search", {}) or {}
    if not isinstance(search, dict):
        c.add("search", "expected a mapping of field -> distribution")
        return ()
    names = [str(n) for n in search]
    params = [_parse_param(c, n, search[n], set(names[i + 1:]), fixed) for i, n in enumerate(names)]
    return tuple(p for p in params if p is not None)


def _parse_declared(c: _Checker, raw: dict, section: str, special: tuple[str, ...] = ()) -> dict[str, Any]:
    """A section's values by its declaration: unknown keys refused, each value checked; a value with a
    problem keeps its default (the problem is reported). Fields in `special` are left to the caller."""
    specs = field_specs(SECTIONS[section])
    keys = [spec.key.split(".")[0] for spec in specs.values()]
    sec = c.section(raw, section, tuple(dict.fromkeys(keys)))
    values = {}
    for name, spec in specs.items():
        if name in special:
            continue
        value = coerce_value(sec.get(spec.key, spec.default), spec)
        problems = check_value(f"{section}.{spec.key}", value, spec)
        c.problems += problems
        values[name] = spec.default if problems else value
    values["_section"] = sec
    return values


def _parse_objective(c: _Checker, raw: dict) -> Objective:
    values = _parse_declared(c, raw, "objective", special=("second_metric", "second_mode"))
    metric, mode = values["metric"], values["mode"]
    if OBJECTIVES[metric] != mode:
        c.add("objective.mode", f"{metric} is maximised; got mode {mode!r}")
    second = values["_section"].get("second")
    if second is None:
        return Objective(metric, mode)
    if not isinstance(second, dict):
        c.add("objective.second", "expected a mapping like {metric: flops_ratio, mode: min}")
        return Objective(metric, mode)
    c.unknown("objective.second", second, ("metric", "mode"))
    specs = field_specs(Objective)
    second_metric = second.get("metric")
    second_mode = second.get("mode") or SECOND_OBJECTIVES.get(second_metric, "min")
    problems = check_value("objective.second.metric", second_metric, specs["second_metric"]) if second_metric is not None \
        else ["objective.second.metric: must not be empty (expected str)"]
    problems += check_value("objective.second.mode", second_mode, specs["second_mode"])
    c.problems += problems
    if problems:
        return Objective(metric, mode)
    if SECOND_OBJECTIVES[second_metric] != second_mode:
        c.add("objective.second.mode", f"{second_metric} is minimised; got mode {second_mode!r}")
    return Objective(metric, mode, second_metric, second_mode)


def _parse_searcher(c: _Checker, raw: dict, params: tuple[Param, ...]) -> Searcher:
    values = _parse_declared(c, raw, "searcher", special=("initial_points",))
    points = values["_section"].get("initial_points", []) or []
    by_name = {p.name: p for p in params}
    checked = []
    if not isinstance(points, list):
        c.add("searcher.initial_points", "expected a list of {field: value} mappings")
        points = []
    for i, point in enumerate(points):
        key = f"searcher.initial_points[{i}]"
        if not isinstance(point, dict):
            c.add(key, "expected a mapping of searched field -> value")
            continue
        clean = {}
        for name, value in point.items():
            if name not in by_name:
                c.add(f"{key}.{name}", f"not a searched parameter; searched: {', '.join(by_name) or 'none'}")
                continue
            p = by_name[name]
            value = c.field_value(f"{key}.{name}", name, value)
            if p.kind == "choice" and value not in p.values:
                c.add(f"{key}.{name}", f"{value!r} is not one of the choices {list(p.values)}")
            elif p.kind != "choice" and isinstance(value, (int, float)) and not (p.low <= value <= p.high):
                c.add(f"{key}.{name}", f"{value} is outside the searched range {p.low}..{p.high}")
            clean[name] = value
        checked.append(clean)
    return Searcher(values["sampler"], values["seed"], tuple(checked), values["warm_start_from"])


def _parse_scheduler(c: _Checker, raw: dict, epochs: int) -> Scheduler:
    values = _parse_declared(c, raw, "scheduler")
    max_t, grace = values["max_t"], values["grace_period"]
    if max_t is not None and max_t > epochs:
        c.add("scheduler.max_t", f"{max_t} exceeds the training epochs ({epochs}); trials never get that far")
    horizon = max_t or epochs
    milestones = values["milestones"]
    if milestones:
        if grace is not None:
            c.add("scheduler.milestones", "give milestones or grace_period, not both (the first milestone is the first cut)")
        if list(milestones) != sorted(set(milestones)):
            c.add("scheduler.milestones", f"must be increasing, got {list(milestones)}")
        if milestones[-1] >= horizon:
            c.add("scheduler.milestones", f"{milestones[-1]} is not below max_t/epochs ({horizon}): every trial ends there anyway")
        grace = milestones[0]
    grace = min(10, horizon) if grace is None else grace
    if grace > horizon:
        c.add("scheduler.grace_period", f"{grace} exceeds max_t/epochs ({horizon}); nothing could be stopped")
    return Scheduler(values["kind"], values["time_attr"], grace, values["reduction_factor"], max_t, milestones)


def _parse_resources(c: _Checker, raw: dict, params: tuple[Param, ...], base: TrainConfig) -> Resources:
    values = _parse_declared(c, raw, "resources")
    gpu, per_worker, train_workers = values["gpu"], values["trials_per_worker"], values["train_workers"]
    if gpu > 1 and gpu != int(gpu):
        c.add("resources.gpu", f"a trial takes a fraction of one GPU (0 < gpu <= 1) or whole GPUs; got {gpu}")
    if isinstance(train_workers, int) and train_workers > 1:
        if isinstance(per_worker, int) and per_worker > 1:
            c.add("resources.train_workers", f"a trial trained by {train_workers} Ray Train workers holds its own devices, "
                                             f"and trials_per_worker: {per_worker} shares one device between trials; "
                                             "use one of them (trials_per_worker: 1 or train_workers: 1)")
        if 0 < gpu < 1:
            c.add("resources.gpu", f"with train_workers > 1 each train worker holds whole GPUs (NCCL runs one process "
                                   f"per GPU); got {gpu}: use gpu: 1, or train_workers: 1 to share a GPU between trials")
        if base.batch_size < train_workers and "batch_size" not in {p.name for p in params}:
            c.add("resources.train_workers", f"train.batch_size {base.batch_size} is the global batch, split between "
                                             f"{train_workers} train workers: it needs at least one image for each")
    if isinstance(per_worker, int) and per_worker > 1 and base.streamed:
        # A worker's members share one resident copy of the images and step together (trainables/members.py);
        # a streamed set has no resident copy to share.
        c.add("resources.trials_per_worker", f"{base.dataset} streams its images from disk, and the trials of one worker "
                                             "share one copy held in memory; use trials_per_worker: 1 for image-file sets")
    elif isinstance(per_worker, int) and per_worker > 1:
        if gpu not in (0, 1):
            c.add("resources.gpu", f"with trials_per_worker > 1 a worker holds one whole GPU (gpu: 1) or none (gpu: 0); got {gpu}")
        shared = [p.name for p in params if p.name in MEMBER_SHARED_FIELDS]
        if shared:
            c.add("resources.trials_per_worker", f"the trials of one worker share their architecture, batch size and data, "
                                                 f"but the search changes {', '.join(shared)}; search them with "
                                                 "trials_per_worker: 1, or fix them in train/data")
    return Resources(**{k: v for k, v in values.items() if k != "_section"})


def _parse_run(c: _Checker, raw: dict) -> RunSettings:
    values = _parse_declared(c, raw, "run")
    return RunSettings(**{k: v for k, v in values.items() if k != "_section"})


def _parse_tracking(c: _Checker, raw: dict) -> Tracking:
    values = _parse_declared(c, raw, "tracking")
    uri = values["uri"]
    if uri and not re.match(r"^(sqlite|postgresql|mysql|mssql|https?|file|databricks)[:+]", uri):
        c.add("tracking.uri", f"expected an MLflow tracking URI (sqlite:///..., http://host:port, ...), got {uri!r}")
    return Tracking(**{k: v for k, v in values.items() if k != "_section"})


def config_values(config: TrainConfig) -> dict[str, Any]:
    """Field values plus the derived properties conditions may test."""
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    values["has_exits"] = config.has_exits
    return values


def condition_holds(param: Param, values: dict[str, Any]) -> bool:
    return all(values.get(name) in allowed for name, allowed in param.when.items())


def _in_context(base: TrainConfig, params: tuple[Param, ...], p: Param, v: Any) -> TrainConfig:
    """The fixed values with p = v where p applies: its own conditions met (their first allowed value), and
    every conditional one-value choice that then holds applied too (what a choice brings with it, e.g. the
    full-power hybrid's widths with `reslt_heads_at: all`)."""
    config = with_overrides(base, {f: allowed[0] for f, allowed in p.when.items() if f in FIELDS})
    config = with_overrides(config, {p.name: v})
    for q in params:
        if q is not p and q.kind == "choice" and len(q.values) == 1 and q.when and condition_holds(q, config_values(config)):
            config = with_overrides(config, {q.name: q.values[0]})
    return config


def _cross_check(c: _Checker, base: TrainConfig, params: tuple[Param, ...]) -> None:
    """Every searched value must make a valid config with the fixed values, one at a time, where it applies."""
    for p in params:
        candidates = list(p.values) if p.kind == "choice" else [p.low, p.high]
        for v in candidates:
            try:
                _in_context(base, params, p, v).validate()
            except ConfigError as exc:
                c.add(f"search.{p.name}", f"value {v!r} makes an invalid configuration: {exc}")
                break


TOP_LEVEL = ("name", "description", "data", "train", "search", "objective", "searcher", "scheduler", "resources", "run", "tracking")


def parse_spec(raw: Any, path: str | Path, text: str = "", name_override: str | None = None,
               num_samples_override: int | None = None, storage_override: str | None = None) -> SweepSpec:
    """Validate an already-loaded YAML document; SpecError with every problem."""
    c = _Checker()
    if not isinstance(raw, dict):
        raise SpecError(path, [f"the file must be a YAML mapping with keys {', '.join(TOP_LEVEL)}"])
    c.unknown("(top level)", raw, TOP_LEVEL)
    c.problems = [p.replace("(top level).", "") for p in c.problems]
    name = name_override if name_override is not None else raw.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or ".." in name:
        c.add("name", f"expected letters, digits, '_', '-' or '.' (a folder and MLflow name), got {name!r}")
        name = "invalid"
    description = raw.get("description", "")
    if not isinstance(description, str):
        c.add("description", "expected a string")
        description = ""
    preset, fixed = _parse_fixed(c, raw)
    base = TrainConfig()
    fixed_ok = len(c.problems)
    try:
        base = build_preset(preset, **fixed) if preset else TrainConfig.from_dict(fixed)
        base.validate()
    except ConfigError as exc:
        if len(c.problems) == fixed_ok:  # not already reported field by field
            c.add("train", str(exc))
    params = _parse_search(c, raw, fixed)
    objective = _parse_objective(c, raw)
    searcher = _parse_searcher(c, raw, params)
    scheduler = _parse_scheduler(c, raw, base.epochs)
    resources = _parse_resources(c, raw, params, base)
    run = _parse_run(c, raw)
    if num_samples_override is not None:
        if num_samples_override < 1:
            c.add("--num-samples", f"must be >= 1, got {num_samples_override}")
        run = RunSettings(**{**run.__dict__, "num_samples": num_samples_override})
    if storage_override is not None:
        if not storage_override.strip():
            c.add("--storage-path", "must not be empty")
        run = RunSettings(**{**run.__dict__, "storage_path": storage_override})
    tracking = _parse_tracking(c, raw)
    if objective.second_metric and not base.has_exits and not any(p.name == "exit_taps" for p in params):
        c.add("objective.second", "flops_ratio only varies for models with early exits (train.exit_taps)")
    if base.inference_threshold_selection != "fixed" and any(p.name == "inference_exit_threshold" for p in params):
        c.add("search.inference_exit_threshold",
              f"the training config selects s on the validation split (inference_threshold_selection: "
              f"{base.inference_threshold_selection}); set train.inference_threshold_selection: fixed to search it")
    if not c.problems:
        _cross_check(c, base, params)
    if c.problems:
        raise SpecError(path, c.problems)
    return SweepSpec(
        path=str(path), text=text, name=name, description=description, preset=preset, fixed=fixed,
        base_config=base, search=params, objective=objective, searcher=searcher, scheduler=scheduler,
        resources=resources, run=run, tracking=tracking,
    )


def load_spec(path: str | Path, name_override: str | None = None, num_samples_override: int | None = None,
              storage_override: str | None = None) -> SweepSpec:
    path = Path(path)
    raw, text = read_yaml(path)
    return parse_spec(raw, path, text, name_override, num_samples_override, storage_override)
