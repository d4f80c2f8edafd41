"""The exit codes of tuner's commands (tuner.launch, tuner.report, tuner.reproduce), in one place.

The README's table of exit codes is checked against this enum (tests/test_layout.py).
"""

from __future__ import annotations

import enum
import signal

from trainables.cli import BAD_INPUT_EXIT


class ExitCode(enum.IntEnum):
    OK = 0  # the sweep finished (stopped and diverged trials are results)
    FAILED = 1  # something failed that is not the user's input (a results run crashed; see its .err file)
    BAD_INPUT = BAD_INPUT_EXIT  # a bad spec, argument or file, or a failed pre-flight check: nothing started
    TIME_BUDGET = 3  # --time-budget ran out: the trials table so far is written; rerun to go on
    STORAGE_FULL = 4  # a folder the sweep writes ran short of run.min_free_mb: rerun once there is space
    INTERRUPTED = 128 + signal.SIGINT  # 130, Ctrl-C: rerun to resume
    TERMINATED = 128 + signal.SIGTERM  # 143, SIGTERM (docker stop, Kubernetes, SLURM): rerun to resume
