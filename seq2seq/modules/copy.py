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
"""

from __future__ import annotations

import torch
from torch import nn

TINY = 1e-12  # keeps log() finite for ids a sentence cannot produce (other sentences' extras)


class PointerGenerator(nn.Module):
    def __init__(self, hidden_size: int, embedding_size: int):
        super().__init__()
        self.gate = nn.Linear(hidden_size + embedding_size, 1)

    def forward(self, logits: torch.Tensor, att: torch.Tensor, embedded: torch.Tensor,
                weights: torch.Tensor, src: torch.Tensor, extra: int) -> torch.Tensor:
        """logits (B, T, V), att (B, T, H), embedded (B, T, E), weights (B, T, S), extended
        source ids src (B, S) -> log-probabilities (B, T, V + extra)."""
        p_gen = torch.sigmoid(self.gate(torch.cat([att, embedded.to(att.dtype)], -1)).float())  # (B, T, 1)
        generate = p_gen * torch.softmax(logits.float(), dim=-1)  # (B, T, V)
        if extra:
            generate = nn.functional.pad(generate, (0, extra))  # (B, T, V + extra)
        copy = (1.0 - p_gen) * weights.float()  # (B, T, S); 0 on padding
        index = src.unsqueeze(1).expand(-1, weights.size(1), -1)  # (B, T, S)
        return torch.log(generate.scatter_add(2, index, copy) + TINY)
