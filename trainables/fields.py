"""Declared fields: a dataclass field that carries its help text and its rules, and the checks that read them.

    @dataclass(frozen=True)
    class RunSettings:
        num_samples: int = declared(8, "trials in the sweep", min=1)

    specs = field_specs(RunSettings)
    check_value("run.num_samples", 0, specs["num_samples"])     # ['run.num_samples: must be >= 1, got 0']

One declaration serves the validation, the command-line parsing and the generated reference
(docs/SPEC.md): trainables.config declares the training config this way and tuner.spec.schema the
sweep spec's sections. Rules: choices, min, max, min_exclusive, max_exclusive, nonempty (strings),
length and item_min/item_max/item_min_exclusive/item_max_exclusive (lists); key (the YAML key,
when it differs from the field name); doc_default (the default as the reference shows it).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def declared(default: Any, help: str, **rules: Any) -> Any:  # noqa: A002 - `help` as argparse names it
    """A dataclass field with a help text and validation rules; list defaults become tuples."""
    if isinstance(default, (list, tuple)):
        return field(default=tuple(default), metadata={"help": help, **rules})
    return field(default=default, metadata={"help": help, **rules})


@dataclass(frozen=True)
class FieldSpec:
    """What a declared field accepts."""

    name: str
    kind: str  # 'bool', 'int', 'float', 'str', 'tuple[int]', 'tuple[float]', 'tuple[str]' or 'tuple' (anything)
    allows_none: bool
    default: Any
    rules: Mapping[str, Any]

    @property
    def key(self) -> str:
        return self.rules.get("key", self.name)

    @property
    def help(self) -> str:
        return self.rules.get("help", "")


def _kind(annotation: Any) -> tuple[str, bool]:
    """(kind, whether None is allowed) of a field annotation."""
    args = typing.get_args(annotation)
    allows_none = typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args
    if allows_none:
        annotation = next(a for a in args if a is not type(None))
    if annotation is tuple:
        return "tuple", allows_none
    if typing.get_origin(annotation) is tuple:
        return f"tuple[{typing.get_args(annotation)[0].__name__}]", allows_none
    return annotation.__name__, allows_none


def field_specs(cls: type) -> dict[str, FieldSpec]:
    hints = typing.get_type_hints(cls)
    specs = {}
    for f in dataclasses.fields(cls):
        kind, allows_none = _kind(hints[f.name])
        specs[f.name] = FieldSpec(f.name, kind, allows_none, f.default, f.metadata)
    return specs


def _check_number(key: str, value: float, rules: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Range rules 'min', 'max', 'min_exclusive', 'max_exclusive' (with an optional prefix)."""
    out = []
    if not math.isfinite(value):
        return [f"{key}: must be a finite number, got {value}"]
    lo, hi = rules.get(prefix + "min"), rules.get(prefix + "max")
    lo_x, hi_x = rules.get(prefix + "min_exclusive"), rules.get(prefix + "max_exclusive")
    if lo is not None and value < lo:
        out.append(f"{key}: must be >= {lo}, got {value}")
    if hi is not None and value > hi:
        out.append(f"{key}: must be <= {hi}, got {value}")
    if lo_x is not None and value <= lo_x:
        out.append(f"{key}: must be > {lo_x}, got {value}")
    if hi_x is not None and value >= hi_x:
        out.append(f"{key}: must be < {hi_x}, got {value}")
    return out


def check_value(key: str, value: Any, spec: FieldSpec) -> list[str]:
    """Problems of one already-typed value (type, choices, ranges), each message starting with `key`."""
    rules, kind = spec.rules, spec.kind
    if value is None:
        return [] if spec.allows_none else [f"{key}: must not be empty (expected {kind})"]
    if kind == "bool":
        return [] if isinstance(value, bool) else [f"{key}: expected true or false, got {value!r}"]
    if kind in ("int", "float"):
        ok = isinstance(value, int) if kind == "int" else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            return [f"{key}: expected {'an integer' if kind == 'int' else 'a number'}, got {value!r}"]
        return _check_number(key, float(value), rules)
    if kind == "str":
        if not isinstance(value, str) or (rules.get("nonempty") and not value):
            return [f"{key}: expected a{' non-empty' if rules.get('nonempty') else ''} string, got {value!r}"]
        choices = rules.get("choices")
        if choices and value not in choices:
            return [f"{key}: expected one of {', '.join(choices)}; got {value!r}"]
        return []
    if not isinstance(value, (list, tuple)):
        return [f"{key}: expected a list, got {value!r}"]
    if kind == "tuple":
        return []
    item_type = {"tuple[int]": int, "tuple[float]": (int, float), "tuple[str]": str}[kind]
    out = []
    if "length" in rules and len(value) != rules["length"]:
        out.append(f"{key}: expected {rules['length']} items, got {len(value)}")
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, item_type):
            out.append(f"{key}[{i}]: expected {kind[6:-1]}, got {item!r}")
        elif kind != "tuple[str]":
            out += _check_number(f"{key}[{i}]", float(item), rules, prefix="item_")
    return out


def coerce_value(value: Any, spec: FieldSpec) -> Any:
    """A value as YAML or JSON gives it, in the field's type: lists become tuples, integers fill floats."""
    if isinstance(value, list):
        value = tuple(value)
    is_int = lambda v: isinstance(v, int) and not isinstance(v, bool)
    if spec.kind == "float" and is_int(value):
        return float(value)
    if spec.kind == "tuple[float]" and isinstance(value, tuple):
        return tuple(float(v) if is_int(v) else v for v in value)
    return value


def parse_text(key: str, text: str, spec: FieldSpec) -> Any:
    """A command-line string in the field's type; ValueError naming `key` when it cannot be read."""
    kind, s = spec.kind, text.strip()
    if s.lower() in ("none", "null", "") and spec.allows_none:
        return None
    try:
        if kind == "bool":
            low = s.lower()
            if low in ("true", "1", "yes", "on"):
                return True
            if low in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if kind == "int":
            return int(s)
        if kind == "float":
            return float(s)
        if kind == "str":
            return s
        items = json.loads(s) if s.startswith("[") else [p.strip() for p in s.split(",") if p.strip()]
        conv = {"tuple[int]": int, "tuple[float]": float, "tuple[str]": str, "tuple": str}[kind]
        return tuple(conv(i) for i in items)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise ValueError(f"{key}: cannot read {text!r} as {kind}") from None


def constraint_text(spec: FieldSpec) -> str:
    """The rules in words, for the reference: 'one of a, b', '>= 1', '< 1.0', '3 items', 'or null'."""
    rules, parts = spec.rules, []
    if "choices" in rules:
        parts.append("one of " + ", ".join(rules["choices"]))
    lo = [f">= {rules['min']}"] if "min" in rules else ([f"> {rules['min_exclusive']}"] if "min_exclusive" in rules else [])
    hi = [f"<= {rules['max']}"] if "max" in rules else ([f"< {rules['max_exclusive']}"] if "max_exclusive" in rules else [])
    parts += lo + hi
    if "length" in rules:
        parts.append(f"{rules['length']} items")
    if spec.allows_none:
        parts.append("or null")
    return "; ".join(parts)
