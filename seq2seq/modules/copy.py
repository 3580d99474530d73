"""The pointer-generator output layer: generate from the vocabulary or copy a source piece.

See, Liu & Manning 2017, "Get To The Point" (arXiv:1704.04368), eq. 8-9; OpenNMT-py's copy
attention is the same mixture. At each step

    p_gen = sigmoid(w^T [h~_t; x_t] + b)
    P(w)  = p_gen P_vocab(w) + (1 - p_gen) sum_{i: src_i = w} a_t,i

over the extended vocabulary: the V pieces of the model, then one id per source-only piece of
the sentence (see seq2seq/tasks/translation/extended.py), so a piece never seen in training can
still be produced.
h~_t = tanh(W [h_t; c_t]) is the attentional vector, made of the decoder state h_t and the
context c_t; x_t is the embedded input token.

Training without label smoothing needs P(w) of the reference pieces only: `target_log_probs`
computes them from log-sum-exp of the logits (one pass over V each way) and the attention on
the source positions that hold the piece, instead of the whole mixture over V + extra (softmax,
padding, scatter, log, then the loss's own log-softmax, and all their backwards).
"""

from __future__ import annotations

import torch
from torch import nn

TINY = 1e-12  # keeps log() finite for ids a sentence cannot produce (other sentences' extras)


class PointerGenerator(nn.Module):
    def __init__(self, hidden_size: int, embedding_size: int):
        super().__init__()
        self.gate = nn.Linear(hidden_size + embedding_size, 1)

    def gate_value(self, att: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        """p_gen (B, T, 1), fp32."""
        return torch.sigmoid(self.gate(torch.cat([att, embedded.to(att.dtype)], -1)).float())

    def forward(self, logits: torch.Tensor, att: torch.Tensor, embedded: torch.Tensor,
                weights: torch.Tensor, src: torch.Tensor, extra: int) -> torch.Tensor:
        """logits (B, T, V), att (B, T, H), embedded (B, T, E), weights (B, T, S), extended
        source ids src (B, S) -> log-probabilities (B, T, V + extra)."""
        p_gen = self.gate_value(att, embedded)  # (B, T, 1)
        generate = p_gen * torch.softmax(logits.float(), dim=-1)  # (B, T, V)
        if extra:
            generate = nn.functional.pad(generate, (0, extra))  # (B, T, V + extra)
        copy = (1.0 - p_gen) * weights.float()  # (B, T, S); 0 on padding
        index = src.unsqueeze(1).expand(-1, weights.size(1), -1)  # (B, T, S)
        return torch.log(generate.scatter_add(2, index, copy) + TINY)

    def target_log_probs(self, logits: torch.Tensor, att: torch.Tensor, embedded: torch.Tensor,
                         weights: torch.Tensor, src: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """forward(...).gather(-1, targets) without the mixture over the whole vocabulary: logits
        (B, T, V), targets (B, T) extended ids -> log P(target) (B, T), fp32."""
        p_gen = self.gate_value(att, embedded).squeeze(-1)  # (B, T)
        vocab = logits.size(-1)
        in_vocab = targets < vocab
        logits = logits.float()
        chosen = logits.gather(-1, targets.clamp(max=vocab - 1).unsqueeze(-1)).squeeze(-1)  # (B, T)
        generate = torch.exp(chosen - torch.logsumexp(logits, -1)) * in_vocab  # P_vocab(target)
        attended = (weights.float() * (src.unsqueeze(1) == targets.unsqueeze(-1))).sum(-1)  # (B, T)
        return torch.log(p_gen * generate + (1.0 - p_gen) * attended + TINY)
