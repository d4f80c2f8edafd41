"""The report's figures of the search space itself (matplotlib, PNG, in the style of plots.py).

    importance_bars(importances, path)              each searched parameter's importance, per objective and evaluator
    slices(rows, params, metric, path)              the objective against each parameter's value; stopped trials apart
    parallel_coordinates(rows, params, metric, path)  the top trials' values on one axis per parameter

Optuna's matplotlib visualisations draw from a live study and cannot tell completed trials from
ones the scheduler stopped; these draw from the report's rows, so they can.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.ticker import FormatStrFormatter, NullFormatter

from tuner.report.importance import UNUSED, Importances, used_value
from tuner.report.plots import STATUS_STYLE, save  # plots.py chose the file-only backend
from tuner.spec.schema import Param
from tuner.spec.space import encode
from tuner.tracking.trial_status import STOPPED

EVALUATOR_NAMES = {"fanova": "fANOVA", "ped_anova": "PED-ANOVA (top 10%)"}


def _scale(metric: str) -> tuple[float, str]:
    """Accuracies in percent, everything else as it is."""
    return (100.0, f"{metric} (%)") if metric.endswith("acc") else (1.0, metric)


def importance_bars(importances: Importances, path: Path) -> Path:
    metrics = [m for m, by in importances.importances.items() if by]
    most = max([len(v) for by in importances.importances.values() for v in by.values()] or [1])
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(7 * max(len(metrics), 1), 1.8 + 0.45 * most), squeeze=False)
    first = importances.importances.get(metrics[0], {}).get("fanova", {}) if metrics else {}
    names = sorted(first, key=first.get)  # the most important on top
    for ax, metric in zip(axes[0], metrics):
        by = importances.importances[metric]
        height = 0.8 / max(len(by), 1)
        for i, (label, values) in enumerate(by.items()):
            ys = [k + (i - (len(by) - 1) / 2) * height for k in range(len(names))]
            ax.barh(ys, [values.get(n, 0.0) for n in names], height=height, label=EVALUATOR_NAMES.get(label, label))
        ax.set_yticks(range(len(names)), names)
        ax.set_xlim(0, 1)
        ax.set_xlabel("importance (share of the variance explained; sums to 1)")
        ax.set_title(f"What mattered for {metric}")
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3, axis="x")
    if not metrics:
        axes[0][0].text(0.5, 0.5, "\n".join(importances.notes) or "no importances", ha="center", va="center", wrap=True)
        axes[0][0].set_axis_off()
    fig.suptitle(textwrap.fill(f"Parameter importance over the {importances.fidelity}", 90), fontsize=9)
    return save(fig, path)


def slices(rows: list[dict[str, Any]], params: list[Param], metric: str, path: Path) -> Path:
    scale, label = _scale(metric)
    cols = min(3, max(len(params), 1))
    nrows = max(1, math.ceil(len(params) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
    for ax, p in zip(axes.flat, params):
        choices = [encode(v) for v in p.values]
        for status, (color, marker) in STATUS_STYLE.items():
            pts = [(used_value(r, p), r[metric]) for r in rows if r["status"] == status and r.get(metric) is not None]
            pts = [(x, y) for x, y in pts if x is not UNUSED]
            if not pts:
                continue
            xs = [choices.index(x) if p.kind == "choice" else x for x, _ in pts]
            style = {"facecolors": "none", "edgecolors": color} if status == STOPPED else {"c": color}
            ax.scatter(xs, [scale * y for _, y in pts], marker=marker, alpha=0.75, label=f"{status} ({len(pts)})", **style)
        if p.kind == "choice":
            ax.set_xticks(range(len(choices)), [str(c) for c in choices], rotation=20, fontsize=8)
        elif p.kind == "loguniform" or p.log:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))  # 0.01, 0.1: not 10^-2 beside every minor tick
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(p.name + (f"  (when {', '.join(p.when)})" if p.when else ""))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(params):]:
        ax.set_axis_off()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=8)
    fig.suptitle(f"{metric} against each searched parameter (stopped trials hollow: fewer epochs)", fontsize=10)
    return save(fig, path)


def _position(p: Param, value: Any) -> float | None:
    """A value's place on its axis, 0..1 over the parameter's range (log for log scales; choices evenly)."""
    if value is UNUSED:
        return None
    if p.kind == "choice":
        choices = [encode(v) for v in p.values]
        return choices.index(value) / max(len(choices) - 1, 1)
    low, high, v = float(p.low), float(p.high), float(value)
    if p.kind == "loguniform" or p.log:
        low, high, v = math.log(low), math.log(high), math.log(v)
    return (v - low) / ((high - low) or 1.0)


def parallel_coordinates(rows: list[dict[str, Any]], params: list[Param], metric: str, path: Path) -> Path:
    """`rows`: the trials drawn (the top ones); each is a line through its values, coloured by `metric`."""
    scale, label = _scale(metric)
    drawn = [r for r in rows if r.get(metric) is not None]
    fig, ax = plt.subplots(figsize=(max(7.0, 1.6 * (len(params) + 1)), 4.5))
    values = [r[metric] for r in drawn]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    cmap = plt.get_cmap("viridis")
    for r in sorted(drawn, key=lambda r: r[metric]):
        ys = [_position(p, used_value(r, p)) for p in params] + [(r[metric] - low) / ((high - low) or 1.0)]
        shade = ys[-1]
        xs = [i for i, y in enumerate(ys) if y is not None]
        ax.plot(xs, [ys[i] for i in xs], color=cmap(shade), alpha=0.85, linewidth=1.5, marker="o", markersize=3)
    ticks = []
    for p in params:
        if p.kind == "choice":
            ticks.append(f"{p.name}\n{' | '.join(str(encode(v)) for v in p.values)}")
        else:
            ticks.append(f"{p.name}\n{p.low:.3g} .. {p.high:.3g}{' (log)' if p.kind == 'loguniform' or p.log else ''}")
    ticks.append(f"{label}\n{scale * low:.3g} .. {scale * high:.3g}")
    ax.set_xticks(range(len(ticks)), ticks, fontsize=7)
    for i in range(len(ticks)):
        ax.axvline(i, color="lightgray", linewidth=1, zorder=0)
    ax.set_yticks([0, 1], ["low", "high"])
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"The top {len(drawn)} trials: searched values and {metric} (brighter: higher)")
    return save(fig, path)
