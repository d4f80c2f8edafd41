"""How busy a sweep kept its trial slots: the share of (wall time x slots) spent in epochs, in the
rest of each trial, and with no trial in the slot.

A sweep is as fast as its slots are busy. From each trial's reports (the trainable adds the time its
function started, STARTED_AT, and the time of each report, REPORTED_AT; the loop's epoch_seconds
is training and evaluation):
- in epochs:        the sum of epoch_seconds;
- in-trial other:   the rest of each attempt's span, from its function's start to its last report:
                    data, model and FLOP count, MLflow, reports and checkpoints;
- between trials:   wall x slots minus the spans: Ray starting and stopping trial processes, the
                    scheduler, searcher and driver, a trial's work after its last report, idle slots;
                    of it, `nothing_left` is slot time after the last trial began that no trial used
                    (the sweep's tail: no trial was waiting for the slot).
Only reports made within the window count, so a resumed sweep is measured for this run alone.
"""

from __future__ import annotations

from typing import Any

from tuner.trial.trainable import REPORTED_AT, STARTED_AT


def slots_of(max_concurrent: int | None, num_samples: int, cpus: float, gpus: float, cpu_per_trial: float,
             gpu_per_trial: float) -> int:
    """Trials that can run at once: the spec's cap, the cluster's CPUs and GPUs, the number of trials."""
    fits = [int(cpus // cpu_per_trial) if cpu_per_trial > 0 else num_samples]
    if gpu_per_trial > 0:
        fits.append(int(round(gpus / gpu_per_trial, 6)))
    return max(1, min([num_samples, *fits] + ([max_concurrent] if max_concurrent else [])))


def slot_use(trials: list[list[dict[str, Any]]], window: tuple[float, float], slots: int) -> dict[str, Any]:
    """trials: each trial's reports (dicts with STARTED_AT, REPORTED_AT and epoch_seconds)."""
    begin, end = window
    in_epochs = spans = 0.0
    intervals = []
    for rows in trials:
        attempts: dict[float, float] = {}  # function start -> its last report (a retried trial has several)
        for r in rows:
            at, started = r.get(REPORTED_AT), r.get(STARTED_AT)
            if at is None or started is None or not begin <= float(at) <= end:
                continue
            attempts[float(started)] = max(attempts.get(float(started), 0.0), float(at))
            in_epochs += float(r.get("epoch_seconds") or 0)
        spans += sum(last - max(started, begin) for started, last in attempts.items())
        intervals += [(max(started, begin), last) for started, last in attempts.items()]
    capacity = max(end - begin, 1e-9) * slots
    between = max(capacity - spans, 0.0)
    last_start = max((s for s, _ in intervals), default=end)
    used_after = sum(max(e - max(s, last_start), 0.0) for s, e in intervals)
    nothing_left = min(max((end - last_start) * slots - used_after, 0.0), between)
    return {"slots": slots, "wall_seconds": round(end - begin, 1), "slot_seconds": round(capacity, 1),
            "in_epochs_seconds": round(in_epochs, 1), "in_trial_other_seconds": round(spans - in_epochs, 1),
            "between_trials_seconds": round(between, 1), "nothing_left_seconds": round(nothing_left, 1),
            "in_epochs_share": in_epochs / capacity, "nothing_left_share": nothing_left / capacity,
            "in_trial_other_share": (spans - in_epochs) / capacity, "between_trials_share": between / capacity}


def describe(use: dict[str, Any]) -> str:
    return (f"{use['slots']} slot(s) x {use['wall_seconds']:.0f} s: {use['in_epochs_share']:.0%} in epochs, "
            f"{use['in_trial_other_share']:.0%} in trials' start-up, reports and finish, "
            f"{use['between_trials_share']:.0%} between trials ({use['nothing_left_share']:.0%} with no trial left to start)")
