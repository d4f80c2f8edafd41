"""The leaderboard: trials ranked by the objective, the Pareto front of val_acc against flops_ratio,
and the text table the report prints.
"""

from __future__ import annotations

import math
from typing import Any

from trainables.names import COMPLETED, COST, OBJECTIVE, RESULT_METRICS
from tuner.sweep.trials_table import ranked


def pareto_front(rows: list[dict[str, Any]]) -> set[str]:
    """Completed trials no other completed trial beats on both val_acc (higher) and flops_ratio (lower).

    Only trials of one fidelity compare: a trial the scheduler stopped was measured after fewer
    epochs, and joining it to the front would set an early, low accuracy against a finished one."""
    acc, cost = OBJECTIVE, COST
    pts = [r for r in rows if r["status"] == COMPLETED and finite(r.get(acc)) and finite(r.get(cost))]
    front = set()
    for r in pts:
        dominated = any(o[acc] >= r[acc] and o[cost] <= r[cost] and (o[acc] > r[acc] or o[cost] < r[cost]) for o in pts)
        if not dominated:
            front.add(r["trial_id"])
    return front


def finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def add_derived(rows: list[dict[str, Any]], searched: list[str]) -> list[dict[str, Any]]:
    """rank (1 = best objective among completed/stopped trials; None otherwise), on_pareto_front, param.*."""
    front = pareto_front(rows)
    ranks = {r["trial_id"]: i + 1 for i, r in enumerate(ranked(rows))}
    out = []
    for r in rows:
        d = dict(r)
        d["rank"] = ranks.get(r["trial_id"])
        d["on_pareto_front"] = r["trial_id"] in front
        d.update({f"param.{p}": r.get(f"config.{p}") for p in searched})
        out.append(d)
    return sorted(out, key=lambda r: (r["rank"] is None, r["rank"] or 0, r["trial_id"]))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.4f}".rstrip("0").rstrip(".")
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v)) or "[]"
    return str(v)


def leaderboard(rows: list[dict[str, Any]], searched: list[str], limit: int | None = None) -> str:
    cols = ["rank", "trial_id", *[f"param.{p}" for p in searched], *RESULT_METRICS, "epochs_run", "status"]
    heads = ["rank", "trial", *searched, "val_acc", "test_acc", "many", "medium", "few", "flops", "epochs", "status"]
    body = [[_fmt(r.get(c)) for c in cols] for r in rows[:limit]]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(heads)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(heads), line(["-" * w for w in widths]), *map(line, body)])
