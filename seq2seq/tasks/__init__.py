"""The tasks, each a room of its own over the shared modules (encoder, cells, vocabulary, trainer,
model directory):

    translation/      data.py (parallel files, corpus), extended.py (copy's extended ids), model.py
                      (Seq2Seq, build_model), metric.py (BLEU, chrF), validation.py, training.py
                      (train), init_from.py, compiling.py, translator.py (loading, output,
                      evaluate), ensemble.py (several models as one), plot.py (attention heatmaps)
    summarization/    summarizer.py (loading, output), metric.py (ROUGE); the translation room's
                      data, model, training and evaluate otherwise
    classification/   data.py (files, labels), model.py (assembly, pooling), metric.py,
                      training.py (trainer, train), classifier.py (loading, output formats)
    language_model/   data.py (text, units, tbptt streams, windows), model.py (assembly, scoring),
                      metric.py (ppl, bpc), training.py (trainer, train), generator.py (loading,
                      generation, scores)
    tagging/          data.py (CoNLL files), schemes.py (IOB1, IOB2, IOBES), vocab.py (words,
                      characters, tags; batches), crf.py, model.py (assembly, decoding), metric.py
                      (seqeval), training.py (trainer, train), tagger.py (loading, output, scores)

A room offers what the commands call, under these names:

    train(recipe, model_dir, *, resume, overwrite) -> its Trainer    seq2seq-train (train, below)
    evaluate(args) -> exit status                                    seq2seq-evaluate, with its arguments

and its own Python entry point and command (translation: Translator, seq2seq-translate;
summarization: Summarizer, seq2seq-summarize; classification: Classifier, seq2seq-classify;
language_model: LanguageModel, seq2seq-generate; tagging: Tagger, seq2seq-tag). The recipe's
`task` (or a model directory's meta.json) picks the room through TASKS, a plain dict; trainer.py
(TaskTrainer) is the seq2seq Trainer with a room's update, and the steps every room's train()
shares; loading.py opens a room's model directory.

What stays at the package's top is what several rooms share, or what no room owns (decided by who
imports it):

    batch.py           Batch, collate, make_batches: translation, classification, the trainer (every
                       room's epoch plan), decoding, serve
    lines.py           UTF-8 files line by line: every room's data, the commands' input
    vocab.py           sentencepiece vocabularies: translation, classification, language model
    loss.py            sequence NLL, coverage loss: the trainer's update, translation's validation
    search.py          beam and greedy search: decoding, and sampling.py's steps
    sampling.py        top-k, top-p: translation's sampling, the language model's generation
    decoding.py        length batches, search over a model's encode/step: translation's translator
                       and validation, the bench (with search and sampling, the decoding core)
    trainer.py         the training loop every room runs; its own update and validation are the
                       encoder-decoder's (imported from translation/), which TaskTrainer replaces
    run_state.py, checkpoint.py, logs.py, curves.py, signals.py
                       checkpoints and exact resume, the model directory, the logs, curves.png,
                       SIGINT/SIGTERM: every room's training and loading
    metrics.py         Metric, the validation score every room's metric.py gives
    config.py, recipe_io.py, recipe_check.py
                       every room's recipe: one typed place for the defaults, reading, checks
    device.py, distributed.py
                       devices and precision (every room), torchrun (the trainer, translation)
    allocator.py       glibc's malloc kept from handing a step's memory back: the commands (cli/)
    hub.py             data.hub: a data set by name written into data.dir as parallel files; only
                       translation's data.py reads it today (the one place that fetches data sets)
    errors.py, modules/, serve/, cli/
                       UserError; the encoders, decoders and cells; the HTTP app (translation,
                       summarisation); one file per command
"""

from __future__ import annotations

import json
from pathlib import Path

from seq2seq.checkpoint import META
from seq2seq.config import Recipe
from seq2seq.errors import UserError
from seq2seq.tasks import classification, language_model, summarization, tagging, translation

TASKS = {"translation": translation, "summarization": summarization, "classification": classification,
         "language_model": language_model, "tagging": tagging}


def train(recipe: Recipe, model_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
          init_from: str | Path | None = None):
    """seq2seq-train: the room of the recipe's `task` trains it into `model_dir` (or continues the
    run there); its Trainer. `init_from` (--init-from MODEL_DIR): another run's weights start this
    one, in the encoder-decoder rooms alone (translation/init_from.py)."""
    room = TASKS[recipe.task]
    if init_from is None:
        return room.train(recipe, Path(model_dir), resume=resume, overwrite=overwrite)
    if room not in (translation, summarization):
        raise UserError(f"--init-from: applies to task 'translation' and 'summarization', not {recipe.task!r}")
    return room.train(recipe, Path(model_dir), resume=resume, overwrite=overwrite, init_from=Path(init_from))


def task_of(model_dir: str | Path) -> str | None:
    """The task a model directory's meta.json names, or None where it cannot be read (the command
    then goes on as for translation, and its own checks say what is wrong)."""
    try:
        meta = json.loads((Path(model_dir) / META).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return meta.get("task") if isinstance(meta, dict) else None
