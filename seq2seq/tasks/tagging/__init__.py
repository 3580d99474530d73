"""Sequence tagging (`task: tagging`): word embeddings and a character encoder of each word, a
bidirectional recurrent encoder, and a linear-chain CRF (or a softmax) over the tags; entity
precision, recall and F1 (seqeval) and token accuracy. Data: CoNLL column files (data.py), IOB1
or IOB2, learned as IOB2 or IOBES (schemes.py)."""

from __future__ import annotations

from pathlib import Path

from seq2seq.config import Recipe
from seq2seq.tasks.tagging.tagger import Tagger, evaluate

__all__ = ["Tagger", "evaluate", "train"]


def train(recipe: Recipe, model_dir: Path, *, resume: bool = False, overwrite: bool = False):
    """Train a tagging recipe into `model_dir` (training.py, imported when called: it brings the
    trainer's `datasets` and matplotlib, which tagging does without)."""
    from seq2seq.tasks.tagging.training import train as train_tagger
    return train_tagger(recipe, model_dir, resume=resume, overwrite=overwrite)
