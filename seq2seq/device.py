"""Where to run, and the bf16 autocast context used on CUDA."""

from __future__ import annotations

import contextlib

import torch

from seq2seq.errors import UserError


def resolve_device(name: str = "auto", source: str = "training.device") -> torch.device:
    """'auto', 'cpu' or 'cuda'; `source` names the setting in the error message."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{source}: 'cuda' was asked for but no CUDA GPU is available")
    return torch.device(name)


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA; a no-op elsewhere (fp32 on CPU)."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
