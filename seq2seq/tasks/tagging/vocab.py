"""A tagger's vocabularies (words, characters, tags), their JSON file, and padded batches.

    MODEL_DIR/vocab.json   {"words": [...], "chars": [...], "tags": [...], "lowercase": bool}

Word and character lists start with <pad> (id 0) and <unk> (id 1); the words are the training
words seen tagging.min_count times or more (lowercased with tagging.lowercase), most frequent
first; the characters are every character of the training words. Tags are the training tags in
the model's scheme (tagging.scheme), O first; tag i is output i of the model. No sentencepiece
here: a tagger gives one tag to each token as the file splits them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from seq2seq.checkpoint import read_json, write_json
from seq2seq.errors import UserError
from seq2seq.tasks.tagging.schemes import OUTSIDE

VOCAB = "vocab.json"
PAD, UNK = 0, 1
SPECIALS = ["<pad>", "<unk>"]


@dataclass
class TagBatch:
    """Padded tensors of one batch of sentences. B sentences, S words, N distinct words, L characters."""

    words: torch.Tensor  # (B, S) word ids, PAD after each sentence
    lengths: torch.Tensor  # (B,) words per sentence, on the CPU (for packing)
    chars: torch.Tensor  # (N, L) character ids of the batch's distinct words, PAD after each
    char_lengths: torch.Tensor  # (N,) on the CPU
    spelling: torch.Tensor  # (B, S) row of `chars` that spells each word (0 at padding)
    tags: torch.Tensor | None = None  # (B, S) tag ids, 0 at padding

    @property
    def mask(self) -> torch.Tensor:
        """(B, S) True at the sentences' words."""
        positions = torch.arange(self.words.size(1), device=self.words.device)
        return positions.unsqueeze(0) < self.lengths.to(self.words.device).unsqueeze(1)

    def to(self, device) -> "TagBatch":
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return TagBatch(move(self.words), self.lengths, move(self.chars), self.char_lengths, move(self.spelling),
                        move(self.tags))


def _pad(rows: list[list[int]]) -> torch.Tensor:
    out = torch.zeros(len(rows), max(1, max(len(r) for r in rows)), dtype=torch.long)  # PAD = 0
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.as_tensor(r, dtype=torch.long)
    return out


class Vocabularies:
    """Words, characters and tags, each a list whose index is the id."""

    def __init__(self, words: list[str], chars: list[str], tags: list[str], lowercase: bool):
        self.words, self.chars, self.tags, self.lowercase = words, chars, tags, lowercase
        self.word_ids = {w: i for i, w in enumerate(words)}
        self.char_ids = {c: i for i, c in enumerate(chars)}
        self.tag_ids = {t: i for i, t in enumerate(tags)}

    @classmethod
    def build(cls, sentences: list[list[str]], tags: list[list[str]], min_count: int,
              lowercase: bool) -> "Vocabularies":
        """From the training sentences and their tags (in the model's scheme)."""
        counts = Counter(w.lower() if lowercase else w for s in sentences for w in s)
        words = [w for w, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])) if n >= min_count]
        chars = sorted({c for s in sentences for w in s for c in w})
        kinds = sorted({t for s in tags for t in s} - {OUTSIDE})
        return cls(SPECIALS + words, SPECIALS + chars, [OUTSIDE] + kinds, lowercase)

    def word_id(self, word: str) -> int:
        return self.word_ids.get(word.lower() if self.lowercase else word, UNK)

    def batch(self, sentences: list[list[str]], tags: list[list[str]] | None = None) -> TagBatch:
        """Pad sentences (each of one word or more) and their tags, already checked to be known."""
        distinct: dict[str, int] = {}
        spelling = [[distinct.setdefault(w, len(distinct)) for w in s] for s in sentences]
        chars = [[self.char_ids.get(c, UNK) for c in w] for w in distinct]
        return TagBatch(_pad([[self.word_id(w) for w in s] for s in sentences]),
                        torch.tensor([len(s) for s in sentences], dtype=torch.long),
                        _pad(chars), torch.tensor([len(c) for c in chars], dtype=torch.long), _pad(spelling),
                        None if tags is None else _pad([[self.tag_ids[t] for t in s] for s in tags]))

    def save(self, model_dir: Path) -> None:
        write_json(Path(model_dir) / VOCAB, {"words": self.words, "chars": self.chars, "tags": self.tags,
                                            "lowercase": self.lowercase})

    @classmethod
    def load(cls, model_dir: Path, num_words: int, num_tags: int) -> "Vocabularies":
        """`num_words`, `num_tags`: what meta.json says the model has (src_vocab_size, tgt_vocab_size)."""
        path = Path(model_dir) / VOCAB
        data = read_json(path)
        lists = [data.get(k) if isinstance(data, dict) else None for k in ("words", "chars", "tags")]
        if not all(isinstance(x, list) and all(isinstance(i, str) for i in x) for x in lists) or \
                not isinstance(data.get("lowercase"), bool):
            raise UserError(f"{path}: expected {{\"words\": [...], \"chars\": [...], \"tags\": [...], "
                            "\"lowercase\": true|false}")
        words, chars, tags = lists
        if (len(words), len(tags)) != (num_words, num_tags):
            raise UserError(f"{path}: {len(words)} words and {len(tags)} tags, but meta.json says the model has "
                            f"{num_words} and {num_tags}; the model directory mixes files of different models")
        return cls(words, chars, tags, data["lowercase"])
