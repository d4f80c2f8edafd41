"""Stop a running sweep the way Ctrl-C stops it, whatever started the launcher, and from anywhere.

Ray Tune saves the sweep and stops its trials (each keeping its last checkpoint) when its own
SIGINT handler runs, which it installs while `fit()` runs; before and after that, Python's
KeyboardInterrupt unwinds the launcher, which exits the same way. SIGTERM, the storage watch and a
stop request (`python -m tuner.stop`, from any host that sees the storage path: a file in the
experiment folder that tuner/sweep/stop_request.py polls for) all stop a sweep through `stop_like_ctrl_c`, which
calls whichever of the two is in force. `TERMINATED` records what stopped it (exit 143).

It does not send SIGINT: a launcher started in the background (`cmd &` in a script, a batch job,
nohup under a script) has SIGINT ignored, so a SIGINT it sends itself is dropped and the sweep
went on to its end (issue 33). Run it in the main thread (a signal handler or Ray Tune's loop).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

TERMINATED = threading.Event()  # SIGTERM or a stop request arrived: the sweep stops as on Ctrl-C and exits 143
STOPPED_BY: dict[str, str] = {"what": "SIGTERM"}  # what the one line at the end names


def stop_like_ctrl_c(frame: FrameType | None = None) -> None:
    """Ray Tune's SIGINT handler while the sweep runs, else KeyboardInterrupt: as if Ctrl-C had been pressed."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):  # Ray Tune's, or Python's default_int_handler (which raises KeyboardInterrupt)
        handler(signal.SIGINT, frame)
        return
    raise KeyboardInterrupt  # SIGINT ignored (SIG_IGN) or left to the system (SIG_DFL): what Ctrl-C would have done


def terminate(what: str, frame: FrameType | None = None) -> None:
    """Stop as SIGTERM does (exit 143), naming `what` stopped it."""
    STOPPED_BY["what"] = what
    TERMINATED.set()
    stop_like_ctrl_c(frame)

