"""The training loop: step (autocast -> backward -> clip -> step), validation, checkpoints, stopping."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from seq2seq.checkpoint import load_checkpoint, save_checkpoint, save_weights
from seq2seq.config import Recipe, TrainingConfig
from seq2seq.data import Corpus, collate, make_batches
from seq2seq.device import autocast
from seq2seq.loss import sequence_nll
from seq2seq.metrics import bleu
from seq2seq.model import Seq2Seq
from seq2seq.translator import decode_ids
from seq2seq.vocab import Vocab


def build_optimizer(params, cfg: TrainingConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def build_scheduler(optimizer, cfg: TrainingConfig):
    """'plateau' steps on the validation score; 'warmup' on every update (linear, then 1/sqrt)."""
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=cfg.plateau_factor, patience=cfg.plateau_patience,
            min_lr=cfg.min_lr)
    if cfg.scheduler == "warmup":
        w = cfg.warmup_steps
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min((s + 1) / w, math.sqrt(w / max(s + 1, w))))
    return None


@dataclass
class Validation:
    """What validation needs: source ids, target ids (for the loss) and reference strings."""

    src: list[list[int]]
    tgt: list[list[int]]
    refs: list[str]


@dataclass
class Progress:
    """Everything besides weights and optimizer that an exact resume needs."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of `epoch` already trained on
    best_score: float = float("-inf")
    bad_validations: int = 0
    skipped_steps: int = 0  # non-finite loss or gradient
    history: list = field(default_factory=list)


class Trainer:
    def __init__(self, model: Seq2Seq, recipe: Recipe, model_dir: Path, corpus: Corpus,
                 valid: Validation, tgt_vocab: Vocab, device: torch.device):
        self.model, self.recipe, self.cfg = model, recipe, recipe.training
        self.model_dir, self.corpus, self.valid = model_dir, corpus, valid
        self.tgt_vocab, self.device = tgt_vocab, device
        self.optimizer = build_optimizer(model.parameters(), self.cfg)
        self.scheduler = build_scheduler(self.optimizer, self.cfg)
        self.progress = Progress()
        self.log_path = model_dir / "train_log.jsonl"
        self.train_seconds, self.train_tokens = 0.0, 0  # this process's training steps only

    # ------------------------------------------------------------ state

    def state_dict(self) -> dict:
        p = self.progress
        return {"progress": {k: getattr(p, k) for k in vars(p)},
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                "rng_torch": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}

    def resume(self, path: Path) -> None:
        state = load_checkpoint(path, self.model)
        self.model.to(self.device)
        self.progress = Progress(**state["progress"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_torch"])
        if torch.cuda.is_available() and state["rng_cuda"]:
            torch.cuda.set_rng_state_all(state["rng_cuda"])

    # ------------------------------------------------------------ steps

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """The epoch's batch order: a function of the seed and epoch alone (exact resume)."""
        rng = np.random.default_rng([self.cfg.seed, epoch])
        c = self.corpus
        return make_batches(c.usable, c.src_lengths, c.tgt_lengths, self.cfg.batch_size,
                            self.cfg.batch_type, rng)

    def train_step(self, indices: np.ndarray) -> tuple[float, int, float]:
        """One update; returns (loss per token, target tokens, gradient norm)."""
        batch = collate(*self.corpus.pairs(indices)).to(self.device)
        ntok = batch.num_tgt_tokens
        with autocast(self.device, self.cfg.autocast):
            logits, _ = self.model(batch)
        loss = sequence_nll(logits, batch.tgt_out, self.cfg.label_smoothing) / ntok
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.clip_value > 0:
            torch.nn.utils.clip_grad_value_(self.model.parameters(), self.cfg.clip_value)
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(),
                                              self.cfg.clip_norm if self.cfg.clip_norm > 0 else float("inf"))
        if not (torch.isfinite(loss) and torch.isfinite(norm)):
            self.progress.skipped_steps += 1
            self.optimizer.zero_grad(set_to_none=True)
            return float("nan"), ntok, float(norm)
        self.optimizer.step()
        if self.cfg.scheduler == "warmup":
            self.scheduler.step()
        return loss.item(), ntok, norm.item()

    @torch.no_grad()
    def validate(self) -> dict:
        self.model.eval()
        total, ntok = 0.0, 0
        for start in range(0, len(self.valid.src), 64):
            batch = collate(self.valid.src[start:start + 64], self.valid.tgt[start:start + 64]).to(self.device)
            with autocast(self.device, self.cfg.autocast):
                logits, _ = self.model(batch)
            total += float(sequence_nll(logits, batch.tgt_out))
            ntok += batch.num_tgt_tokens
        hyps = decode_ids(self.model, self.valid.src, self.recipe.decoding, self.device, beam_size=1)
        text = self.tgt_vocab.decode([h[0].tokens for h in hyps])
        score, signature = bleu(text, self.valid.refs)
        self.model.train()
        return {"valid_loss": total / max(ntok, 1), "valid_ppl": math.exp(min(total / max(ntok, 1), 50)),
                "bleu": score, "signature": signature}

    # ------------------------------------------------------------ loop

    def _after_validation(self, result: dict) -> bool:
        """Record, keep the best weights, schedule, and say whether to stop early."""
        p = self.progress
        result.update(step=p.step, epoch=p.epoch, lr=self.optimizer.param_groups[0]["lr"])
        improved = result["bleu"] > p.best_score
        if improved:
            p.best_score, p.bad_validations = result["bleu"], 0
            save_weights(self.model, self.model_dir / "best.safetensors")
        else:
            p.bad_validations += 1
        result["best"] = improved
        p.history.append({k: result[k] for k in ("step", "epoch", "bleu", "valid_loss")})
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(result["bleu"])
        tqdm.write(f"validation step {p.step} after {p.epoch} epochs: BLEU {result['bleu']:.2f} "
                   f"loss {result['valid_loss']:.3f} ppl {result['valid_ppl']:.2f}"
                   + ("  (best, saved)" if improved else f"  (no gain x{p.bad_validations})"))
        return 0 < self.cfg.patience <= p.bad_validations

    def _checkpoint(self) -> None:
        save_checkpoint(self.model_dir, self.progress.step, self.model, self.state_dict())

    def train(self) -> Progress:
        cfg, p = self.cfg, self.progress
        self.model.to(self.device).train()
        stop = False
        while p.epoch < cfg.epochs and not stop:
            batches = self.epoch_batches(p.epoch)
            bar = tqdm(total=len(batches), initial=p.batch_in_epoch, unit="batch",
                       desc=f"epoch {p.epoch + 1}/{cfg.epochs}", dynamic_ncols=True, mininterval=1.0)
            tokens, start, losses = 0, time.perf_counter(), []
            while p.batch_in_epoch < len(batches):
                t0 = time.perf_counter()
                loss, ntok, norm = self.train_step(batches[p.batch_in_epoch])
                self.train_seconds += time.perf_counter() - t0
                self.train_tokens += ntok
                p.batch_in_epoch += 1
                p.step += 1
                tokens += ntok
                losses.append(loss)
                bar.update(1)
                if p.step % cfg.log_every == 0 or p.batch_in_epoch == len(batches):
                    rate = tokens / max(time.perf_counter() - start, 1e-9)
                    bar.set_postfix(loss=f"{np.nanmean(losses[-cfg.log_every:]):.3f}",
                                    tok_s=f"{rate:.0f}", norm=f"{norm:.2f}", refresh=False)
                end_of_epoch = p.batch_in_epoch == len(batches)
                if end_of_epoch:
                    p.epoch, p.batch_in_epoch = p.epoch + 1, 0
                if (cfg.validate_every and p.step % cfg.validate_every == 0) or \
                        (not cfg.validate_every and end_of_epoch):
                    stop = self._after_validation(self.validate())
                    self._checkpoint()
                if stop or (cfg.max_steps and p.step >= cfg.max_steps):
                    stop = True
                    break
                if end_of_epoch:
                    break
            bar.close()
        if not (self.model_dir / "best.safetensors").exists():
            self._after_validation(self.validate())
        self._checkpoint()
        return p
