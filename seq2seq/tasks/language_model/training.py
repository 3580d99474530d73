"""Training a language model: train(), from a recipe to a model directory, and LanguageModelTrainer.

LanguageModelTrainer is the rooms' TaskTrainer (seq2seq/tasks/trainer.py) with a language
model's batches (the epoch's plan: language_model.batching's), loss and validation, and bits per
character as its metric (lower is better). The rest is the seq2seq Trainer's own: the validation
cadence, checkpoints and exact resume, best.safetensors, early stopping, SIGINT/SIGTERM,
non-finite steps, the logs and curves.png. The `tokens` of steps.jsonl count target units.

With language_model.batching tbptt the RNN state that a segment ends in starts the next one
(detached), from a zero state at each epoch's start; it lives in the run state's `extra`
("carried"), so a checkpoint holds it and a resumed run continues exactly as the run it resumes.
A skipped (non-finite) step carries no state: the next segment starts from zeros.

    MODEL_DIR/  as for translation (seq2seq/checkpoint.py): spm.model (verbatim pieces), meta.json
                with task language_model and src_vocab_size = tgt_vocab_size = the pieces
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from seq2seq.checkpoint import VOCAB_JOINT, load_meta, save_meta
from seq2seq.config import Recipe, to_dict
from seq2seq.device import autocast, resolve_precision
from seq2seq.errors import UserError
from seq2seq.tasks.language_model.data import (BATCHING, cut_rows, encode_text, read_text, stream, text_file)
from seq2seq.tasks.language_model.metric import BPC
from seq2seq.tasks.language_model.model import RecurrentLanguageModel, build_language_model, detach, row_nats
from seq2seq.tasks.trainer import (TaskTrainer, check_model_dir, install_vocabs, model_line, removed_on_failure,
                                   run_training, start_run)
from seq2seq.vocab import UNK, Vocab, load_vocabs, train_sentencepiece


@dataclasses.dataclass
class ValidText:
    """The validation text cut into rows for row_nats, and its characters."""

    inputs: torch.Tensor  # (R, T)
    targets: torch.Tensor  # (R, T), PAD after the last row's end
    characters: int


class LanguageModelTrainer(TaskTrainer):
    """Trains a RecurrentLanguageModel on `corpus` (TextStreams or Windows), validating on `valid`."""

    def __init__(self, model: RecurrentLanguageModel, recipe: Recipe, model_dir: Path, *, corpus,
                 valid: ValidText, vocab: Vocab, device: torch.device):
        super().__init__(model, recipe, model_dir, corpus=corpus, valid=valid, tgt_vocab=vocab, device=device,
                         metric=BPC)
        self.carries = recipe.language_model.batching == "tbptt"

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        return self.corpus.plan(self.cfg.seed, epoch)

    def batch_units(self, indices: np.ndarray) -> int:
        return self.corpus.batch(indices)[1].numel()  # (views and a gather: no model run)

    def batch_loss(self, indices: np.ndarray) -> torch.Tensor:
        """Summed cross-entropy of a segment (carrying the state on) or a batch of windows."""
        x, y = self.corpus.batch(indices)
        state = self._carried() if self.carries and indices[0] > 0 else None  # segment 0: zeros
        with autocast(self.device, self.precision):
            logits, state = self.model(x.to(self.device), state)  # (B, T, V)
        if self.carries:
            self.state.extra["carried"] = list(detach(state)) if isinstance(state, tuple) else [detach(state)]
        return F.cross_entropy(logits.float().flatten(0, 1), y.to(self.device).flatten(),
                               label_smoothing=self.cfg.label_smoothing, reduction="sum")

    def train_step(self, batches: list[np.ndarray] | np.ndarray) -> tuple[float, int, float]:
        """TaskTrainer.train_step; a skipped (non-finite) step passes no state on."""
        loss, count, norm = super().train_step(batches)
        if not math.isfinite(loss):
            self.state.extra.pop("carried", None)
        return loss, count, norm

    def _carried(self):
        """The state the previous segment ended in (from a checkpoint after a resume), or None."""
        carried = self.state.extra.get("carried")
        if carried is None:
            return None
        carried = [s.to(self.device) for s in carried]
        return tuple(carried) if len(carried) > 1 else carried[0]

    def validate(self) -> dict:
        """{"valid_loss" (nats per unit), "valid_ppl", "bpc", "nats_per_char", "units", "characters"}."""
        nats, units = row_nats(self.model, self.valid.inputs, self.valid.targets, self.recipe.language_model.bptt_length,
                               self.device, self.precision)
        return self.metric.compute(float(nats.sum()), int(units.sum()), self.valid.characters)


def check_inputs(recipe: Recipe, model_dir: Path, resume: bool, overwrite: bool) -> tuple[Path, str, str]:
    """Everything a run reads, checked before anything is written: the training file and the
    training and validation texts."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("task 'language_model' trains in one process; torchrun is for translation and "
                        "summarisation so far")
    train_file = text_file(recipe, recipe.data.train)
    texts = read_text(train_file), read_text(text_file(recipe, recipe.data.valid))
    check_model_dir(model_dir, resume, overwrite)
    return train_file, *texts


def _saved_vocab(recipe: Recipe, model_dir: Path) -> Vocab:
    """The vocabulary of the run being resumed, which must have the same recipe sections."""
    saved, meta = load_meta(model_dir)
    if meta.get("task") != recipe.task:
        raise UserError(f"{model_dir}: holds a {meta.get('task')!r} model, not a {recipe.task!r} one")
    if any(to_dict(saved)[key] != to_dict(recipe)[key] for key in ("model", "vocab", "language_model")):
        raise UserError(f"{model_dir}: the recipe's model, vocab or language_model section differs from the one "
                        "saved there; resume with the same recipe")
    return load_vocabs(model_dir, True, meta)[0]


def _corpus(recipe: Recipe, units: list[int], train_file: Path):
    """The training batches of language_model.batching; a text too short for them is named."""
    lm = recipe.language_model
    try:
        return BATCHING[lm.batching](stream(units), lm.streams, lm.bptt_length)
    except ValueError as e:
        raise UserError(f"{train_file}: too short for language_model.batching {lm.batching!r} ({e}); lower "
                        "language_model.streams or bptt_length") from None


def train(recipe: Recipe, model_dir: Path, *, resume: bool = False, overwrite: bool = False) -> LanguageModelTrainer:
    """Train a language-model recipe into `model_dir` (or continue the run there). Inputs are
    checked, the vocabulary trained aside and the model built before anything is written; a run
    that fails before training leaves no new model directory behind."""
    model_dir = Path(model_dir)
    train_file, train_text, valid_text = check_inputs(recipe, model_dir, resume, overwrite)
    lm = recipe.language_model
    device = start_run(recipe.training)
    with removed_on_failure(model_dir):
        with tempfile.TemporaryDirectory(prefix="seq2seq-vocab-") as staging:
            staging = Path(staging)
            if resume:
                vocab = _saved_vocab(recipe, model_dir)
            else:
                vocab = train_sentencepiece([train_file], staging / VOCAB_JOINT, recipe.vocab, verbatim=True)
            units, valid_units = encode_text(vocab, train_text), encode_text(vocab, valid_text)
            corpus = _corpus(recipe, units, train_file)
            inputs, targets = cut_rows(stream(valid_units), lm.streams)
            valid = ValidText(inputs, targets, len(valid_text))
            model = build_language_model(recipe.model, len(vocab))
            if not resume:  # (one vocabulary, spm.model, whatever the unused vocab.joint says)
                one = dataclasses.replace(recipe, vocab=dataclasses.replace(recipe.vocab, joint=True))
                vocab = install_vocabs(staging, model_dir, one, overwrite)[0]
            save_meta(model_dir, recipe, len(vocab), len(vocab), recipe.task,
                      resolve_precision(recipe.training.precision, device))
    tqdm.write(f"data: {len(units):,} training units ({len(train_text):,} characters), {len(vocab)} in the "
               f"vocabulary; {corpus.report()}")
    unknown = valid_units.count(UNK)
    tqdm.write(f"validation: {len(valid_units):,} units ({len(valid_text):,} characters) in {inputs.size(0)} rows"
               + (f"; {unknown} unknown (characters the training text lacks)" if unknown else ""))
    tqdm.write(model_line(model, device))
    trainer = LanguageModelTrainer(model.to(device), recipe, model_dir, corpus=corpus, valid=valid, vocab=vocab,
                                   device=device)
    return run_training(trainer, model_dir, resume)
