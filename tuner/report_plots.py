"""The report's figures (matplotlib, written as PNG): readable at a glance, with titled axes and units.

    accuracy_vs_flops(rows, front, path)        every trial, the Pareto front joined
    learning_curves(histories, path)            val_acc per epoch of the top trials
    group_bars(rows, path)                      many/medium/few accuracy of the top trials
    threshold_curve(curve, chosen, path)        the best model's accuracy and FLOPs against s
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402

from trainables.names import COMPLETED, DIVERGED  # noqa: E402
from tuner.trial_status import FAILED, STOPPED  # noqa: E402

STATUS_STYLE = {COMPLETED: ("tab:blue", "o"), STOPPED: ("tab:gray", "s"), DIVERGED: ("tab:red", "x"), FAILED: ("black", "+")}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def accuracy_vs_flops(rows: list[dict[str, Any]], front: list[dict[str, Any]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for status, (color, marker) in STATUS_STYLE.items():
        pts = [r for r in rows if r["status"] == status and r.get("flops_ratio") is not None and r.get("val_acc") is not None]
        if pts:
            ax.scatter([r["flops_ratio"] for r in pts], [100 * r["val_acc"] for r in pts], c=color, marker=marker,
                       label=f"{status} ({len(pts)})", alpha=0.8)
    if front:
        ordered = sorted(front, key=lambda r: r["flops_ratio"])
        ax.plot([r["flops_ratio"] for r in ordered], [100 * r["val_acc"] for r in ordered], "-", color="tab:orange",
                linewidth=2, label="Pareto front", zorder=0)
    ax.axvline(1.0, color="lightgray", linestyle="--", linewidth=1)
    ax.set_xlabel("inference FLOPs / backbone FLOPs (ratio)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("Trials: accuracy against inference cost")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def learning_curves(histories: dict[str, list[tuple[int, float]]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in histories.items():
        if points:
            ax.plot([e for e, _ in points], [100 * v for _, v in points], marker=".", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"Learning curves of the top {len(histories)} trials")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def group_bars(rows: list[dict[str, Any]], path: Path) -> Path:
    groups = ("many_acc", "medium_acc", "few_acc")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    width = 0.8 / max(len(rows), 1)
    for i, r in enumerate(rows):
        xs = [g + (i - (len(rows) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [100 * (r.get(g) or 0.0) for g in groups], width=width, label=f"#{r['rank']} {r['trial_id']}")
    ax.set_xticks(range(len(groups)), ["many", "medium", "few"])
    ax.set_xlabel("class group (by training images)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Many / medium / few accuracy of the top {len(rows)} trials")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def threshold_curve(curve: list[dict[str, float]], chosen: float, title: str, path: Path) -> Path:
    s = [p["threshold"] for p in curve]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(s, [100 * p["val_acc"] for p in curve], marker=".", label="validation accuracy")
    left.plot(s, [100 * p["test_acc"] for p in curve], marker=".", label="test accuracy")
    left.set_xlabel("inference exit threshold s")
    left.set_ylabel("accuracy (%)")
    twin = left.twinx()
    twin.plot(s, [p["flops_ratio"] for p in curve], color="tab:green", linestyle="--", label="FLOPs ratio")
    twin.set_ylabel("inference FLOPs / backbone FLOPs")
    left.axvline(chosen, color="gray", linestyle=":", label=f"chosen s = {chosen:.2f}")
    lines = left.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    left.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right", fontsize=8)
    left.set_title("Accuracy and cost against the threshold")
    left.grid(alpha=0.3)
    right.plot([p["flops_ratio"] for p in curve], [100 * p["val_acc"] for p in curve], marker="o")
    xs, ys = [p["flops_ratio"] for p in curve], [100 * p["val_acc"] for p in curve]
    span_x, span_y = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    labelled: list[tuple[float, float]] = []
    for p, x, y in zip(curve, xs, ys):  # label thresholds, skipping points too close to a labelled one
        if all(((x - lx) / span_x) ** 2 + ((y - ly) / span_y) ** 2 > 0.12 ** 2 for lx, ly in labelled):
            right.annotate(f"s={p['threshold']:.2f}", (x, y), fontsize=7, textcoords="offset points", xytext=(4, -10))
            labelled.append((x, y))
    right.set_xlabel("inference FLOPs / backbone FLOPs (ratio)")
    right.set_ylabel("validation accuracy (%)")
    right.set_title("One trained model, a family of operating points")
    right.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
