"""A run's checkpoint as one file: written atomically after every epoch, read back to resume.

    python -m trainables.train --preset ldam_drw --checkpoint results/partial/ldam_drw-ir100-seed0.pt

`write_checkpoint` writes beside the target and renames, so a run killed at any moment (a GPU
lease running out, SIGKILL) leaves either the previous checkpoint or the new one, never half a
file. `read_checkpoint` refuses, with a ConfigError naming the file and the way out, a file that
is damaged or belongs to another configuration.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from trainables.config import ConfigError, TrainConfig

# Fields that say where and how fast a run trains, not what it computes: a run may resume with
# other values of these (on another GPU, compiled or not).
RUNTIME_FIELDS = ("device", "compile", "channels_last", "divergence_check_every")


def write_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, partial)
    os.replace(partial, path)


def read_checkpoint(path: str | Path, config: TrainConfig) -> dict[str, Any] | None:
    """The checkpoint to resume `config` from, or None when there is none yet."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        saved = dict(state["config"])
        int(state["epoch"])
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same way out
        raise ConfigError(f"--checkpoint {path}: cannot read it ({type(exc).__name__}); remove it to start the run over") from None
    ours = config.to_dict()
    differ = sorted(k for k in ours if k not in RUNTIME_FIELDS and saved.get(k) != ours[k])
    if differ:
        raise ConfigError(f"--checkpoint {path}: it is of another configuration ({', '.join(differ[:5])} differ); "
                          "remove it or give another file")
    return state
