"""Tasks beside translation and summarisation, each a room of its own over the shared modules
(encoder, cells, vocabulary, trainer, model directory):

    classification/   data.py (files, labels), model.py (assembly, pooling), metric.py,
                      training.py (trainer, train), classifier.py (loading, output formats)
    language_model/   data.py (text, units, tbptt streams, windows), model.py (assembly, scoring),
                      metric.py (ppl, bpc), training.py (trainer, train), generator.py (loading,
                      generation, scores)
    tagging/          data.py (CoNLL files), schemes.py (IOB1, IOB2, IOBES), vocab.py (words,
                      characters, tags; batches), crf.py, model.py (assembly, decoding), metric.py
                      (seqeval), training.py (trainer, train), tagger.py (loading, output, scores)

A room offers what the commands call, under these names:

    train(recipe, model_dir, *, resume, overwrite) -> its Trainer    seq2seq-train (experiment.train)
    evaluate(args) -> exit status                                    seq2seq-evaluate, with its arguments

and its own Python entry point and command (classification: Classifier, seq2seq-classify;
language_model: LanguageModel, seq2seq-generate; tagging: Tagger, seq2seq-tag). The
recipe's `task` picks the room through TASKS, a plain dict; trainer.py (TaskTrainer) is the seq2seq
Trainer with a room's update. Translation and summarisation still
live at the package's top (experiment.py, translator.py, summarizer.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from seq2seq.checkpoint import META
from seq2seq.tasks import classification, language_model, tagging

TASKS = {"classification": classification, "language_model": language_model, "tagging": tagging}


def task_of(model_dir: str | Path) -> str | None:
    """The task a model directory's meta.json names, or None where it cannot be read (the command
    then goes on as for translation, and its own checks say what is wrong)."""
    try:
        meta = json.loads((Path(model_dir) / META).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return meta.get("task") if isinstance(meta, dict) else None
