"""Training losses: label-smoothed NLL, coverage."""

from __future__ import annotations

import torch

from seq2seq.vocab import PAD


CHUNK_ELEMENTS = 1 << 19  # fp32 values (2 MiB) of logits worked on at a time: a few of them fit in L2


class _SmoothedCrossEntropy(torch.autograd.Function):
    """F.cross_entropy(logits, targets, ignore_index=PAD, label_smoothing=eps, reduction="sum") over
    the (N, V) logits `rows` rows at a time. Forward keeps each row's log-sum-exp (and mean logit)
    and nothing of size (N, V) but the logits themselves; backward writes the gradient, softmax
    minus the smoothed one-hot, each row scaled by 0 (PAD) or the incoming gradient, chunk by chunk
    into one tensor of the logits' dtype. The arithmetic is fp32 whatever the logits' dtype.

    torch's own composes log_softmax, nll_loss, a sum and their backwards: about eight passes and
    four (N, V) temporaries. Working in cache-sized chunks also spares the (N, V) fp32 temporaries
    themselves: glibc gives blocks over 32 MiB (Multi30k's 1,100 x 8,000) fresh pages from the
    kernel at every allocation, and faulting them in cost as much as the arithmetic."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor, eps: float, rows: int) -> torch.Tensor:
        lse = logits.new_empty(logits.size(0), dtype=torch.float32)  # (N,) log-sum-exp of each row
        mean = torch.empty_like(lse) if eps else None  # (N,) mean logit
        for i in range(0, logits.size(0), rows):
            x = logits[i:i + rows].float()
            torch.logsumexp(x, -1, out=lse[i:i + rows])
            if eps:
                torch.mean(x, -1, out=mean[i:i + rows])
        nll = lse - logits.gather(1, targets.unsqueeze(1)).squeeze(1).float()  # (N,)
        per_row = (1.0 - eps) * nll + eps * (lse - mean) if eps else nll  # -mean log p = lse - mean
        keep = targets != PAD
        ctx.save_for_backward(logits, targets, keep, lse)
        ctx.eps, ctx.rows = eps, rows
        return (per_row * keep).sum()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        logits, targets, keep, lse = ctx.saved_tensors
        eps, rows = ctx.eps, ctx.rows
        out = torch.empty_like(logits)
        scale = (keep * grad).unsqueeze(1)  # (N, 1): PAD rows 0
        for i in range(0, logits.size(0), rows):
            g = logits[i:i + rows].float().sub_(lse[i:i + rows].unsqueeze(1)).exp_()  # softmax
            if eps:
                g.sub_(eps / g.size(1))
            target = targets[i:i + rows].unsqueeze(1)
            g.scatter_add_(1, target, g.new_full(target.shape, eps - 1.0))
            out[i:i + rows] = g.mul_(scale[i:i + rows])
        return out, None, None, None


def smoothed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0,
                           rows: int | None = None) -> torch.Tensor:
    """Summed label-smoothed cross-entropy of logits (N, V) against targets (N,), PAD rows left out:
    torch's F.cross_entropy with ignore_index=PAD and reduction="sum", fused (_SmoothedCrossEntropy),
    `rows` rows at a time (default: CHUNK_ELEMENTS values)."""
    rows = rows or max(1, CHUNK_ELEMENTS // logits.size(-1))
    return _SmoothedCrossEntropy.apply(logits, targets, float(label_smoothing), rows)


def sequence_nll(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0,
                 src: torch.Tensor | None = None, vocab_size: int = 0) -> torch.Tensor:
    """Summed (label-smoothed) cross-entropy over non-pad targets; logits (B, T, W), targets (B, T).

    With copy the last W - V columns are the extended ids of the whole batch; given the extended
    sources `src` (B, S) and V = `vocab_size`, smoothing spreads over the V pieces and the ids of
    the sentence's own source only, so a sentence's loss does not depend on its batchmates."""
    if not label_smoothing or src is None or logits.size(-1) <= vocab_size:
        return smoothed_cross_entropy(logits.flatten(0, 1), targets.flatten(), label_smoothing)
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
