"""TaskTrainer: the seq2seq Trainer with the update of a task room's model (classification,
tagging), whose loss is a sum over the examples of a batch.

The Trainer's own train_step collates source/target pairs and takes the teacher-forced sequence
loss; a room's trainer subclasses TaskTrainer and says instead what a batch's summed loss is
(`batch_loss`) and what it is normalised by (`batch_units`: texts, tokens), along with its own
validate() and metric. The rest is the Trainer's: the epoch's batch plan over the corpus's
usable/src_lengths/tgt_lengths, the validation cadence, checkpoints and exact resume,
best.safetensors, early stopping, SIGINT/SIGTERM, non-finite steps, the logs and curves.png. The
`tokens` of steps.jsonl (and the tokens/s the trainer reports) count `batch_units`.

Below it, what the rooms' train() share around their own data, vocabulary and model: the
model-directory check, the device and seed, the vocabulary moved in from where it was trained
aside, removal of a directory a failed run created, and the resume from the newest readable
checkpoint (translation's train, which sets up torchrun's processes itself, takes the first, the
third and the last).
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from seq2seq.checkpoint import CHECKPOINTS, atomic_write, clear_model_dir, holds_model, list_checkpoints
from seq2seq.config import Recipe, TrainingConfig
from seq2seq.device import precision_line, resolve_device
from seq2seq.errors import UserError
from seq2seq.trainer import Trainer
from seq2seq.vocab import load_vocabs


class TaskTrainer(Trainer):
    """A Trainer whose update (Trainer.train_step) is the mean over `batch_units` of `batch_loss`,
    both given the batch's corpus indices."""

    def batch_loss(self, indices: np.ndarray) -> torch.Tensor:
        """The summed loss of the corpus's examples at `indices` (a scalar tensor with gradient)."""
        raise NotImplementedError

    def batch_units(self, indices: np.ndarray) -> int:
        """What the loss of a batch is divided by (before the model runs): its examples."""
        return len(indices)

    def prepare_batch(self, indices: np.ndarray) -> np.ndarray:
        """A room's batch_units and batch_loss take the corpus indices themselves."""
        return indices


# What a room's train() does around its own data, vocabulary and model: the same for each room.

def check_model_dir(model_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to write into a directory that holds a model unless told to; writes nothing."""
    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other")
    if model_dir.exists() and not model_dir.is_dir():
        raise UserError(f"{model_dir}: exists and is not a directory")
    if holds_model(model_dir) and not (resume or overwrite):
        raise UserError(f"{model_dir}: already holds a model; pass --resume to continue it or "
                        "--overwrite to replace it")
    if resume and not holds_model(model_dir):
        raise UserError(f"{model_dir}: nothing to resume (no meta.json or checkpoints)")


def install_vocabs(staging: Path, model_dir: Path, recipe: Recipe, overwrite: bool):
    """Move vocabularies trained aside (in `staging`) into the model directory, replacing an
    earlier run's with --overwrite; called once the model is built."""
    if overwrite:
        clear_model_dir(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    for f in staging.iterdir():
        atomic_write(model_dir / f.name, lambda p, f=f: shutil.copyfile(f, p))
    return load_vocabs(model_dir, recipe.vocab.joint)


def resume_from_latest(trainer: Trainer, model_dir: Path, say=tqdm.write) -> None:
    """Continue from the newest readable checkpoint; corrupt ones are reported and passed over."""
    for path in list_checkpoints(model_dir):
        try:
            trainer.resume(path)
        except UserError as e:
            say(f"warning: {e}; trying an older checkpoint")
            continue
        say(f"resuming from {path} (step {trainer.progress.step}, epoch "
            f"{trainer.progress.epoch + 1}, batch {trainer.progress.batch_in_epoch})")
        return
    raise UserError(f"{model_dir / CHECKPOINTS}: no readable checkpoint to resume from; start again "
                    "with --overwrite")


def start_run(cfg: TrainingConfig) -> torch.device:
    """The device of training.device, with training.threads and training.seed applied."""
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    return device


@contextlib.contextmanager
def removed_on_failure(model_dir: Path):
    """A block that writes a model directory: if it fails (an exception, Ctrl-C) and the directory
    did not exist before it, the directory is removed, so a failed run leaves nothing behind."""
    created = not model_dir.exists()
    try:
        yield
    except BaseException:
        if created:
            shutil.rmtree(model_dir, ignore_errors=True)
        raise


def model_line(model: torch.nn.Module, device: torch.device) -> str:
    """'model: 1.23M parameters on cpu', the line every run prints before training."""
    n_params = sum(p.numel() for p in model.parameters())
    return f"model: {n_params / 1e6:.2f}M parameters on {device}"


def run_training(trainer: Trainer, model_dir: Path, resume: bool) -> Trainer:
    """Train, after restoring the latest checkpoint of `model_dir` when resuming; the trainer.
    Says the training precision first."""
    tqdm.write(precision_line(trainer.cfg.precision, trainer.device))
    if resume:
        resume_from_latest(trainer, model_dir)
    trainer.train()
    return trainer
