"""Text classification (`task: classification`): a recurrent encoder, a pooling (last state,
mean, max or attention), dropout and a linear layer over the classes; cross-entropy; accuracy and
macro-F1. Data: PREFIX.txt + PREFIX.label, or PREFIX.csv with named columns (data.py)."""

from __future__ import annotations

from pathlib import Path

from seq2seq.config import Recipe
from seq2seq.tasks.classification.classifier import Classifier, evaluate

__all__ = ["Classifier", "evaluate", "train"]


def train(recipe: Recipe, model_dir: Path, *, resume: bool = False, overwrite: bool = False):
    """Train a classification recipe into `model_dir` (training.py, imported when called: it brings
    the trainer's `datasets` and matplotlib, which classifying does without)."""
    from seq2seq.tasks.classification.training import train as train_classifier
    return train_classifier(recipe, model_dir, resume=resume, overwrite=overwrite)
