"""Padded batches: id lists -> the tensors the model takes (no corpus reading here, so the model,
search and translator import neither `datasets` nor the Arrow cache)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seq2seq.vocab import BOS, EOS, PAD


@dataclass
class Batch:
    """Padded tensors of one batch. B batch, S source length, T target length."""

    src: torch.Tensor  # (B, S) token ids, PAD after each sentence
    src_lengths: torch.Tensor  # (B,) on the CPU, as packing wants
    tgt_in: torch.Tensor | None = None  # (B, T) BOS y1 .. yn
    tgt_out: torch.Tensor | None = None  # (B, T) y1 .. yn EOS

    @property
    def num_tgt_tokens(self) -> int:
        return int((self.tgt_out != PAD).sum()) if self.tgt_out is not None else 0

    def to(self, device) -> "Batch":
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(move(self.src), self.src_lengths, move(self.tgt_in), move(self.tgt_out))


def _pad(seqs: list[list[int]]) -> torch.Tensor:
    out = torch.full((len(seqs), max(1, max(len(s) for s in seqs))), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


def collate(src: list[list[int]], tgt: list[list[int]] | None = None) -> Batch:
    """Pad a list of id sequences into a Batch; empty sources become a single EOS."""
    src = [list(s) if len(s) else [EOS] for s in src]
    lengths = torch.tensor([len(s) for s in src], dtype=torch.long)
    if tgt is None:
        return Batch(_pad(src), lengths)
    tgt_in = _pad([[BOS] + list(t) for t in tgt])
    tgt_out = _pad([list(t) + [EOS] for t in tgt])
    return Batch(_pad(src), lengths, tgt_in, tgt_out)
