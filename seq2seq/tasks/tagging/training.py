"""Training a tagger: train(), from a recipe to a model directory, and TaggingTrainer.

TaggingTrainer is the seq2seq Trainer with a tagger's update (TaskTrainer: the summed CRF
negative log-likelihood of the sentences, or the tokens' cross-entropy, divided by the batch's
tokens), validation (entity P/R/F1 and token accuracy on the validation file) and metric (entity
F1, higher is better). Losses in steps.jsonl and train_log.jsonl are per token; their `tokens`
count words. The batch plan, checkpoints, exact resume, best.safetensors, early stopping, signals,
logs and curves are the Trainer's.

    MODEL_DIR/  as for translation (seq2seq/checkpoint.py) but without sentencepiece models, with
                vocab.json (words, characters, tags); meta.json's src_vocab_size counts the words,
                tgt_vocab_size the tags
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from seq2seq.checkpoint import clear_model_dir, load_meta, save_meta
from seq2seq.config import Recipe, to_dict
from seq2seq.device import autocast, resolve_precision
from seq2seq.errors import UserError
from seq2seq.tasks.tagging.data import Sentences, TaggedSet, check_known, read_conll, split_file
from seq2seq.tasks.tagging.metric import TAGGING_METRIC
from seq2seq.tasks.tagging.model import SequenceTagger, build_tagger, predict
from seq2seq.tasks.tagging.schemes import convert
from seq2seq.tasks.tagging.vocab import UNK, VOCAB, Vocabularies
from seq2seq.tasks.trainer import (TaskTrainer, check_model_dir, model_line, removed_on_failure, run_training,
                                   start_run)


class TaggingTrainer(TaskTrainer):
    """Trains a SequenceTagger on `corpus` (a TaggedSet), validating on `valid` (a TaggedSet)."""

    def __init__(self, model: SequenceTagger, recipe: Recipe, model_dir: Path, *, corpus: TaggedSet,
                 valid: TaggedSet, device: torch.device):
        super().__init__(model, recipe, model_dir, corpus=corpus, valid=valid, tgt_vocab=None, device=device,
                         metric=TAGGING_METRIC)

    def batch_units(self, indices: np.ndarray) -> int:
        return self.corpus.tokens(indices)

    def batch_loss(self, indices: np.ndarray) -> torch.Tensor:
        batch = self.corpus.batch(indices).to(self.device)
        with autocast(self.device, self.precision):
            scores = self.ddp(batch)  # (B, S, K)
        return self.model.loss(scores.float(), batch)

    def validate(self) -> dict:
        """{"valid_loss" (per token), "valid_ppl", "precision", "recall", "f1", "token_accuracy"}."""
        valid, scheme = self.valid, self.recipe.tagging.scheme
        ids, loss, tokens = predict(self.model, valid, self.recipe.decoding.sentences_per_batch(), self.device,
                                    self.precision)
        predicted = [convert([valid.vocab.tags[i] for i in s], scheme, "iob2") for s in ids]
        gold = [convert(t, scheme, "iob2") for t in valid.tags]
        loss /= tokens
        return {"valid_loss": loss, "valid_ppl": math.exp(min(loss, 50)), **self.metric.compute(predicted, gold)}


def check_inputs(recipe: Recipe, model_dir: Path, resume: bool, overwrite: bool) -> tuple[Sentences, Sentences]:
    """The training and validation sentences, read and checked before anything is written."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("task 'tagging' trains in one process; torchrun is for translation and summarisation so far")
    t = recipe.tagging
    train = read_conll(split_file(recipe, recipe.data.train), t.tag_column, t.file_scheme)
    valid = read_conll(split_file(recipe, recipe.data.valid), t.tag_column, t.file_scheme)
    check_model_dir(model_dir, resume, overwrite)
    return train, valid


def _saved_vocab(recipe: Recipe, model_dir: Path, built: Vocabularies) -> Vocabularies:
    """The vocabularies of the run being resumed: same recipe sections, same training data."""
    saved, meta = load_meta(model_dir)
    if meta.get("task") != recipe.task:
        raise UserError(f"{model_dir}: holds a {meta.get('task')!r} model, not a {recipe.task!r} one")
    if any(to_dict(saved)[key] != to_dict(recipe)[key] for key in ("model", "tagging")):
        raise UserError(f"{model_dir}: the recipe's model or tagging section differs from the one saved there; "
                        "resume with the same recipe")
    vocab = Vocabularies.load(model_dir, meta["src_vocab_size"], meta["tgt_vocab_size"])
    if (vocab.words, vocab.chars, vocab.tags) != (built.words, built.chars, built.tags):
        raise UserError(f"{model_dir / VOCAB}: the training data's words, characters or tags differ from those "
                        "the model was trained on; resume on the same data")
    return vocab


def train(recipe: Recipe, model_dir: Path, *, resume: bool = False, overwrite: bool = False) -> TaggingTrainer:
    """Train a tagging recipe into `model_dir` (or continue the run there). Inputs are checked and
    the model built before anything is written; a run that fails before training leaves no new
    model directory behind."""
    model_dir = Path(model_dir)
    train_s, valid_s = check_inputs(recipe, model_dir, resume, overwrite)
    cfg, t = recipe.training, recipe.tagging
    device = start_run(cfg)
    train_tags = [convert(s, "iob2", t.scheme) for s in train_s.tags]
    vocab = Vocabularies.build(train_s.words, train_tags, t.min_count, t.lowercase)
    check_known(valid_s, vocab)  # a validation entity type the training data lacks: an error naming its line
    with removed_on_failure(model_dir):
        if resume:
            vocab = _saved_vocab(recipe, model_dir, vocab)
        model = build_tagger(recipe.model, t, len(vocab.words), len(vocab.chars), len(vocab.tags))
        if not resume:
            if overwrite:
                clear_model_dir(model_dir)
                (model_dir / VOCAB).unlink(missing_ok=True)
            model_dir.mkdir(parents=True, exist_ok=True)
            vocab.save(model_dir)
        save_meta(model_dir, recipe, len(vocab.words), len(vocab.tags), recipe.task,
                  resolve_precision(cfg.precision, device))
    corpus, valid = TaggedSet.build(train_s, vocab, t.scheme), TaggedSet.build(valid_s, vocab, t.scheme)
    for note in (train_s.report(t.file_scheme), valid_s.report(t.file_scheme)):
        if note:
            tqdm.write(note)
    unknown = sum(vocab.word_id(w) == UNK for s in valid_s.words for w in s)
    tqdm.write(f"data: {len(corpus.words)} training sentences ({int(corpus.src_lengths.sum())} tokens), "
               f"{len(valid.words)} validation sentences ({int(valid.src_lengths.sum())} tokens, {unknown} "
               f"of their words unknown); {len(vocab.words) - 2} words, {len(vocab.chars) - 2} characters")
    tqdm.write(f"tags ({t.scheme}): {len(vocab.tags)} ({', '.join(vocab.tags)})")
    tqdm.write(f"{model_line(model, device)}; "
               f"{'CRF' if t.crf else 'softmax'}{', character encoder' if t.char_encoder else ''}")
    trainer = TaggingTrainer(model.to(device), recipe, model_dir, corpus=corpus, valid=valid, device=device)
    return run_training(trainer, model_dir, resume)
