"""Padded batches: id lists -> the tensors the model takes, and the length-bucketed batch plan
that the trainer draws every room's epoch from (no corpus reading here, so the model, search and
translator import neither `datasets` nor the Arrow cache)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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


def make_batches(indices: np.ndarray, src_lengths: np.ndarray, tgt_lengths: np.ndarray,
                 batch_size: int, batch_type: str, rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Group sentence indices into batches of similar length (little padding).

    With `rng`, lengths are sorted with random tie-breaking and the batch order is shuffled;
    without, batches follow length order. A token budget counts padded tokens of the longer side
    (+1 for BOS/EOS), so a batch costs about the same whatever its lengths.
    """
    if len(indices) == 0:
        return []
    src_l, tgt_l = src_lengths[indices], tgt_lengths[indices]
    noise = rng.random(len(indices)) if rng is not None else np.zeros(len(indices))
    order = indices[np.lexsort((noise, src_l, tgt_l))]
    batches, start, longest = [], 0, 0
    for i, idx in enumerate(order):
        longest_new = max(longest, int(src_lengths[idx]), int(tgt_lengths[idx]) + 1)
        n = i - start + 1
        cost = n * longest_new if batch_type == "tokens" else n
        if cost > batch_size and n > 1:
            batches.append(order[start:i])
            start, longest_new = i, max(int(src_lengths[idx]), int(tgt_lengths[idx]) + 1)
        longest = longest_new
    batches.append(order[start:])
    if rng is not None:
        rng.shuffle(batches)
    return batches

