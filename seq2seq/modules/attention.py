"""Attention mechanisms. One signature for all:

    keys = attention.prepare_keys(values)          # once per source batch, (B, S, K)
    context, weights = attention(query, keys, values, mask, coverage=None)

query (B, T, Hq) for T decoder steps at once (T = 1 inside step-by-step decoding), values
(B, S, Hv) the encoder states, mask (B, S) True on real tokens. context (B, T, Hv), weights
(B, T, S): each row sums to 1 and is 0 on padding. coverage (B, S), the sum of the attention of
earlier steps, enters the additive scores of a mechanism built with `coverage=True` (See, Liu &
Manning 2017, arXiv:1704.04368, eq. 11); the others take None.
"""

from __future__ import annotations

import torch
from torch import nn

from seq2seq.modules.additive import additive_scores
from seq2seq.modules.deferred_grad import DeferredWeight


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    scores = scores.float().masked_fill(~mask.unsqueeze(1), float("-inf"))  # (B, T, S)
    return torch.softmax(scores, dim=-1)


class Attention(nn.Module):
    """Shared plumbing: scores -> masked softmax -> weighted sum of values."""

    def prepare_keys(self, values: torch.Tensor) -> torch.Tensor:
        return values

    def score(self, query: torch.Tensor, keys: torch.Tensor, coverage=None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, query, keys, values, mask, coverage=None):
        weights = _masked_softmax(self.score(query, keys, coverage), mask)  # (B, T, S)
        w = weights.to(values.dtype)
        # values wrapped by a teacher-forced loop (decoder.Memory.for_steps): their gradient once
        context = values.matmul(w) if isinstance(values, DeferredWeight) else torch.bmm(w, values)
        return context, weights  # (B, T, Hv), (B, T, S)


class BahdanauAttention(Attention):
    """Additive attention, v^T tanh(W q + U k) (Bahdanau, Cho & Bengio 2015, arXiv:1409.0473)."""

    def __init__(self, query_size: int, value_size: int, hidden_size: int, coverage: bool = False):
        super().__init__()
        self.query_layer = nn.Linear(query_size, hidden_size, bias=False)
        self.key_layer = nn.Linear(value_size, hidden_size, bias=False)
        self.energy_layer = nn.Linear(hidden_size, 1, bias=False)
        # v^T tanh(W q + U k + w_c c): coverage c (B, S) is one more additive term
        self.coverage_layer = nn.Linear(1, hidden_size, bias=False) if coverage else None

    def prepare_keys(self, values):
        return self.key_layer(values)  # (B, S, A)

    def score(self, query, keys, coverage=None):
        q = self.query_layer(query)  # (B, T, A)
        if self.coverage_layer is not None:
            keys = keys + self.coverage_layer(coverage.unsqueeze(-1).to(keys.dtype))  # (B, S, A)
        return additive_scores(q, keys, self.energy_layer)  # (B, T, S); additive.py: fused on CPU fp32


class LuongConcatAttention(BahdanauAttention):
    """Luong 'concat' score, v^T tanh(W [q; k]) (Luong, Pham & Manning 2015, arXiv:1508.04025).

    W [q; k] = W_q q + W_k k, so it is computed exactly as the additive score; keys W_k k are
    prepared once per batch.
    """


class LuongDotAttention(Attention):
    """Luong 'dot' score, q^T k (arXiv:1508.04025); query and value sizes must match. `scaled`
    divides it by sqrt(query size) (Vaswani et al. 2017, arXiv:1706.03762): with 512-wide states
    the unscaled scores start so large that the softmax is nearly one-hot."""

    def __init__(self, scaled: bool = False, query_size: int = 1):
        super().__init__()
        self.scale = query_size ** -0.5 if scaled else 1.0

    def score(self, query, keys, coverage=None):
        if self.scale != 1.0:
            query = query * self.scale
        return torch.bmm(query, keys.transpose(1, 2))  # (B, T, S)


class LuongGeneralAttention(LuongDotAttention):
    """Luong 'general' score, q^T W k (arXiv:1508.04025); W k is prepared once per batch."""

    def __init__(self, query_size: int, value_size: int, scaled: bool = False):
        super().__init__(scaled, query_size)
        self.key_layer = nn.Linear(value_size, query_size, bias=False)

    def prepare_keys(self, values):
        return self.key_layer(values)  # (B, S, Hq)


def build_attention(kind: str, query_size: int, value_size: int, hidden_size: int,
                    coverage: bool = False, scaled: bool = False) -> Attention:
    if coverage and kind not in ("bahdanau", "concat"):
        raise ValueError(f"coverage needs additive attention ('bahdanau' or 'concat'), not {kind!r}")
    if scaled and kind not in ("dot", "general"):
        raise ValueError(f"scaled applies to 'dot' and 'general' attention, not {kind!r}")
    if kind == "bahdanau":
        return BahdanauAttention(query_size, value_size, hidden_size or query_size, coverage)
    if kind == "concat":
        return LuongConcatAttention(query_size, value_size, hidden_size or query_size, coverage)
    if kind == "general":
        return LuongGeneralAttention(query_size, value_size, scaled)
    if kind == "dot":
        if query_size != value_size:
            raise ValueError(f"dot attention needs equal query and value sizes, got {query_size} "
                             f"and {value_size}; use 'general'")
        return LuongDotAttention(scaled, query_size)
    raise ValueError(f"unknown attention {kind!r}")
