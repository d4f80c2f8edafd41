"""Driver-side Ray Tune callback: `python -m tuner.stop` stops the running sweep as SIGTERM does, and a
stop that arrived before the loop began reaches it.

`python -m tuner.stop NAME_OR_PATH`, on any host that sees the storage path (s3:// too), writes a stop
request into the experiment folder (tuner/sweep/experiment.py: request_stop); this callback, on the
driver, looks for it every few seconds, takes it and stops the sweep (tuner/sweep/stop.py: every
trial keeps its checkpoint, the launcher exits 143, and rerunning the launch command resumes).

Which folder to watch is set by the launcher for this process (`watch`), not stored in the callback:
Ray Tune pickles callbacks with the experiment, and a resumed sweep gets that old copy.
"""

from __future__ import annotations

import time
from typing import Any

from ray.tune import Callback

from tuner.sweep.experiment import take_stop_request
from tuner.sweep.stop import TERMINATED, deliver_pending, terminate

CHECK_EVERY_SECONDS = 2.0  # one small read of the experiment folder (an object store's GET on s3://)
_watched: dict[str, str | None] = {"experiment": None}


def watch(experiment: str) -> None:
    """The experiment folder whose stop requests this driver honours (launcher, before fit)."""
    _watched["experiment"] = experiment


class StopOnRequest(Callback):
    """A stop request in the watched experiment folder stops the sweep as SIGTERM does."""

    def __init__(self) -> None:
        self._checked = 0.0

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        deliver_pending()  # a SIGTERM whose KeyboardInterrupt Python dropped before the loop began (tuner/sweep/stop.py)
        now = time.monotonic()
        if TERMINATED.is_set() or _watched['experiment'] is None or now - self._checked < CHECK_EVERY_SECONDS:
            return
        self._checked = now
        request = take_stop_request(_watched['experiment'])
        if request is not None:
            who = f"{request.get('host', '?')} (process {request.get('pid', '?')})"
            print(f"tuner: stop requested by tuner.stop on {who}; stopping the sweep as SIGTERM does", flush=True)
            terminate(f"tuner.stop from {who}")
