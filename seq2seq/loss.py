"""Training losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seq2seq.vocab import PAD


def sequence_nll(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Summed (label-smoothed) cross-entropy over non-pad targets; logits (B, T, V), targets (B, T)."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=PAD,
                           label_smoothing=label_smoothing, reduction="sum")
