"""Training losses: label-smoothed NLL, coverage."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seq2seq.vocab import PAD


def sequence_nll(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0,
                 src: torch.Tensor | None = None, vocab_size: int = 0) -> torch.Tensor:
    """Summed (label-smoothed) cross-entropy over non-pad targets; logits (B, T, W), targets (B, T).

    With copy the last W - V columns are the extended ids of the whole batch; given the extended
    sources `src` (B, S) and V = `vocab_size`, smoothing spreads over the V pieces and the ids of
    the sentence's own source only, so a sentence's loss does not depend on its batchmates."""
    if not label_smoothing or src is None or logits.size(-1) <= vocab_size:
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=PAD,
                               label_smoothing=label_smoothing, reduction="sum")
    log_p = logits.float().log_softmax(-1)  # (B, T, W); with copy already normalised
    own = torch.zeros(src.size(0), log_p.size(-1), dtype=torch.bool, device=src.device)  # (B, W)
    own[:, :vocab_size] = True
    own.scatter_(1, src, True)
    nll = -log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    smooth = -(log_p * own.unsqueeze(1)).sum(-1) / own.sum(-1, keepdim=True)  # (B, T)
    loss = (1.0 - label_smoothing) * nll + label_smoothing * smooth
    return (loss * (targets != PAD)).sum()


def coverage_loss(weights: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed sum_i min(a_t,i, c_t,i) over non-pad target steps, c_t = sum_{t' < t} a_t' the
    coverage (See, Liu & Manning 2017, arXiv:1704.04368, eq. 12): 0 while attention never goes
    back to a position, positive when it does. weights (B, T, S), targets (B, T)."""
    weights = weights.float()
    coverage = weights.cumsum(1) - weights  # (B, T, S) attention of the earlier steps
    per_step = torch.minimum(weights, coverage).sum(-1)  # (B, T)
    return (per_step * (targets != PAD)).sum()
