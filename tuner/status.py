"""Where a sweep stands, from any terminal, on any host that sees its storage path.

    python -m tuner.status smoke                            # experiments/smoke, as launched from here
    python -m tuner.status search_spaces/hybrid.yaml        # the sweep that spec names (s3:// storage too)

Reads what the sweep's folder holds (Ray Tune's saved experiment state, which the driver saves
every few seconds, and each trial's results; the launcher's state), never the driver: trials by
status (running, pending, completed, stopped, diverged, failed), the best trial so far (its val_acc
and the epoch it was measured at), the time since the sweep started, trial-hours spent (GPU-hours
where trials hold GPUs), and, while it runs, a rough time left: the mean ended trial's time times
the trials not ended, over the trials running at once. A finished sweep shows its summary. Exit 2, one line, when there is no sweep there.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from trainables.cli import OneLineParser, first_line
from trainables.names import OBJECTIVE
from tuner.exit_codes import ExitCode
from tuner.sweep.experiment import ExperimentError, experiment_location, read_state, running_driver

RAY_STATUS = {"RUNNING": "running", "PENDING": "pending", "PAUSED": "pending"}


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def sweep_status(exp: str) -> dict[str, Any]:
    """What the folder says of the sweep: counts by status, the best trial so far, times."""
    from ray.tune import ExperimentAnalysis

    from tuner.sweep.trials_table import trial_status
    from tuner.tracking.trial_status import USABLE

    state = read_state(exp)
    try:
        trials = ExperimentAnalysis(exp).trials
    except Exception as exc:  # noqa: BLE001 - no Ray Tune state yet, or unreadable: one line
        raise ExperimentError(f"{exp}: no Ray Tune state to read yet ({first_line(exc, 120)}); is this a sweep's folder?") from None
    counts: dict[str, int] = {}
    best, spent, ended_seconds = None, 0.0, []
    for t in trials:
        result = t.last_result or {}
        status = RAY_STATUS.get(t.status) or trial_status(result, t.error_file if t.status == "ERROR" else None)
        counts[status] = counts.get(status, 0) + 1
        seconds = float(result.get("time_total_s") or 0.0)
        spent += seconds
        if status not in RAY_STATUS.values():
            ended_seconds.append(seconds)
        value = result.get(OBJECTIVE)
        measured = (status in USABLE or status == "running") and isinstance(value, (int, float)) and math.isfinite(value)
        if measured and (best is None or value > best["value"]):
            best = {"trial": result.get("trial_name") or t.trial_id, "value": value, "epoch": result.get("epoch"),
                    "status": status}
    planned = (state.num_samples if state and state.num_samples else None) or len(trials)
    return {"experiment": exp, "counts": counts, "trials": len(trials), "planned": planned, "best": best,
            "started": state.started if state else None, "finished": state.finished if state else None,
            "trial_seconds": spent, "gpu_per_trial": (state.gpu_per_trial if state else None) or 0.0,
            "mean_trial_seconds": sum(ended_seconds) / len(ended_seconds) if ended_seconds else None,
            "driver": running_driver(exp)}


def describe(status: dict[str, Any], now: float | None = None) -> list[str]:
    now = now or time.time()
    counts = status["counts"]
    order = ("running", "pending", "completed", "stopped", "diverged", "failed")
    ended = sum(n for s, n in counts.items() if s not in ("running", "pending"))
    lines = [f"sweep {status['experiment']}: " + ("finished" if status["finished"] else
                                                  "running" if status["driver"] else "not running (rerun its launch to resume)"),
             f"trials: {ended} of {status['planned']} ended; " + ", ".join(f"{counts[s]} {s}" for s in order if counts.get(s))]
    best = status["best"]
    lines.append(f"best so far: {best['trial']}, {OBJECTIVE} {best['value']:.4f} at epoch {best['epoch']} ({best['status']})"
                 if best else f"best so far: no {OBJECTIVE} reported yet")
    if status["started"]:
        end = status["finished"]["at"] if status["finished"] else now
        lines.append(f"elapsed: {_clock(end - status['started'])} since the sweep started")
    kind = "GPU-hours" if status["gpu_per_trial"] else "trial-hours"
    spent = status["trial_seconds"] * (status["gpu_per_trial"] or 1.0)
    lines.append(f"{kind}: {spent / 3600:.2f} spent")
    at_once = max(counts.get("running", 0), 1)  # Ray Tune's saved state may lag a few seconds behind the driver
    left = status["planned"] - ended
    if not status["finished"] and status["driver"] and left > 0 and status["mean_trial_seconds"]:
        eta = status["mean_trial_seconds"] * left / at_once
        lines.append(f"time left: about {_clock(eta)} ({left} trials at the mean ended trial's "
                     f"{_clock(status['mean_trial_seconds'])}, {at_once} at once)")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m tuner.status", description=__doc__.split("\n\n")[0])
    p.add_argument("target", metavar="NAME_OR_PATH", help="experiment folder or URI, spec file, or sweep name")
    args = p.parse_args(argv)
    from tuner.quiet import quiet_logs

    quiet_logs(False)
    try:
        status = sweep_status(experiment_location(args.target))
    except ExperimentError as exc:
        print(f"tuner.status: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    print("\n".join(describe(status)))
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
