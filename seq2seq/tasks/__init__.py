"""Tasks beside translation and summarisation, each a room of its own over the shared modules
(encoder, cells, vocabulary, trainer, model directory):

    classification/   data.py (files, labels), model.py (assembly, pooling), metric.py,
                      training.py (trainer, train), classifier.py (loading, output formats)

A room offers what the commands call, under these names:

    train(recipe, model_dir, *, resume, overwrite) -> its Trainer    seq2seq-train (experiment.train)
    evaluate(args) -> exit status                                    seq2seq-evaluate, with its arguments

and its own Python entry point and command (classification: Classifier, seq2seq-classify). The
recipe's `task` picks the room through TASKS, a plain dict. Translation and summarisation still
live at the package's top (experiment.py, translator.py, summarizer.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from seq2seq.checkpoint import META
from seq2seq.tasks import classification

TASKS = {"classification": classification}


def task_of(model_dir: str | Path) -> str | None:
    """The task a model directory's meta.json names, or None where it cannot be read (the command
    then goes on as for translation, and its own checks say what is wrong)."""
    try:
        meta = json.loads((Path(model_dir) / META).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return meta.get("task") if isinstance(meta, dict) else None
