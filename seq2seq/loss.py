"""Training losses: label-smoothed NLL, coverage."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seq2seq.vocab import PAD


def sequence_nll(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Summed (label-smoothed) cross-entropy over non-pad targets; logits (B, T, V), targets (B, T)."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=PAD,
                           label_smoothing=label_smoothing, reduction="sum")


def coverage_loss(weights: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed sum_i min(a_t,i, c_t,i) over non-pad target steps, c_t = sum_{t' < t} a_t' the
    coverage (See, Liu & Manning 2017, arXiv:1704.04368, eq. 12): 0 while attention never goes
    back to a position, positive when it does. weights (B, T, S), targets (B, T)."""
    weights = weights.float()
    coverage = weights.cumsum(1) - weights  # (B, T, S) attention of the earlier steps
    per_step = torch.minimum(weights, coverage).sum(-1)  # (B, T)
    return (per_step * (targets != PAD)).sum()
