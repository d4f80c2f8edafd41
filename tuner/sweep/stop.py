"""Stop a running sweep the way Ctrl-C stops it, whatever started the launcher.

Ray Tune saves the sweep and stops its trials (each keeping its last checkpoint) when its own
SIGINT handler runs, which it installs while `fit()` runs; before and after that, Python's
KeyboardInterrupt unwinds the launcher, which exits the same way. SIGTERM and the storage watch
both stop a sweep through `stop_like_ctrl_c`, which calls whichever of the two is in force.

It does not send SIGINT: a launcher started in the background (`cmd &` in a script, a batch job,
nohup under a script) has SIGINT ignored, so a SIGINT it sends itself is dropped and the sweep
went on to its end (issue 33). Run it in the main thread (a signal handler or Ray Tune's loop).
"""

from __future__ import annotations

import signal
from types import FrameType


def stop_like_ctrl_c(frame: FrameType | None = None) -> None:
    """Ray Tune's SIGINT handler while the sweep runs, else KeyboardInterrupt: as if Ctrl-C had been pressed."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):  # Ray Tune's, or Python's default_int_handler (which raises KeyboardInterrupt)
        handler(signal.SIGINT, frame)
        return
    raise KeyboardInterrupt  # SIGINT ignored (SIG_IGN) or left to the system (SIG_DFL): what Ctrl-C would have done
