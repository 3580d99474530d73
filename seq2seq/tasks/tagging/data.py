"""Tagged sentences: CoNLL column files read directly, their tags checked, and the training set.

    DIR/PREFIX.<tagging.suffix>   one token a line in whitespace-separated columns, the word first
                                  and the tag in column tagging.tag_column (CoNLL-2003: word, POS,
                                  chunk, NER; -1, the last); a blank line ends a sentence; lines
                                  whose word is -DOCSTART- (document breaks) are passed over

Every token line of a file has as many columns as its first; a line with another number is an
error naming the file and line, as are a tag the file's scheme does not write (tagging.file_scheme)
and, at validation and evaluation, an entity type the model was not trained on. Tags are read into
IOB2 (schemes.py); an I-X that opens a span in an IOB2 file is counted and said.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seq2seq.config import Recipe
from seq2seq.errors import UserError
from seq2seq.lines import iter_lines
from seq2seq.tasks.tagging.schemes import convert, malformed, repairs, split, to_iob2
from seq2seq.tasks.tagging.vocab import TagBatch, Vocabularies

DOCSTART = "-DOCSTART-"


@dataclass
class Sentences:
    """Sentences as read: words, IOB2 tags (None: the file's tags were not read), and the line
    number of each word in `path`, for messages."""

    path: Path
    words: list[list[str]]
    tags: list[list[str]] | None
    lines: list[list[int]]
    repaired: int = 0  # IOB2 files: I-X tags that opened a span, read as B-X

    def report(self, scheme: str) -> str | None:
        """A line for the start-up report when tags were repaired, else None."""
        if not self.repaired or scheme != "iob2":
            return None
        return (f"note: {self.path}: {self.repaired} spans opened by I-X (not B-X, as tagging.file_scheme "
                "'iob2' writes them) read as B-X, as conlleval reads them")


def split_file(recipe: Recipe, prefix: str) -> Path:
    """The file of a split; a missing one is named."""
    path = Path(recipe.data.dir) / f"{prefix}.{recipe.tagging.suffix}"
    if not path.is_file():
        what = "is not a file" if path.exists() else "not found"
        raise UserError(f"{path}: {what} (data.dir={recipe.data.dir!r}); put the {prefix!r} split there in CoNLL "
                        f"columns, a token a line (tagging.suffix {recipe.tagging.suffix!r})")
    return path


def read_conll(path: Path, tag_column: int | None, scheme: str = "iob1") -> Sentences:
    """The sentences of a CoNLL file; `tag_column` None reads the words alone (tags not needed)."""
    return parse_conll(Path(path), iter_lines(Path(path)), tag_column, scheme)


def parse_conll(path: Path | str, numbered_lines, tag_column: int | None, scheme: str = "iob1") -> Sentences:
    """read_conll over (line number, text) pairs; `path` names them in messages (a file, stdin)."""
    words, tags, lines = [], [], []
    sentence: list[tuple[int, list[str]]] = []
    width, first = 0, 0  # columns of the file's first token line, and its number

    def close() -> None:
        if sentence:
            words.append([fields[0] for _, fields in sentence])
            tags.append([fields[tag_column] for _, fields in sentence] if tag_column is not None else [])
            lines.append([n for n, _ in sentence])
            sentence.clear()

    for number, text in numbered_lines:
        fields = text.split()
        if not fields:
            close()
            continue
        if fields[0] == DOCSTART:
            close()
            continue
        if not width:
            width, first = len(fields), number
            if tag_column is not None and not (-width <= tag_column < width and tag_column % width):
                raise UserError(f"{path}:{number}: tagging.tag_column is {tag_column}, but the line has {width} "
                                "columns (the word is column 0)")
        elif len(fields) != width:
            columns = f"{len(fields)} column{'s' * (len(fields) > 1)}"
            raise UserError(f"{path}:{number}: {columns}, but the file's first token line ({path}:{first}) has "
                            f"{width}; every token line needs the same columns")
        if tag_column is not None:
            why = malformed(fields[tag_column], scheme)
            if why:
                raise UserError(f"{path}:{number}: {why} (tagging.file_scheme {scheme!r})")
        sentence.append((number, fields))
    close()
    if not words:
        raise UserError(f"{path}: no sentences (expected a token a line, blank lines between sentences)")
    if tag_column is None:
        return Sentences(path, words, None, lines)
    return Sentences(path, words, [to_iob2(t) for t in tags], lines, sum(repairs(t) for t in tags))


def check_known(sentences: Sentences, vocab: Vocabularies) -> None:
    """Every entity type of the sentences is one the model knows; else an error naming the line."""
    known = {split(t)[1] for t in vocab.tags}
    for tags, lines in zip(sentences.tags, sentences.lines):
        for tag, line in zip(tags, lines):
            if split(tag)[1] not in known:
                names = ", ".join(sorted(known - {""}))
                raise UserError(f"{sentences.path}:{line}: tag {tag!r} is of an entity type the model does not "
                                f"know (it was trained on {names})")


@dataclass
class TaggedSet:
    """Sentences (with tags in the model's scheme, for training and validation), in the fields the
    seq2seq Trainer's batch plan reads (Trainer.epoch_batches: usable, src_lengths, tgt_lengths)."""

    words: list[list[str]]
    tags: list[list[str]] | None  # in the model's scheme (tagging.scheme); None: to be tagged
    vocab: Vocabularies
    usable: np.ndarray  # every sentence: none is cut or skipped
    src_lengths: np.ndarray  # (N,) words per sentence
    tgt_lengths: np.ndarray  # (N,) zeros: no target side

    @classmethod
    def build(cls, sentences: Sentences, vocab: Vocabularies, scheme: str) -> "TaggedSet":
        lengths = np.array([len(s) for s in sentences.words], dtype=np.int64)
        tags = None if sentences.tags is None else [convert(t, "iob2", scheme) for t in sentences.tags]
        return cls(sentences.words, tags, vocab,
                   np.arange(len(lengths)), lengths, np.zeros(len(lengths), dtype=np.int64))

    def tokens(self, indices) -> int:
        return int(self.src_lengths[np.asarray(indices, dtype=np.int64)].sum())

    def batch(self, indices) -> TagBatch:
        indices = [int(i) for i in indices]
        return self.vocab.batch([self.words[i] for i in indices],
                                None if self.tags is None else [self.tags[i] for i in indices])
