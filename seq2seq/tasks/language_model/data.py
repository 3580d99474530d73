"""Continuous text for a language model: reading, units, and the ways it is cut into batches.

    DIR/PREFIX.txt   (language_model.text_suffix) continuous text: its lines joined by newlines,
                     each line ending in one (the last included)

Units are the vocabulary's pieces: characters with vocab.model_type char, spelt exactly as
written (train_sentencepiece(verbatim=True): no normalisation, every space kept). A newline is
the unit EOS, so sentencepiece, which reads a line at a time, never sees one. The model reads the
stream EOS + units: it starts as if after a newline, so every unit of the text, the first
included, is predicted, and a text of C characters in character units is C targets.

    tbptt    (TextStreams) the stream cut into B = language_model.streams rows of M units (a tail
             of fewer than B units dropped), read left to right in segments of L = bptt_length:
             segment i has inputs rows[:, iL : iL + L] and targets one unit further on; the
             trainer starts segment i + 1 from the state segment i ended in (detached)
    windows  (Windows) windows of L + 1 units laid end to end from an offset drawn each epoch,
             shuffled, B to a batch; each starts from a zero state

Both plan an epoch as a function of (training.seed, epoch) alone, so a resumed run draws the same.
Scoring (validation, seq2seq-evaluate, LanguageModel.score) uses rows too, padded with PAD, every
target counted once: cut_rows (one text, B rows) and pad_rows (one row a text).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import torch

from seq2seq.config import Recipe
from seq2seq.errors import UserError
from seq2seq.lines import read_lines
from seq2seq.vocab import EOS, PAD, UNK, Vocab

UNKNOWN = "\u2047"  # how an unknown unit is written (sentencepiece's ⁇, without its spaces)


def text_file(recipe: Recipe, prefix: str) -> Path:
    """DIR/PREFIX.<text_suffix>; a missing file is named with what to put there."""
    path = Path(recipe.data.dir) / f"{prefix}.{recipe.language_model.text_suffix}"
    if not path.is_file():
        what = "is not a file" if path.exists() else "not found"
        raise UserError(f"{path}: {what} (data.dir={recipe.data.dir!r}); put the {prefix!r} split there as "
                        f"continuous text (language_model.text_suffix {recipe.language_model.text_suffix!r})")
    return path


def read_text(path: Path) -> str:
    """A UTF-8 file's lines joined by newlines, each ending in one; a file that is missing, empty,
    whitespace only or not UTF-8 is a UserError naming it (and the line)."""
    lines = read_lines(Path(path))
    if not any(line.strip() for line in lines):
        raise UserError(f"{path}: no text (only blank lines)")
    return "".join(line + "\n" for line in lines)


def encode_text(vocab: Vocab, text: str) -> list[int]:
    """Units of a text: each line's pieces, a newline written as EOS."""
    units: list[int] = []
    for i, line in enumerate(vocab.encode(text.split("\n"))):
        if i:
            units.append(EOS)
        units.extend(line)
    return units


def decode_units(vocab: Vocab, units: list[int]) -> str:
    """Units -> text: EOS a newline, UNK '⁇', PAD and BOS dropped."""
    lines: list[list[int]] = [[]]
    for unit in units:
        if unit == EOS:
            lines.append([])
        elif unit > EOS or unit == UNK:
            lines[-1].append(unit)
    return "\n".join(_decode_line(vocab, line) for line in lines)


def _decode_line(vocab: Vocab, units: list[int]) -> str:
    """sentencepiece's decoding, but an unknown unit is '⁇' alone (sentencepiece puts spaces around it)."""
    parts = []
    for unknown, run in itertools.groupby(units, key=lambda u: u == UNK):
        run = list(run)
        parts.append(UNKNOWN * len(run) if unknown else vocab.sp.decode(run))
    return "".join(parts)


def stream(units: list[int]) -> torch.Tensor:
    """What the model reads: EOS (the start, as after a newline) + the units. (N + 1,)"""
    return torch.tensor([EOS, *units], dtype=torch.long)


# ---------------------------------------------------------------- training batches


class TextStreams:
    """tbptt: a stream (N + 1,) in `streams` rows (B, M), read in segments of `bptt` units."""

    def __init__(self, data: torch.Tensor, streams: int, bptt: int):
        self.columns = data.numel() // streams  # M
        if self.columns < 2:
            raise ValueError(f"{data.numel()} units fill no {streams} streams of 2 units")
        self.rows = data[:streams * self.columns].view(streams, self.columns)  # (B, M)
        self.bptt = bptt

    def __len__(self) -> int:
        """Segments per epoch: every column but the last is an input once."""
        return math.ceil((self.columns - 1) / self.bptt)

    def plan(self, seed: int, epoch: int) -> list[np.ndarray]:
        """The epoch's batches: segment i is [i], in order (the state runs through them)."""
        return [np.array([i]) for i in range(len(self))]

    def batch(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Segment indices[0]: inputs (B, T) and targets (B, T), T = bptt or the last one's rest."""
        start = int(indices[0]) * self.bptt
        end = min(start + self.bptt, self.columns - 1)
        return self.rows[:, start:end], self.rows[:, start + 1:end + 1]

    def report(self) -> str:
        return (f"{self.rows.size(0)} streams of {self.columns:,} units, {len(self)} segments of up to "
                f"{self.bptt} a epoch (tbptt)")


class Windows:
    """windows: inputs and targets of `bptt` units cut from a stream (N + 1,), `streams` to a batch."""

    def __init__(self, data: torch.Tensor, streams: int, bptt: int):
        if data.numel() < bptt + 1:
            raise ValueError(f"{data.numel()} units hold no window of {bptt + 1}")
        self.data, self.streams, self.bptt = data, streams, bptt

    def plan(self, seed: int, epoch: int) -> list[np.ndarray]:
        """Window starts, end to end from an offset drawn for the epoch, shuffled, in batches."""
        rng = np.random.default_rng([seed, epoch])
        n, length = self.data.numel(), self.bptt
        offset = int(rng.integers(min(length, n - length)))
        starts = rng.permutation(np.arange(offset, n - length, length))  # each window: start .. start + L
        return [starts[i:i + self.streams] for i in range(0, len(starts), self.streams)]

    def batch(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (B, L) and targets (B, L) of the windows starting at `indices`."""
        at = torch.as_tensor(indices, dtype=torch.long).unsqueeze(1) + torch.arange(self.bptt + 1)  # (B, L + 1)
        window = self.data[at]
        return window[:, :-1], window[:, 1:]

    def report(self) -> str:
        n = (self.data.numel() - 1) // self.bptt
        return f"about {n:,} windows of {self.bptt} units a epoch, {self.streams} a batch (windows)"


BATCHING = {"tbptt": TextStreams, "windows": Windows}


# ---------------------------------------------------------------- scoring rows


def pad_rows(streams: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """One row per stream: inputs s[:-1] and targets s[1:], padded with PAD -> (R, T) each."""
    width = max(s.numel() - 1 for s in streams)
    x = torch.full((len(streams), width), PAD, dtype=torch.long)
    y = torch.full((len(streams), width), PAD, dtype=torch.long)
    for r, s in enumerate(streams):
        x[r, :s.numel() - 1], y[r, :s.numel() - 1] = s[:-1], s[1:]
    return x, y


def cut_rows(data: torch.Tensor, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A stream's N targets in up to `rows` rows of ceil(N / rows), each target with its own input
    before it (row r starts from a zero state at target r * width) -> inputs, targets (R, T)."""
    n = data.numel() - 1
    width = math.ceil(n / rows)
    return pad_rows([data[start:start + width + 1] for start in range(0, n, width)])
