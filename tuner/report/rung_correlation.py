"""Could ASHA's cuts be trusted? How well each rung's ranking predicted the final ranking.

    rung_correlations(rows, rungs, history, metric)   -> [RungCorrelation, ...]

Over the trials that ran to the end (status completed: they passed every rung), each rung's values
of the objective are ranked against the final values with Spearman's rank correlation (scipy), with
the number of trials behind it. A rung whose ranking matches the final one (rho near 1) cut the
right trials; one near 0 cut at random. Only survivors can be compared, so the figure is an upper
bound on how well the rung judged the trials it stopped; it says nothing with fewer than
MIN_TRIALS trials, and the line says so.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from trainables.names import COMPLETED
from tuner.report.leaderboard import finite

MIN_TRIALS = 3  # two trials always rank either the same way or opposite: rho is +1 or -1 and tells nothing


@dataclass(frozen=True)
class RungCorrelation:
    epoch: int
    trials: int  # completed trials with a value at this rung
    spearman: float | None  # None: fewer than MIN_TRIALS trials, or every value the same

    def text(self) -> str:
        value = f"{self.spearman:+.2f}" if self.spearman is not None else "-"
        return f"epoch {self.epoch}: {value} ({self.trials} trials)"


def rung_correlations(rows: list[dict[str, Any]], rungs: list[int], history: Callable[[str, str], list[tuple[int, float]]],
                      metric: str) -> list[RungCorrelation]:
    """Spearman's rho between each rung's and the final `metric` of the completed trials."""
    from scipy.stats import spearmanr

    finished = [r for r in rows if r["status"] == COMPLETED and finite(r.get(metric))]
    by_epoch = {r["trial_id"]: dict(history(r["trial_id"], metric)) for r in finished}
    out = []
    for rung in rungs:
        pairs = [(by_epoch[r["trial_id"]][rung], r[metric]) for r in finished if finite(by_epoch[r["trial_id"]].get(rung))]
        rho = None
        if len(pairs) >= MIN_TRIALS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a constant input: scipy warns and gives nan, which is None here
                value = float(spearmanr(*zip(*pairs)).statistic)
            rho = value if math.isfinite(value) else None
        out.append(RungCorrelation(rung, len(pairs), rho))
    return out


def lines(correlations: list[RungCorrelation], metric: str) -> list[str]:
    """The leaderboard's lines: one per rung."""
    if not correlations:
        return []
    return [f"rung correlation (Spearman's rho of each ASHA cut's {metric} with the final {metric}, over the trials that "
            "ran to the end):", *(f"  {c.text()}" for c in correlations)]


def to_json(correlations: list[RungCorrelation]) -> list[dict[str, Any]]:
    return [asdict(c) for c in correlations]


def mlflow_metrics(correlations: list[RungCorrelation]) -> dict[str, float]:
    """The parent run's metrics: rung_spearman_epoch_E and rung_trials_epoch_E per rung (rho only where it says something)."""
    out = {}
    for c in correlations:
        out[f"rung_trials_epoch_{c.epoch}"] = float(c.trials)
        if c.spearman is not None:
            out[f"rung_spearman_epoch_{c.epoch}"] = c.spearman
    return out
