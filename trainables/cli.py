"""Command-line plumbing shared by the project's entry points: bad arguments are one line and exit 2
(BAD_INPUT_EXIT; tuner's other exit codes are tuner.exit_codes.ExitCode)."""

from __future__ import annotations

import argparse
from typing import NoReturn

BAD_INPUT_EXIT = 2  # every command of the project: bad input, one line on stderr, nothing started


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message cut to its first line and `limit` characters, for a one-line error
    (its type's name when it has no message: some libraries raise without one)."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument as a single line (no usage block) and exits with 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(BAD_INPUT_EXIT, f"{self.prog}: {message} (see --help)\n")


class BadArgument(ValueError):
    """A malformed command-line value; str() is the one line to print."""


def key_values(items: list[str], flag: str = "--set") -> dict[str, str]:
    """`KEY=VALUE` arguments as a dict (a later key wins); BadArgument names the first malformed one."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadArgument(f"{flag} {item!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out


def set_arguments(values: dict[str, object], flag: str = "--set") -> list[str]:
    """The command-line form of `values`, key_values' inverse: ["--set", "channels_last=true", ...]."""
    def text(v: object) -> str:
        return str(v).lower() if isinstance(v, bool) else str(v)

    return [a for k, v in values.items() for a in (flag, f"{k}={text(v)}")]
