"""TaskTrainer: the seq2seq Trainer with the update of a task room's model (classification,
tagging), whose loss is a sum over the examples of a batch.

The Trainer's own train_step collates source/target pairs and takes the teacher-forced sequence
loss; a room's trainer subclasses TaskTrainer and says instead what a batch's summed loss is
(`batch_loss`) and what it is normalised by (`batch_units`: texts, tokens), along with its own
validate() and metric. The rest is the Trainer's: the epoch's batch plan over the corpus's
usable/src_lengths/tgt_lengths, the validation cadence, checkpoints and exact resume,
best.safetensors, early stopping, SIGINT/SIGTERM, non-finite steps, the logs and curves.png. The
`tokens` of steps.jsonl (and the tokens/s the trainer reports) count `batch_units`.
"""

from __future__ import annotations

import contextlib
import math
import shutil
from pathlib import Path

import numpy as np
import torch

from seq2seq.config import TrainingConfig
from seq2seq.device import resolve_device
from seq2seq.distributed import all_sum
from seq2seq.experiment import _resume_from_latest
from seq2seq.trainer import Trainer


class TaskTrainer(Trainer):
    """A Trainer whose update is the mean over `batch_units` of `batch_loss`."""

    def batch_loss(self, indices: np.ndarray) -> torch.Tensor:
        """The summed loss of the corpus's examples at `indices` (a scalar tensor with gradient)."""
        raise NotImplementedError

    def batch_units(self, indices: np.ndarray) -> int:
        """What the loss of a batch is divided by (before the model runs): its examples."""
        return len(indices)

    def train_step(self, batches: list[np.ndarray] | np.ndarray) -> tuple[float, int, float]:
        """One update from this process's batches; returns (loss per unit, units, gradient norm).
        Trainer.train_step with batch_loss in place of the sequence loss."""
        if isinstance(batches, np.ndarray):
            batches = [batches]
        count = int(all_sum([sum(self.batch_units(ix) for ix in batches)], self.world, self.device)[0])
        scale = self.world.size / count  # DDP averages gradients over processes
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        for i, indices in enumerate(batches):
            last = i == len(batches) - 1
            sync = contextlib.nullcontext() if last or not self.world.distributed else self.ddp.no_sync()
            with sync:
                loss = self.batch_loss(indices)
                (loss * scale).backward()
            total += loss.detach()
        if self.cfg.clip_value > 0:
            torch.nn.utils.clip_grad_value_(self.model.parameters(), self.cfg.clip_value)
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(),
                                              self.cfg.clip_norm if self.cfg.clip_norm > 0 else float("inf"))
        total, norm = torch.stack([total, norm.double()]).tolist()  # the step's one host sync
        loss = all_sum([total], self.world, self.device)[0] / count
        if not (math.isfinite(loss) and math.isfinite(norm)):
            self.progress.skipped_steps += 1
            self.optimizer.zero_grad(set_to_none=True)
            return float("nan"), count, norm
        self.optimizer.step()
        if self.cfg.scheduler == "warmup":
            self.scheduler.step()
        return loss, count, norm


# What a room's train() does around its own data, vocabulary and model: the same for each room.

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
    """Train, after restoring the latest checkpoint of `model_dir` when resuming; the trainer."""
    if resume:
        _resume_from_latest(trainer, model_dir)
    trainer.train()
    return trainer
