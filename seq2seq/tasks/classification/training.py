"""Training a classifier: train(), from a recipe to a model directory, and ClassificationTrainer.

ClassificationTrainer is the seq2seq Trainer with a classifier's update (batch_loss, through
seq2seq/tasks/trainer.py), validation and metric. The Trainer cannot be used as it is: its
train_step collates source/target pairs and takes the teacher-forced sequence loss, its validate
decodes greedily and scores text by BLEU or ROUGE, and its metric comes from
training.valid_metric (bleu | rouge). The rest is the Trainer's own: the
epoch's batch plan (a function of seed and epoch), the validation cadence, checkpoints and exact
resume, best.safetensors, early stopping, SIGINT/SIGTERM, non-finite steps, the logs and
curves.png. The "target" of a text is its one class: losses are per text, and the `tokens` of
steps.jsonl (and of the tokens/s the trainer reports) count texts.

    MODEL_DIR/  as for translation (seq2seq/checkpoint.py), with labels.json (the class names);
                meta.json's src_vocab_size is the sentencepiece model's, tgt_vocab_size the classes'
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from seq2seq.checkpoint import VOCAB_JOINT, atomic_write, clear_model_dir, load_meta, save_meta
from seq2seq.config import Recipe, to_dict
from seq2seq.device import autocast, resolve_precision
from seq2seq.errors import UserError
from seq2seq.tasks.classification.data import (LABELS, Examples, TextSet, label_ids, load_labels, read_split,
                                               save_labels, split_files)
from seq2seq.tasks.classification.metric import CLASSIFICATION_METRICS
from seq2seq.tasks.classification.model import TextClassifier, build_classifier, class_logits
from seq2seq.tasks.trainer import (TaskTrainer, check_model_dir, model_line, removed_on_failure, run_training,
                                   start_run)
from seq2seq.vocab import Vocab, train_sentencepiece


class ClassificationTrainer(TaskTrainer):
    """Trains a TextClassifier on `corpus` (a TextSet), validating on `valid` (a TextSet)."""

    def __init__(self, model: TextClassifier, recipe: Recipe, model_dir: Path, *, corpus: TextSet,
                 valid: TextSet, labels: list[str], device: torch.device):
        super().__init__(model, recipe, model_dir, corpus=corpus, valid=valid, tgt_vocab=None, device=device)
        # Both classification metrics are higher-is-better, as BLEU is: the plateau schedule's mode
        # and the initial best score that Trainer.__init__ set up from training.valid_metric hold.
        self.metric = CLASSIFICATION_METRICS[recipe.classification.valid_metric]
        self.labels = labels

    def batch_loss(self, indices: np.ndarray) -> torch.Tensor:
        """Summed (label-smoothed) cross-entropy of a batch of texts."""
        batch, labels = self.corpus.batch(indices)
        batch = batch.to(self.device)
        with autocast(self.device, self.precision):
            logits = self.ddp(batch.src, batch.src_lengths)  # (B, C)
        loss = F.cross_entropy(logits.float(), labels.to(self.device), label_smoothing=self.cfg.label_smoothing,
                               reduction="sum")
        return loss

    def validate(self) -> dict:
        """{"valid_loss" (per text), "valid_ppl", "accuracy", "macro_f1"}."""
        logits = class_logits(self.model, self.valid.ids, self.recipe.decoding.sentences_per_batch(), self.device,
                              self.precision)
        loss = float(F.cross_entropy(logits, self.valid.labels))
        predicted = [self.labels[i] for i in logits.argmax(-1).tolist()]
        gold = [self.labels[i] for i in self.valid.labels.tolist()]
        return {"valid_loss": loss, "valid_ppl": math.exp(min(loss, 50)), **self.metric.compute(predicted, gold)}


def check_inputs(recipe: Recipe, model_dir: Path, resume: bool, overwrite: bool) -> tuple[Examples, Examples, list[str]]:
    """Everything a run reads, checked before anything is written: the training and validation
    examples and the label set (the training data's classes, sorted)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("task 'classification' trains in one process; torchrun is for translation and "
                        "summarisation so far")
    train, valid = read_split(recipe, recipe.data.train), read_split(recipe, recipe.data.valid)
    labels = sorted(set(train.labels))
    if len(labels) < 2:
        raise UserError(f"{train.where[0].rpartition(':')[0]}: every example is of class {labels[0]!r}; a "
                        "classifier needs two classes or more")
    label_ids(valid, labels)  # a validation class the training data lacks is an error naming its line
    check_model_dir(model_dir, resume, overwrite)
    return train, valid, labels


def _saved_vocab(recipe: Recipe, model_dir: Path, labels: list[str]) -> Vocab:
    """The vocabulary of the run being resumed, which must have the same recipe sections and classes."""
    saved, meta = load_meta(model_dir)
    if meta.get("task") != recipe.task:
        raise UserError(f"{model_dir}: holds a {meta.get('task')!r} model, not a {recipe.task!r} one")
    if any(to_dict(saved)[key] != to_dict(recipe)[key] for key in ("model", "vocab", "classification")):
        raise UserError(f"{model_dir}: the recipe's model, vocab or classification section differs from the one "
                        "saved there; resume with the same recipe")
    saved_labels = load_labels(model_dir, meta["tgt_vocab_size"])
    if saved_labels != labels:
        raise UserError(f"{model_dir / LABELS}: the model's classes {saved_labels} differ from the training "
                        f"data's {labels}")
    return Vocab(model_dir / f"{VOCAB_JOINT}.model")


def _install(staging: Path, model_dir: Path, labels: list[str], overwrite: bool) -> Vocab:
    """Move the vocabulary trained aside into the model directory, with the label set."""
    if overwrite:
        clear_model_dir(model_dir)
        (model_dir / LABELS).unlink(missing_ok=True)
    model_dir.mkdir(parents=True, exist_ok=True)
    for ext in ("model", "vocab"):
        name = f"{VOCAB_JOINT}.{ext}"
        atomic_write(model_dir / name, lambda p, name=name: shutil.copyfile(staging / name, p))
    save_labels(model_dir, labels)
    return Vocab(model_dir / f"{VOCAB_JOINT}.model")


def train(recipe: Recipe, model_dir: Path, *, resume: bool = False, overwrite: bool = False) -> ClassificationTrainer:
    """Train a classification recipe into `model_dir` (or continue the run there). Inputs are
    checked, the vocabulary trained aside and the model built before anything is written; a run
    that fails before training leaves no new model directory behind."""
    model_dir = Path(model_dir)
    train_ex, valid_ex, labels = check_inputs(recipe, model_dir, resume, overwrite)
    data = recipe.data
    device = start_run(recipe.training)
    skip = data.long_lines == "skip"
    with removed_on_failure(model_dir):
        with tempfile.TemporaryDirectory(prefix="seq2seq-vocab-") as staging:
            staging = Path(staging)
            if resume:
                vocab = _saved_vocab(recipe, model_dir, labels)
            else:  # on the training texts: the text file itself, or the CSV file's text column
                texts = split_files(recipe, data.train)[0]
                if recipe.classification.format == "csv":
                    texts = staging / f"{data.train}.{recipe.classification.text_column}.txt"
                    texts.write_text("".join(t + "\n" for t in train_ex.texts), encoding="utf-8")
                vocab = train_sentencepiece([texts], staging / VOCAB_JOINT, recipe.vocab)
            corpus = TextSet.build(vocab, train_ex.texts, label_ids(train_ex, labels), data.max_length, skip)
            if not len(corpus.usable):
                raise UserError(f"every training text is longer than data.max_length ({data.max_length} pieces) "
                                "and data.long_lines is 'skip'; raise the one or set the other to 'truncate'")
            valid = TextSet.build(vocab, valid_ex.texts, label_ids(valid_ex, labels), data.max_length)
            model = build_classifier(recipe.model, recipe.classification, len(vocab), len(labels))
            if not resume:
                vocab = _install(staging, model_dir, labels, overwrite)
            save_meta(model_dir, recipe, len(vocab), len(labels), recipe.task,
                      resolve_precision(recipe.training.precision, device))
    tqdm.write(corpus.report(data.max_length, skip))
    tqdm.write(f"classes: {len(labels)} ({', '.join(labels)}); {len(valid.ids)} validation texts")
    tqdm.write(model_line(model, device))
    trainer = ClassificationTrainer(model.to(device), recipe, model_dir, corpus=corpus, valid=valid, labels=labels,
                                    device=device)
    return run_training(trainer, model_dir, resume)
