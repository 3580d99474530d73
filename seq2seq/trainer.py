"""The training loop: step (autocast -> backward -> clip -> step), validation, checkpoints, stopping.

Every room trains with it. Its own update and validation are the encoder-decoder's (translation and
summarisation: the teacher-forced loss over corpus pairs, seq2seq/tasks/translation/validation.py
and metric.py); the other rooms replace them through TaskTrainer (seq2seq/tasks/trainer.py).

Validation runs every `training.validate_every` steps (or once per epoch), and once more at the
end when the last step was not validated, so the last steps can still reach best.safetensors.

Work is never lost: checkpoints every `training.checkpoint_every` steps and at every validation;
SIGINT/SIGTERM finish the step, save and return (`Trainer.interrupted` names the signal); a step
with a non-finite loss or gradient norm is skipped and counted, and `training.max_bad_steps` of
them in a row stop training with a UserError naming the last good checkpoint.

Under torchrun every update takes `world.size * training.accumulate` consecutive batches of the
epoch's plan, `accumulate` of them on each process; the loss is normalised by the target tokens of
all of them, so any split of the same batches gives the same update. Only rank 0 validates (the
result is shared, so scheduling and early stopping agree) and writes logs and checkpoints; an
error in that work is handed to every rank where they next meet (the end of the step), and ends
them all with its message (seq2seq/distributed.py, settle).
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from seq2seq.batch import Batch, collate, make_batches
from seq2seq.checkpoint import STEP_LOG, TRAIN_LOG
from seq2seq.config import Recipe, TrainingConfig
from seq2seq.curves import redraw_curves
from seq2seq.device import autocast, resolve_precision
from seq2seq.distributed import World, all_sum, broadcast, settle
from seq2seq.errors import UserError
from seq2seq.logs import JsonLines
from seq2seq.loss import coverage_loss, sequence_nll
from seq2seq.metrics import Metric
from seq2seq.run_state import Progress, RunState
from seq2seq.signals import StopRequest
from seq2seq.tasks.translation.data import Corpus
from seq2seq.tasks.translation.metric import VALID_METRICS
from seq2seq.tasks.translation.model import Seq2Seq
from seq2seq.tasks.translation.validation import Validation, validate
from seq2seq.vocab import PAD, Vocab


def build_optimizer(params, cfg: TrainingConfig, fused: bool = True) -> torch.optim.Optimizer:
    """SGD, or Adam / AdamW with torch's fused kernel (one pass over each parameter instead of a
    dozen, on the CPU since torch 2.4) wherever every parameter is a floating-point tensor on the
    CPU or a CUDA GPU."""
    params = list(params)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    fused = fused and all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused or None)


def build_scheduler(optimizer, cfg: TrainingConfig, metric: Metric = VALID_METRICS["bleu"]):
    """'plateau' steps on the validation score (`metric`'s); 'warmup' on every update (linear,
    then 1/sqrt)."""
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max" if metric.higher_is_better else "min", factor=cfg.plateau_factor, patience=cfg.plateau_patience,
            min_lr=cfg.min_lr)
    if cfg.scheduler == "warmup":
        w = cfg.warmup_steps
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min((s + 1) / w, math.sqrt(w / max(s + 1, w))))
    return None


class Trainer:
    """Trains `model` on `corpus` into `model_dir`; `world`: this process's place in a torchrun job;
    `metric`: the validation score (default: training.valid_metric's)."""

    clock = staticmethod(time.perf_counter)  # what the steps are timed with (tests: a fake clock)

    def __init__(self, model: Seq2Seq, recipe: Recipe, model_dir: Path, *, corpus: Corpus,
                 valid: Validation, tgt_vocab: Vocab, device: torch.device, world: World = World(),
                 metric: Metric | None = None):
        self.model, self.recipe, self.cfg = model, recipe, recipe.training
        self.world = world
        # what the training steps call: the model itself, or DDP around it (all-reduced gradients)
        self.ddp = torch.nn.parallel.DistributedDataParallel(model) if world.distributed else model
        self.model_dir, self.corpus, self.valid = model_dir, corpus, valid
        self.tgt_vocab, self.device = tgt_vocab, device
        self.precision = resolve_precision(self.cfg.precision, device)  # 'fp32' or 'bf16' (autocast)
        self.metric = metric or VALID_METRICS[self.cfg.valid_metric]
        self.optimizer = build_optimizer(model.parameters(), self.cfg)
        self.scheduler = build_scheduler(self.optimizer, self.cfg, self.metric)
        self.state = RunState(model, self.optimizer, self.scheduler, model_dir, world, device=device,
                              keep=self.cfg.keep_checkpoints, seed=self.cfg.seed,
                              best_score=self.metric.worst)
        self.log = JsonLines(model_dir / TRAIN_LOG)  # one line per validation
        self.step_log = JsonLines(model_dir / STEP_LOG)  # one line per update
        self.interrupted: str | None = None  # the signal that stopped training, if one did
        self.train_tokens = 0  # this session's, of all processes
        self._seconds_before = 0.0  # the steps' time of the run's earlier sessions (set when train() starts)
        self._failure: BaseException | None = None  # rank 0's, kept until the ranks meet (_deferred)

    @property
    def progress(self) -> Progress:
        return self.state.progress

    @property
    def last_checkpoint(self) -> Path | None:
        """The newest checkpoint saved or resumed from."""
        return self.state.last_checkpoint

    def resume(self, path: Path) -> None:
        """Continue from a checkpoint; the logs lose what was written after it (done again)."""
        note = self.state.load(path)
        self.model.to(self.device)
        if self.world.is_main:  # (the one writer of the logs)
            with self._deferred():
                if note:
                    tqdm.write(note)
                self.log.trim(self.progress.step)
                self.step_log.trim(self.progress.step)
        settle(self._failure, self.world, self.device)

    # ------------------------------------------------------------ steps

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """The epoch's batch order: a function of the seed and epoch alone (exact resume)."""
        rng = np.random.default_rng([self.cfg.seed, epoch])
        c = self.corpus
        return make_batches(c.usable, c.src_lengths, c.tgt_lengths, self.cfg.batch_size,
                            self.cfg.batch_type, rng)

    # The update's three parts that differ between models (a task room's trainer overrides them):
    # what a batch of corpus indices becomes, what its loss is divided by, and its summed loss.

    def prepare_batch(self, indices: np.ndarray) -> Batch:
        """The padded source/target pairs at `indices`, on the CPU."""
        return collate(*self.corpus.pairs(indices))

    def batch_units(self, batch: Batch) -> int:
        """Target tokens, counted on the CPU: no device sync."""
        return batch.num_tgt_tokens

    def batch_loss(self, batch: Batch) -> torch.Tensor:
        """The batch's summed teacher-forced loss (plus coverage loss), a scalar with gradient."""
        batch = batch.to(self.device)
        if getattr(self.model, "copy", None) is not None and not self.cfg.label_smoothing:  # the reference pieces' alone
            with autocast(self.device, self.precision):
                log_p, weights = self.ddp(batch, targets_only=True)
            loss = -(log_p * (batch.tgt_out != PAD)).sum()
        else:
            with autocast(self.device, self.precision):
                logits, weights = self.ddp(batch)
            loss = sequence_nll(logits, batch.tgt_out, self.cfg.label_smoothing, batch.src,
                                len(self.tgt_vocab))  # (copy: smoothing over the own slots)
        if self.cfg.coverage_weight:
            loss = loss + self.cfg.coverage_weight * coverage_loss(weights, batch.tgt_out)
        return loss

    def train_step(self, batches: list[np.ndarray] | np.ndarray) -> tuple[float, int, float]:
        """One update from this process's batches (index arrays); returns (loss per unit, units
        (target tokens), gradient norm), the first two over every process."""
        if isinstance(batches, np.ndarray):
            batches = [batches]
        parts = [self.prepare_batch(ix) for ix in batches]
        ntok = int(all_sum([sum(self.batch_units(b) for b in parts)], self.world, self.device)[0])
        scale = self.world.size / ntok  # DDP averages gradients over processes
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            sync = contextlib.nullcontext() if last or not self.world.distributed else self.ddp.no_sync()
            with sync:
                loss = self.batch_loss(part)
                (loss * scale).backward()
            total += loss.detach()  # no host sync inside the accumulation loop
        if self.cfg.clip_value > 0:
            torch.nn.utils.clip_grad_value_(self.model.parameters(), self.cfg.clip_value)
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(),
                                              self.cfg.clip_norm if self.cfg.clip_norm > 0 else float("inf"))
        total, norm = torch.stack([total, norm.double()]).tolist()  # the step's one host sync
        loss = all_sum([total], self.world, self.device)[0] / ntok
        if not (math.isfinite(loss) and math.isfinite(norm)):
            self.progress.skipped_steps += 1
            self.optimizer.zero_grad(set_to_none=True)
            return float("nan"), ntok, norm
        self.optimizer.step()
        if self.cfg.scheduler == "warmup":
            self.scheduler.step()
        return loss, ntok, norm

    def validate(self) -> dict:
        return validate(self.model, self.valid, self.tgt_vocab, metric=self.metric,
                        decoding=self.recipe.decoding, device=self.device, precision=self.precision)

    # ------------------------------------------------------------ loop

    @contextlib.contextmanager
    def _deferred(self):
        """Around rank 0's own work (writing logs, weights, checkpoints). With several processes, a
        failure is kept until the ranks next meet, where it ends every one of them (settle)."""
        try:
            yield
        except Exception as e:
            if not self.world.distributed:
                raise
            self._failure = self._failure or e

    def _validation_round(self) -> bool:
        """Rank 0 validates, every process gets its result; say whether to stop early."""
        result = None
        if self.world.is_main:
            with self._deferred():
                result = self.validate()
        settle(self._failure, self.world, self.device)
        return self._after_validation(broadcast(result, self.world, self.device))

    def _after_validation(self, result: dict) -> bool:
        """Record, keep the best weights, schedule, and say whether to stop early."""
        p, key = self.progress, self.metric.key
        result.update(step=p.step, epoch=p.epoch, lr=self.optimizer.param_groups[0]["lr"])
        improved = self.state.count_score(result[key], self.metric.better)
        result["best"] = improved
        p.history.append({k: result[k] for k in ("step", "epoch", key, "valid_loss")})
        if self.world.is_main:
            with self._deferred():
                if improved:
                    self.state.save_best()
                self.log.append(result)
                self.log.close()
            redraw_curves(self.model_dir)  # MODEL_DIR/curves.png
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(result[key])
        if self.world.is_main:
            tqdm.write(f"validation step {p.step} after {p.epoch} epochs: {self.metric.summary(result)} "
                       f"loss {result['valid_loss']:.3f} ppl {result['valid_ppl']:.2f}"
                       + ("  (best, saved)" if improved else f"  (no gain x{p.bad_validations})"))
        return 0 < self.cfg.patience <= p.bad_validations

    def _record_step(self, loss: float, ntok: int, norm: float) -> None:
        """Log the step; count non-finite ones and stop after `max_bad_steps` of them in a row."""
        p, finite = self.progress, math.isfinite(loss)
        record = {"step": p.step, "epoch": p.epoch + 1, "loss": loss if finite else None, "tokens": ntok,
                  "grad_norm": norm if math.isfinite(norm) else None}
        if self.world.is_main:
            with self._deferred():
                self.step_log.append(record if finite else {**record, "skipped": True})
        p.bad_steps_in_row = 0 if finite else p.bad_steps_in_row + 1
        if p.bad_steps_in_row >= self.cfg.max_bad_steps:
            raise UserError(f"training stopped at step {p.step}: the last {p.bad_steps_in_row} steps "
                            f"had a non-finite loss or gradient norm (training.max_bad_steps is "
                            f"{self.cfg.max_bad_steps}); last good checkpoint: "
                            f"{self.last_checkpoint or 'none saved yet'}")

    def _after_step(self, end_of_epoch: bool, request: StopRequest) -> str | None:
        """Validate and save when due; say why training must stop now, if it must."""
        cfg, p = self.cfg, self.progress
        stop = None
        if (cfg.validate_every and p.step % cfg.validate_every == 0) or \
                (not cfg.validate_every and end_of_epoch):
            stop = "patience" if self._validation_round() else None
            self._save()
        elif cfg.checkpoint_every and p.step % cfg.checkpoint_every == 0:
            self._save()
        if cfg.max_steps and p.step >= cfg.max_steps:
            stop = stop or "max_steps"
        signalled, late = request.signal is not None, self._over_budget()
        if self.world.distributed:  # every process stops after the same step, or fails with rank 0
            signals, failed, lates = all_sum([float(signalled), float(self._failure is not None), float(late)],
                                             self.world, self.device)
            if failed:
                settle(self._failure, self.world, self.device)
            signalled, late = signals > 0, lates > 0
            request.signal = request.signal or ("SIGTERM" if signalled else None)
        return stop or ("max_minutes" if late else None) or ("signal" if signalled else None)

    @property
    def train_seconds(self) -> float:
        """This process's steps' own time in this session (the `done:` line's)."""
        return self.progress.train_seconds - self._seconds_before

    def _over_budget(self) -> bool:
        """Whether the steps' own time has reached training.max_minutes (0: never)."""
        return 0 < self.cfg.max_minutes * 60 <= self.progress.train_seconds

    def _train_epoch(self, request: StopRequest) -> str | None:
        """Train to the end of the epoch; return why training must stop now, if it must."""
        cfg, p, world = self.cfg, self.progress, self.world
        batches = self.epoch_batches(p.epoch)
        group = world.size * cfg.accumulate  # batches per update, over all processes
        end = len(batches) - (len(batches) - p.batch_in_epoch) % group  # a short tail is dropped
        bar = tqdm(total=end, initial=p.batch_in_epoch, unit="batch", disable=not world.is_main,
                   desc=f"epoch {p.epoch + 1}/{cfg.epochs}", dynamic_ncols=True, mininterval=1.0)
        tokens, start, losses = 0, time.perf_counter(), []
        try:
            for first in range(p.batch_in_epoch, end, group):
                mine = first + world.rank * cfg.accumulate
                t0 = self.clock()
                loss, ntok, norm = self.train_step(batches[mine:mine + cfg.accumulate])
                p.train_seconds += self.clock() - t0
                self.train_tokens += ntok
                p.batch_in_epoch += group
                p.step += 1
                self._record_step(loss, ntok, norm)
                tokens += ntok
                losses.append(loss)
                bar.update(group)
                end_of_epoch = p.batch_in_epoch == end
                if p.step % cfg.log_every == 0 or end_of_epoch:
                    rate = tokens / max(time.perf_counter() - start, 1e-9)
                    recent = [x for x in losses[-cfg.log_every:] if math.isfinite(x)]
                    bar.set_postfix(loss=f"{np.mean(recent) if recent else float('nan'):.3f}",
                                    tok_s=f"{rate:.0f}", norm=f"{norm:.2f}", refresh=False)
                if end_of_epoch:
                    p.epoch, p.batch_in_epoch = p.epoch + 1, 0
                stop = self._after_step(end_of_epoch, request)
                if stop:
                    return stop
        finally:
            bar.close()
        if end == p.batch_in_epoch:  # nothing left that fills an update: the epoch is over
            p.epoch, p.batch_in_epoch = p.epoch + 1, 0
        return None

    def train(self) -> Progress:
        """Train to the recipe's end (epochs, max_steps, max_minutes, patience) or to a SIGINT/SIGTERM."""
        cfg, p = self.cfg, self.progress
        self._seconds_before = p.train_seconds
        self.model.to(self.device).train()
        with StopRequest() as request:
            reason = "patience" if 0 < cfg.patience <= p.bad_validations else None  # (resumed, had stopped)
            reason = reason or ("max_minutes" if self._over_budget() else None)
            try:
                while p.epoch < cfg.epochs and reason is None:
                    reason = self._train_epoch(request)
            finally:
                self.step_log.close()
            said = {"patience": self._early_stop_line, "max_minutes": self._budget_line}.get(reason)
            if said and self.world.is_main:
                tqdm.write(said())
            self.interrupted = request.signal if reason == "signal" and p.epoch < cfg.epochs else None
            validate = not self.interrupted and not p.validated  # the steps since the last validation
            if validate:
                self._validation_round()
            if validate or not self.state.saved:
                self._save()
        settle(self._failure, self.world, self.device)
        # DDP's reducer holds the process group and its threads: released now, they end with the
        # group (distributed.teardown), not at the interpreter's exit, which could abort the process
        self.ddp = self.model
        return p

    def _early_stop_line(self) -> str:
        """Why the run ended before training.epochs, and which weights are where (nothing is restored)."""
        p, cfg, name = self.progress, self.cfg, self.metric.name
        best = (f"step {p.history[-1 - p.bad_validations]['step']} ({name} {p.best_score:.2f})"
                if p.bad_validations < len(p.history) else "no step (no validation improved)")
        return (f"early stop at step {p.step} (epoch {p.epoch} of {cfg.epochs}): {p.bad_validations} validations "
                f"without a better {name} (training.patience {cfg.patience}); best.safetensors holds {best}, "
                "the last checkpoint this step's weights")

    def _budget_line(self) -> str:
        """Why the run ended at its time budget."""
        p, cfg = self.progress, self.cfg
        return (f"time budget reached at step {p.step} (epoch {p.epoch} of {cfg.epochs}): "
                f"{p.train_seconds / 60:.1f} min of training steps (training.max_minutes {cfg.max_minutes:g}); "
                f"best.safetensors holds the best validation's weights")

    def _save(self) -> None:
        """A checkpoint: every rank takes part (their generators go in it), rank 0 writes it."""
        with self._deferred():
            self.state.save()
