"""Driver-side Ray Tune callback: stop the sweep, resumably, when a folder it writes runs short of space.

It looks at the free space every few seconds (tuner.sweep.disk_space). When a folder falls below
run.min_free_mb it interrupts the sweep the way Ctrl-C does: Ray Tune stops its trials, keeps
their checkpoints and saves the experiment state, so the same command resumes it once space is
back, and the launcher says why it stopped.

What to watch is set by the launcher for this process (`watch`), not stored in the callback:
Ray Tune pickles the callbacks with the experiment and a resumed sweep gets that old copy, while
the folders and run.min_free_mb that count are the ones of the command being run now.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ray.tune import Callback

from tuner.sweep.disk_space import shortages
from tuner.sweep.stop import stop_like_ctrl_c

CHECK_EVERY_SECONDS = 2.0  # a statvfs per folder: cheap, but not on every step of Tune's loop
_watched: dict[str, Any] = {"folders": [], "min_free_mb": 0.0}


def watch(folders: list[Path], min_free_mb: float) -> None:
    """The folders and the free space the running sweep must keep (launcher, before fit)."""
    _watched.update(folders=list(folders), min_free_mb=min_free_mb)


class StopWhenStorageLow(Callback):
    def __init__(self) -> None:
        self._checked = 0.0
        self._stopping = False

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.monotonic()
        if self._stopping or now - self._checked < CHECK_EVERY_SECONDS:
            return
        self._checked = now
        short = shortages(_watched["folders"], _watched["min_free_mb"])
        if short:
            self._stopping = True
            print(f"tuner: {'; '.join(short)} (below run.min_free_mb); stopping the sweep, resumably", flush=True)
            # Ray Tune's own Ctrl-C handling: trials stop where they are, nothing is marked finished.
            stop_like_ctrl_c()
