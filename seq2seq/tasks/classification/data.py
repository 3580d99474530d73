"""Labelled texts for classification: reading, the label set, pieces and batches.

    format text   DIR/PREFIX.txt (one text per line) + DIR/PREFIX.label (one class name per line)
    format csv    DIR/PREFIX.csv, a header row naming the columns; classification.text_column
                  and .label_column pick the two read (a text may hold newlines: they become spaces)

The label set is the training data's class names, sorted, stored in the model directory as
labels.json; class i is output i of the model. Every problem is one UserError naming the file and
line: a label file of another length than its text file, an empty text or class name, a class the
model does not know, a CSV row that does not fit its header.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seq2seq.batch import Batch, collate
from seq2seq.checkpoint import read_json, write_json
from seq2seq.config import Recipe
from seq2seq.errors import UserError
from seq2seq.lines import read_lines
from seq2seq.vocab import Vocab

LABELS = "labels.json"  # in the model directory: {"labels": [class names, class 0 first]}


@dataclass
class Examples:
    """Texts as read, with their class names (None: unlabelled) and where each class name stands
    ("FILE:LINE", for messages)."""

    texts: list[str]
    labels: list[str] | None = None
    where: list[str] | None = None


def split_files(recipe: Recipe, prefix: str) -> list[Path]:
    """The files of a split: [texts, labels] or [the CSV file]; a missing one is named."""
    c, folder = recipe.classification, Path(recipe.data.dir)
    names = [f"{prefix}.csv"] if c.format == "csv" else [f"{prefix}.{c.text_suffix}", f"{prefix}.{c.label_suffix}"]
    for name in names:
        path = folder / name
        if not path.is_file():
            what = "is not a file" if path.exists() else "not found"
            raise UserError(f"{path}: {what} (data.dir={recipe.data.dir!r}); put the {prefix!r} split "
                            f"there as {' and '.join(names)} (classification.format {c.format!r})")
    return [folder / name for name in names]


def read_split(recipe: Recipe, prefix: str) -> Examples:
    c = recipe.classification
    files = split_files(recipe, prefix)
    if c.format == "csv":
        return read_csv(files[0], c.text_column, c.label_column)
    return read_labelled(*files)


def read_labelled(text_file: Path, label_file: Path) -> Examples:
    """Line i of `text_file` has the class named on line i of `label_file`."""
    texts, labels = read_lines(Path(text_file)), [x.strip() for x in read_lines(Path(label_file))]
    if len(texts) != len(labels):
        short, n = (label_file, len(labels)) if len(labels) < len(texts) else (text_file, len(texts))
        raise UserError(f"{short}:{n + 1}: missing; {text_file} has {len(texts)} lines but "
                        f"{label_file} has {len(labels)}: line i of each is one example")
    for n, (text, label) in enumerate(zip(texts, labels), 1):
        if not text.strip():
            raise UserError(f"{text_file}:{n}: empty text (its class on {label_file}:{n} is {label!r}); "
                            "remove the example from both files")
        if not label:
            raise UserError(f"{label_file}:{n}: empty class name")
    return Examples(texts, labels, [f"{label_file}:{n}" for n in range(1, len(labels) + 1)])


def read_csv(path: Path, text_column: str, label_column: str) -> Examples:
    """The two named columns of a CSV file with a header row (Python's csv dialect: commas,
    double quotes)."""
    data = Path(path).read_bytes()
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: bytes are not UTF-8 ({e.reason})") from None
    rows = csv.reader(io.StringIO(content, newline=""))
    try:
        header = next(rows, None)
        if not header:
            raise UserError(f"{path}: empty file (expected a header row naming the columns)")
        columns = []
        for key, name in (("text_column", text_column), ("label_column", label_column)):
            if name not in header:
                raise UserError(f"{path}:1: no column {name!r} (the header names {', '.join(map(repr, header))}); "
                                f"set classification.{key}")
            columns.append(header.index(name))
        texts, labels, where = [], [], []
        for row in rows:
            line = rows.line_num
            if len(row) != len(header):
                raise UserError(f"{path}:{line}: {len(row)} fields, but the header has {len(header)}")
            text, label = " ".join(row[columns[0]].splitlines()), row[columns[1]].strip()
            if not text.strip():
                raise UserError(f"{path}:{line}: empty text in column {text_column!r}")
            if not label:
                raise UserError(f"{path}:{line}: empty class name in column {label_column!r}")
            texts.append(text)
            labels.append(label)
            where.append(f"{path}:{line}")
    except csv.Error as e:
        raise UserError(f"{path}:{rows.line_num}: malformed CSV ({e})") from None
    if not texts:
        raise UserError(f"{path}: no rows after the header")
    return Examples(texts, labels, where)


# ---------------------------------------------------------------- the label set


def label_ids(examples: Examples, labels: list[str]) -> list[int]:
    """Class ids of the examples; a class name outside `labels` is an error naming its line."""
    index = {name: i for i, name in enumerate(labels)}
    for name, where in zip(examples.labels, examples.where):
        if name not in index:
            raise UserError(f"{where}: class {name!r} is not one the model knows (it was trained on "
                            f"{', '.join(map(repr, labels))})")
    return [index[name] for name in examples.labels]


def save_labels(model_dir: Path, labels: list[str]) -> None:
    write_json(Path(model_dir) / LABELS, {"labels": labels})


def load_labels(model_dir: Path, classes: int) -> list[str]:
    """The class names of a model directory; `classes`: how many meta.json says the model has."""
    path = Path(model_dir) / LABELS
    data = read_json(path)
    labels = data.get("labels") if isinstance(data, dict) else None
    if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        raise UserError(f"{path}: expected {{\"labels\": [class names]}}")
    if len(labels) != classes:
        raise UserError(f"{path}: {len(labels)} class names, but meta.json says the model has "
                        f"{classes} classes; the model directory mixes files of different models")
    return labels


# ---------------------------------------------------------------- pieces and batches


def encode_texts(vocab: Vocab, texts: list[str], max_length: int) -> tuple[list[list[int]], list[int]]:
    """Piece ids of each text cut to `max_length` (data.max_length), and the pieces each lost."""
    ids = vocab.encode(texts)
    return [x[:max_length] for x in ids], [max(0, len(x) - max_length) for x in ids]


@dataclass
class TextSet:
    """Encoded texts with class ids, in the fields the seq2seq Trainer's batch plan reads
    (Trainer.epoch_batches: usable, src_lengths, tgt_lengths)."""

    ids: list[list[int]]  # pieces of each text, cut to data.max_length
    labels: torch.Tensor  # (N,) class ids
    usable: np.ndarray  # indices of the texts trained on
    src_lengths: np.ndarray  # (N,) pieces per text
    tgt_lengths: np.ndarray  # (N,) zeros: no target side
    cut: list[int]  # pieces each text lost to data.max_length

    @classmethod
    def build(cls, vocab: Vocab, texts: list[str], labels: list[int], max_length: int,
              skip_long: bool = False) -> "TextSet":
        ids, cut = encode_texts(vocab, texts, max_length)
        usable = np.array([i for i, c in enumerate(cut) if not (skip_long and c)], dtype=np.int64)
        lengths = np.array([len(x) for x in ids], dtype=np.int64)
        return cls(ids, torch.tensor(labels, dtype=torch.long), usable, lengths,
                   np.zeros(len(ids), dtype=np.int64), cut)

    def batch(self, indices) -> tuple[Batch, torch.Tensor]:
        """The padded texts (B, S) and their class ids (B,)."""
        indices = [int(i) for i in indices]
        return collate([self.ids[i] for i in indices]), self.labels[indices]

    def report(self, max_length: int, skip_long: bool) -> str:
        """The start-up line: texts used, and those cut or skipped at data.max_length."""
        long = sum(1 for c in self.cut if c)
        what = (f"{long} longer than {max_length} pieces skipped" if skip_long else
                f"{long} cut to {max_length} pieces ({sum(self.cut)} pieces dropped)")
        return f"data: {len(self.usable)} of {len(self.ids)} training texts used; {what}"
