"""A results run's files, and the one reader and writer of its JSON lines.

A run is named `ROW-irIMBALANCE-seedSEED` (ldam_drw-ir100-seed0). While it trains, its lines
(trainables.train's stdout: one JSON object per epoch, then the summary) grow in
`partial/NAME.jsonl.part` beside its checkpoint `partial/NAME.pt`, saved after every epoch; when it
finishes, the lines become `NAME.jsonl` and both partial files go. A run is done when its file ends
with the summary line. Lines cut short (a deadline, a kill mid-write) are not records.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

PARTIAL = "partial"  # FOLDER/partial/: unfinished runs' lines and checkpoints
NAME = re.compile(r"^(?P<row>[a-z0-9_]+)-ir(?P<imbalance>[0-9.]+)-seed(?P<seed>-?\d+)$")


def run_name(row: str, imbalance: float, seed: int) -> str:
    return f"{row}-ir{imbalance:g}-seed{seed}"


def parse_name(name: str) -> tuple[str, float, int] | None:
    """(row, imbalance, seed) of a run name (or file stem); None for anything else."""
    m = NAME.match(name)
    return (m["row"], float(m["imbalance"]), int(m["seed"])) if m else None


def _read(path: Path) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """(line, its JSON object or None where it is not one: cut short, other output) for each line of a
    run file; nothing for a missing file. The one reader of run files."""
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines() if path.is_file() else []:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        yield line, record if isinstance(record, dict) else None


def records(path: Path) -> list[dict[str, Any] | None]:
    """Each line of a run file as its JSON object, or None where a line is not one."""
    return [record for _, record in _read(path)]


def summary(path: Path) -> dict[str, Any] | None:
    """A run file's summary (its last line), or None while the run is unfinished or the file is cut short."""
    lines = records(path)
    last = lines[-1] if lines else None
    return last if last is not None and last.get("summary") is True else None


def epoch_lines(path: Path) -> list[dict[str, Any]]:
    """A run file's per-epoch records (all but the summary); lines that are not JSON objects are skipped."""
    return [r for r in records(path) if r is not None and not r.get("summary")]


@dataclass(frozen=True)
class RunFiles:
    """Where one run's files are, in the results folder `folder`."""

    folder: Path
    name: str

    @property
    def finished(self) -> Path:
        return self.folder / f"{self.name}.jsonl"

    @property
    def lines(self) -> Path:
        """The lines so far of an unfinished run."""
        return self.folder / PARTIAL / f"{self.name}.jsonl.part"

    @property
    def checkpoint(self) -> Path:
        return self.folder / PARTIAL / f"{self.name}.pt"

    @property
    def errors(self) -> Path:
        return self.folder / f"{self.name}.err"

    def done(self) -> bool:
        return summary(self.finished) is not None

    def checkpoint_epoch(self) -> int:
        """Epochs the checkpoint holds (0: none, or unreadable: the run starts over)."""
        import torch

        try:
            return int(torch.load(self.checkpoint, map_location="cpu", weights_only=True)["epoch"]) if self.checkpoint.exists() else 0
        except Exception:  # noqa: BLE001 - a damaged checkpoint costs the run its progress, nothing else
            self.checkpoint.unlink()
            return 0

    def open_lines(self) -> IO[str]:
        """The lines file, for the resumed run to append to: the lines of epochs after its checkpoint go
        (the run says them again), and so do a line cut off mid-write and anything after it."""
        epoch = self.checkpoint_epoch()
        kept = []
        for line, record in _read(self.lines):
            if record is None or not isinstance(record.get("epoch"), int) or record.get("summary") or record["epoch"] > epoch:
                break
            kept.append(line + "\n")
        self.lines.parent.mkdir(parents=True, exist_ok=True)
        self.lines.write_text("".join(kept))
        return open(self.lines, "a")  # noqa: SIM115 - the run's process writes it; the caller closes it

    def finish(self) -> bool:
        """Make the lines of a run that ended with its summary the finished file; its partial files go."""
        if summary(self.lines) is None:
            return False
        os.replace(self.lines, self.finished)
        self.checkpoint.unlink(missing_ok=True)
        if self.errors.is_file() and self.errors.stat().st_size == 0:
            self.errors.unlink()
        return True

