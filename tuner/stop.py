"""Stop a running sweep from any terminal, on any host that sees its storage path.

    python -m tuner.stop smoke                              # experiments/smoke, as launched from here
    python -m tuner.stop search_spaces/hybrid.yaml          # the sweep that spec names (s3:// storage too)
    python -m tuner.stop s3://bucket/experiments/hybrid-ldam-c10lt100

Writes a stop request into the experiment folder; the driver (its launch command) takes it within a
few seconds and stops as on SIGTERM: Ray Tune saves the sweep, every trial keeps its last
checkpoint, the launch exits 143, and rerunning the launch command resumes. This command returns
once the driver has stopped (its lock is released): exit 0. Exit 2, with one line, when no driver is
running that sweep, or it cannot be found; exit 1 when the driver has not stopped within --wait.
"""

from __future__ import annotations

import os
import socket
import sys
import time

from trainables.cli import OneLineParser
from tuner.exit_codes import ExitCode
from tuner.sweep.experiment import (
    ExperimentError,
    experiment_location,
    read_state,
    request_stop,
    running_driver,
    take_stop_request,
)

WAIT_SECONDS = 120.0  # a driver stops within seconds; its trials end their current step and Ray Tune saves


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m tuner.stop", description=__doc__.split("\n\n")[0])
    p.add_argument("target", metavar="NAME_OR_PATH", help="experiment folder or URI, spec file, or sweep name")
    p.add_argument("--wait", type=float, default=WAIT_SECONDS, metavar="SECONDS", help="how long to wait for the driver")
    args = p.parse_args(argv)
    try:
        exp = experiment_location(args.target)
        driver = running_driver(exp)
        if driver is None:
            raise ExperimentError(f"{exp}: no driver is running this sweep (no live lock); nothing to stop")
    except ExperimentError as exc:
        print(f"tuner.stop: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    request_stop(exp, {"host": socket.gethostname(), "pid": os.getpid(), "requested": time.time()})
    print(f"tuner.stop: asked the driver of {exp} (process {driver.get('pid')} on host {driver.get('host')}) to stop", flush=True)
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        if running_driver(exp) is None:
            state = read_state(exp)
            if state is not None and state.finished:  # it ended on its own before its driver took the request
                take_stop_request(exp)  # not for a later launch
                print(f"tuner.stop: the sweep finished ({state.finished['trials']} trials) before its driver took the "
                      "request; nothing to resume")
            else:
                print("tuner.stop: stopped; every trial keeps its last checkpoint: rerun its launch command to resume")
            return ExitCode.OK
        time.sleep(1.0)
    print(f"tuner.stop: the driver has not stopped within {args.wait:g} s; it may be finishing a step: look at its "
          "console, or run this again", file=sys.stderr)
    return ExitCode.FAILED


if __name__ == "__main__":
    sys.exit(main())
