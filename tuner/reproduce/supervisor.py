"""Child processes watched from here: each in its own process group, stopped at a deadline or when this
process is told to stop.

Children run in their own sessions, so Ctrl-C at the terminal or a SIGTERM to this process does
not reach them by itself: inside `with Supervisor() as sup:` both become `Stopped` here, and
leaving the block stops every child still running (SIGTERM, then SIGKILL after `grace` seconds),
so that none is left behind training on its own. The GPU lease (tools/lease) and
tuner.reproduce both run their processes through it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from typing import IO, Any

from tuner.exit_codes import ExitCode


class Stopped(Exception):  # noqa: N818 - the event, as KeyboardInterrupt names it
    """This process got SIGINT or SIGTERM; `exit_code` is the command's (130 or 143)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.exit_code = ExitCode.INTERRUPTED if signum == signal.SIGINT else ExitCode.TERMINATED


class Supervisor:
    def __init__(self, grace: float = 15.0):
        self.grace = grace
        self.children: list[subprocess.Popen] = []
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Supervisor:
        def stop_here(signum: int, frame: Any) -> None:
            raise Stopped(signum)

        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, stop_here)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self.stop_all()

    def start(self, cmd: list[str], stdout: IO | int | None = None, stderr: IO | int | None = None,
              env: dict[str, str] | None = None, cwd: Any = None, text: bool = False) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, env=env, cwd=cwd, text=text, start_new_session=True)
        self.children.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        """SIGTERM to the child's process group (it saves what it can), SIGKILL after the grace period."""
        if proc.poll() is None:
            self._signal(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                proc.wait()
        if proc in self.children:
            self.children.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.children):
            self.stop(proc)

    def wait(self, proc: subprocess.Popen, deadline: float) -> int | None:
        """The child's exit code, or None when it was stopped at `deadline` (time.monotonic())."""
        try:
            code = proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            self.stop(proc)
            return None
        if proc in self.children:
            self.children.remove(proc)
        return code

    def run(self, cmd: list[str], timeout: float, env: dict[str, str] | None = None, cwd: Any = None) -> tuple[int | None, str, str]:
        """(exit code or None when stopped at the timeout, stdout, stderr) of a command."""
        proc = self.start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd, text=True)
        try:
            out, err = proc.communicate(timeout=max(timeout, 1.0))
            self.children.remove(proc)
            return proc.returncode, out, err
        except subprocess.TimeoutExpired:
            self._signal(proc, signal.SIGTERM)
            try:
                out, err = proc.communicate(timeout=self.grace)
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                out, err = proc.communicate()
            self.children.remove(proc)
            return None, out, err

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # ended in between
            os.killpg(proc.pid, sig)
