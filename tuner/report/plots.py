"""The report's figures (matplotlib, written as PNG): readable at a glance, with titled axes and units.

    accuracy_vs_flops(rows, front, path)        every trial; the Pareto front of the completed trials as a staircase
    learning_curves(top, others, path)          val_acc per epoch: the top trials, every other trial faded
    group_bars(rows, path)                      many/medium/few accuracy of the top trials
    threshold_curve(curve, chosen, path)        the best model's accuracy and FLOPs against s
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402

from trainables.names import COMPLETED, COST, DIVERGED, OBJECTIVE, TEST_METRIC
from tuner.tracking.trial_status import FAILED, STOPPED  # noqa: E402

STATUS_STYLE = {COMPLETED: ("tab:blue", "o"), STOPPED: ("tab:gray", "s"), DIVERGED: ("tab:red", "x"), FAILED: ("black", "+")}


def save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def accuracy_vs_flops(rows: list[dict[str, Any]], front: list[dict[str, Any]], path: Path) -> Path:
    """`front`: the completed trials' Pareto front. Stopped trials were measured after fewer epochs (a
    lower fidelity): they are drawn apart, hollow, and never joined to the front."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for status, (color, marker) in STATUS_STYLE.items():
        pts = [r for r in rows if r["status"] == status and r.get(COST) is not None and r.get(OBJECTIVE) is not None]
        if not pts:
            continue
        label = f"{status} ({len(pts)})"
        if status == STOPPED:
            epochs = sorted({r.get("epochs_run") for r in pts if r.get("epochs_run")})
            label = f"stopped by the scheduler after {'/'.join(map(str, epochs))} epochs ({len(pts)})"
            ax.scatter([r[COST] for r in pts], [100 * r[OBJECTIVE] for r in pts], facecolors="none",
                       edgecolors=color, marker=marker, label=label, alpha=0.6)
        else:
            ax.scatter([r[COST] for r in pts], [100 * r[OBJECTIVE] for r in pts], c=color, marker=marker,
                       label=label, alpha=0.8)
    if front:
        # The attainment staircase: the best accuracy any completed trial reached at or below each
        # cost, drawn on to the right edge (the reference's cost, or the costliest trial's).
        ordered = sorted(front, key=lambda r: r[COST])
        xs = [r[COST] for r in ordered]
        ys = [100 * r[OBJECTIVE] for r in ordered]
        right = max([1.0] + [r[COST] for r in rows if isinstance(r.get(COST), (int, float))])
        ax.step(xs + [right], ys + [ys[-1]], where="post", color="tab:orange", linewidth=2,
                label=f"Pareto front of the completed trials ({len(front)})", zorder=1)
        ax.scatter(xs, ys, s=90, facecolors="none", edgecolors="tab:orange", linewidths=1.5, zorder=2)
    ax.axvline(1.0, color="lightgray", linestyle="--", linewidth=1)
    ax.set_xlabel("inference FLOPs / ResNet-32 FLOPs (ratio)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("Trials: accuracy against inference cost")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, path)


def learning_curves(top: dict[str, list[tuple[int, float]]], others: list[tuple[str, list[tuple[int, float]]]],
                    path: Path) -> Path:
    """top: label -> curve of the best completed trials (coloured, in the legend); others: (status, curve)
    of every other trial, faded, so that the scheduler's stops show as curves that end early."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    counts: dict[str, int] = {}
    for status, points in others:
        if points:
            color = STATUS_STYLE.get(status, ("tab:gray", "."))[0]
            ax.plot([e for e, _ in points], [100 * v for _, v in points], color=color, alpha=0.25, linewidth=1,
                    label=None if status in counts else f"other trials: {status}")
            counts[status] = counts.get(status, 0) + 1
    for label, points in top.items():
        if points:
            ax.plot([e for e, _ in points], [100 * v for _, v in points], marker=".", label=label, linewidth=2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"Learning curves: the top {len(top)} completed trials; {len(others)} others faded")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, path)


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
    return save(fig, path)


def threshold_curve(curve: list[dict[str, float]], chosen: float, title: str, path: Path) -> Path:
    s = [p["threshold"] for p in curve]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(s, [100 * p[OBJECTIVE] for p in curve], marker=".", label="validation accuracy")
    left.plot(s, [100 * p[TEST_METRIC] for p in curve], marker=".", label="test accuracy")
    left.set_xlabel("inference exit threshold s")
    left.set_ylabel("accuracy (%)")
    twin = left.twinx()
    twin.plot(s, [p[COST] for p in curve], color="tab:green", linestyle="--", label="FLOPs ratio")
    twin.set_ylabel("inference FLOPs / backbone FLOPs")
    left.axvline(chosen, color="gray", linestyle=":", label=f"chosen s = {chosen:.2f}")
    lines = left.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    left.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right", fontsize=8)
    left.set_title("Accuracy and cost against the threshold")
    left.grid(alpha=0.3)
    right.plot([p[COST] for p in curve], [100 * p[OBJECTIVE] for p in curve], marker="o")
    xs, ys = [p[COST] for p in curve], [100 * p[OBJECTIVE] for p in curve]
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
    return save(fig, path)
