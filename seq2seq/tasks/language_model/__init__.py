"""Language model (`task: language_model`): a unidirectional RNN over characters or sentencepiece
pieces, trained on continuous text in streams with the state carried across segments (truncated
BPTT) or in shuffled windows; perplexity and bits per character; generation, greedy or sampled.
Data: PREFIX.txt, continuous text (data.py)."""

from __future__ import annotations

from pathlib import Path

from seq2seq.config import Recipe
from seq2seq.tasks.language_model.generator import LanguageModel, evaluate

__all__ = ["LanguageModel", "evaluate", "train"]


def train(recipe: Recipe, model_dir: Path, *, resume: bool = False, overwrite: bool = False):
    """Train a language-model recipe into `model_dir` (training.py, imported when called: it brings
    the trainer's `datasets` and matplotlib, which generating does without)."""
    from seq2seq.tasks.language_model.training import train as train_language_model
    return train_language_model(recipe, model_dir, resume=resume, overwrite=overwrite)
