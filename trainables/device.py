"""Which torch device a configuration's `device` names ('auto', 'cpu', 'cuda', 'cuda:N'), and the one
error for a device this machine lacks (a configuration problem: the commands exit 2 with one line)."""

from __future__ import annotations

import torch

from trainables.config import ConfigError


class DeviceUnavailable(ConfigError):
    """The configuration asks for a device this machine does not have."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailable(f"device: {name!r} asked for, but this machine has no CUDA GPU; use --device cpu")
    return torch.device(name)
