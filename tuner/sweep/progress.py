"""A concise live view of a sweep: one status line every few seconds and one line per finished trial.

    12:01:05  3/8 done (2 completed, 1 stopped, 0 diverged, 0 failed), 2 running, 3 pending | best val_acc 0.7123 (a1b2c3, epoch 40)

Ray's own table output is turned off (verbose=0); this callback prints instead.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from ray.tune import Callback

from trainables.names import DIVERGED
from tuner.sweep.trials_table import trial_status
from tuner.tracking.trial_status import TRIAL_STATUSES


class ProgressLine(Callback):
    def __init__(self, metric: str, mode: str, num_samples: int, every_seconds: float = 15.0):
        self.metric, self.mode, self.num_samples, self.every = metric, mode, num_samples, every_seconds
        self._last_print = 0.0

    def _best(self, trials: list) -> str:
        scored = [(t.last_result[self.metric], t) for t in trials
                  if t.last_result and isinstance(t.last_result.get(self.metric), (int, float))
                  and t.last_result.get("status") != DIVERGED]
        if not scored:
            return f"best {self.metric} -"
        value, trial = (max if self.mode == "max" else min)(scored, key=lambda s: s[0])
        return f"best {self.metric} {value:.4f} ({trial.trial_id}, epoch {trial.last_result.get('epoch')})"

    def _line(self, trials: list) -> str:
        ended = [t for t in trials if t.status in ("TERMINATED", "ERROR")]
        counts = dict.fromkeys(TRIAL_STATUSES, 0)
        for t in ended:
            counts[trial_status(t.last_result or {}, t.error_file if t.status == "ERROR" else None)] += 1
        running = sum(t.status == "RUNNING" for t in trials)
        pending = self.num_samples - len(ended) - running
        parts = ", ".join(f"{n} {k}" for k, n in counts.items())
        return (f"{time.strftime('%H:%M:%S')}  {len(ended)}/{self.num_samples} done ({parts}), {running} running, "
                f"{max(pending, 0)} pending | {self._best(trials)}")

    def _print(self, text: str) -> None:
        print(text, file=sys.stdout, flush=True)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if time.time() - self._last_print >= self.every:
            self._last_print = time.time()
            self._print(self._line(trials))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        r = trial.last_result or {}
        status = trial_status(r, None)
        value = r.get(self.metric)
        shown = f"{self.metric} {value:.4f}" if isinstance(value, (int, float)) else ""
        self._print(f"{time.strftime('%H:%M:%S')}  trial {trial.trial_id} {status} at epoch {r.get('epoch')}  {shown}")

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        epoch = (trial.last_result or {}).get("epoch")
        self._print(f"{time.strftime('%H:%M:%S')}  trial {trial.trial_id} lost its process at epoch {epoch} "
                    f"(killed, or its node died); retrying from its last checkpoint")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._print(f"{time.strftime('%H:%M:%S')}  trial {trial.trial_id} failed (Ray retries it up to max_failures); "
                    f"see {trial.error_file}")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._print(self._line(trials))
