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

A KeyboardInterrupt raised by a signal handler is dropped when the signal lands while Python runs a
garbage-collection callback or a __del__ (it prints 'Exception ignored in ...' and goes on): a SIGTERM
during start-up was lost that way on a loaded machine (CI, 2026-12-06; the interrupted frame was
SQLAlchemy's weakref callback). So a stop stays pending until it has unwound the launcher or reached
Ray Tune: `deliver_pending` hands it on again at safe points (before fit, and at each step of Ray
Tune's loop), and `quiet_dropped_interrupts` keeps the dropped one's traceback off the console.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

TERMINATED = threading.Event()  # SIGTERM or a stop request arrived: the sweep stops as on Ctrl-C and exits 143
STOPPED_BY: dict[str, str] = {"what": "SIGTERM"}  # what the one line at the end names
_HANDED_TO_TUNE = threading.Event()  # Ray Tune's handler took the stop: its loop ends and saves the sweep


def stop_like_ctrl_c(frame: FrameType | None = None) -> None:
    """Ray Tune's SIGINT handler while the sweep runs, else KeyboardInterrupt: as if Ctrl-C had been pressed."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):  # Ray Tune's, or Python's default_int_handler (which raises KeyboardInterrupt)
        handler(signal.SIGINT, frame)
        _HANDED_TO_TUNE.set()  # reached only when the handler returned: Ray Tune's, which ends its loop
        return
    raise KeyboardInterrupt  # SIGINT ignored (SIG_IGN) or left to the system (SIG_DFL): what Ctrl-C would have done


def terminate(what: str, frame: FrameType | None = None) -> None:
    """Stop as SIGTERM does (exit 143), naming `what` stopped it."""
    STOPPED_BY["what"] = what
    TERMINATED.set()
    stop_like_ctrl_c(frame)


def deliver_pending() -> None:
    """At a safe point: a stop that arrived (TERMINATED) but may have been dropped is handed on again,
    to Ray Tune's handler inside its loop, else as KeyboardInterrupt. Nothing when no stop is pending."""
    if TERMINATED.is_set() and not _HANDED_TO_TUNE.is_set():
        stop_like_ctrl_c()


def quiet_dropped_interrupts() -> None:
    """Python prints a KeyboardInterrupt it had to drop (raised in a GC callback or __del__) with its
    traceback; one from a pending stop is handed on again at the next safe point, so it is not printed."""
    default = sys.unraisablehook
    if getattr(default, "quiets_dropped_interrupts", False):
        return

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        if TERMINATED.is_set() and isinstance(unraisable.exc_value, KeyboardInterrupt):
            return
        default(unraisable)

    hook.quiets_dropped_interrupts = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook
