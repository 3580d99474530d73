"""Run state: what an exact resume needs besides the weights, the checkpoints that hold it, and
the best weights.

    checkpoints/step_N/state.json + state.safetensors (seq2seq/checkpoint.py stores them):
      progress    step, epoch, batch within the epoch, best score, validations without gain, ...
      optimizer   torch's state dict (its tensors go to state.safetensors)
      scheduler   torch's state dict, or null
      rng         every process's random generators, in rank order: rng_torch, rng_cuda,
                  rng_python, rng_numpy (checkpoints before this held one process's, at the top)
      extra       a task's own state, names -> tensors or lists of them (the language model's
                  RNN state carried across segments); {} when none (absent before)

Only rank 0 writes; every rank reads what it wrote. Each process draws its own dropout and
scheduled-sampling noise, so a resume gives each rank its own generators back. A resume with more
processes than the run that saved seeds the extra ranks' generators from training.seed, the rank
and the step (reproducible, but not the run the saved processes would have continued); with fewer,
the generators of the ranks beyond are not used. Either is said on one line.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from seq2seq.checkpoint import BEST, checkpoint_dir, load_checkpoint, save_checkpoint, save_weights
from seq2seq.distributed import World, all_gather
from seq2seq.errors import UserError


@dataclass
class Progress:
    """Everything besides weights, optimizer and generators that an exact resume needs."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of `epoch` already trained on
    best_score: float = float("-inf")
    bad_validations: int = 0
    skipped_steps: int = 0  # non-finite loss or gradient
    bad_steps_in_row: int = 0  # the same, since the last good step
    train_seconds: float = 0.0  # the steps' own time, every session of the run (training.max_minutes)
    history: list = field(default_factory=list)

    @property
    def validated(self) -> bool:
        """Whether the current step has been validated."""
        return bool(self.history) and self.history[-1]["step"] == self.step


def weights_finite(model: torch.nn.Module) -> bool:
    return bool(torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all())


class RunState:
    """One run's progress, checkpoints and best weights, around the model and optimizer it saves."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler,
                 model_dir: Path, world: World, *, device: torch.device, keep: int, seed: int,
                 best_score: float = float("-inf")):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.model_dir, self.world, self.device = model_dir, world, device
        self.keep, self.seed = keep, seed
        self.progress = Progress(best_score=best_score)
        self.extra: dict = {}  # a task's own state, saved and restored with the rest
        self.last_checkpoint: Path | None = None  # the newest one saved or resumed from

    def state_dict(self, rng: list[dict]) -> dict:
        """What a checkpoint holds; `rng`: every rank's generators (rng_state()), in rank order."""
        p = self.progress
        return {"progress": {k: getattr(p, k) for k in vars(p)},
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                "rng": [_with_tensors(r) for r in rng],
                "extra": self.extra}

    def load(self, path: Path) -> str | None:
        """Weights, optimizer, scheduler, progress and this rank's generators from a checkpoint;
        returns a note when the checkpoint was saved by another number of processes."""
        state = load_checkpoint(path, self.model)
        try:
            self.progress = Progress(**state["progress"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state["scheduler"] is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            note = restore_rng(state, self.world, seed=self.seed, step=self.progress.step)
            self.extra = state.get("extra", {})
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            first = (str(e).splitlines() or [""])[0]
            raise UserError(f"{path}: trainer state does not fit this recipe "
                            f"({e.__class__.__name__}: {first})") from None
        self.last_checkpoint = path
        return note

    def save(self) -> None:
        """Save a checkpoint (every rank takes part: their generators go in it), unless the weights
        went non-finite: it would push out a good one."""
        step = self.progress.step
        if not weights_finite(self.model):
            tqdm.write(f"warning: step {step}: weights are not finite; no checkpoint saved")
            return
        rng = all_gather(rng_state(), self.world, self.device)
        if self.world.is_main:
            save_checkpoint(self.model_dir, step, self.model, self.state_dict(rng), keep=self.keep)
        self.last_checkpoint = checkpoint_dir(self.model_dir, step)

    @property
    def saved(self) -> bool:
        """Whether the newest checkpoint holds the current step."""
        return self.last_checkpoint == checkpoint_dir(self.model_dir, self.progress.step)

    def count_score(self, score: float, better) -> bool:
        """Count a validation's score; say whether it is the best so far (with finite weights), whose
        weights save_best() then keeps. `better(score, best)`: whether a score beats another."""
        p = self.progress
        improved = better(score, p.best_score) and weights_finite(self.model)
        if improved:
            p.best_score, p.bad_validations = score, 0
        else:
            p.bad_validations += 1
        return improved

    def save_best(self) -> None:
        """The weights become best.safetensors (written by rank 0)."""
        if self.world.is_main:
            save_weights(self.model, self.model_dir / BEST)


# ---------------------------------------------------------------- random generators


def rng_state() -> dict:
    """This process's generators as JSON-able values: torch (CPU and CUDA), Python's and numpy's."""
    name, key, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    return {"rng_torch": torch.get_rng_state().tolist(),
            "rng_cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
            "rng_python": random.getstate(),
            "rng_numpy": {"name": name, "key": key.tolist(), "pos": int(pos),
                          "has_gauss": int(has_gauss), "gauss": float(gauss)}}


def _with_tensors(rng: dict) -> dict:
    """rng_state() with the torch states as uint8 tensors again (they go to state.safetensors)."""
    return {**rng, "rng_torch": torch.tensor(rng["rng_torch"], dtype=torch.uint8),
            "rng_cuda": [torch.tensor(s, dtype=torch.uint8) for s in rng["rng_cuda"]]}


def restore_rng(state: dict, world: World, *, seed: int, step: int) -> str | None:
    """Set this rank's generators from a checkpoint's state; a rank it holds none for seeds them
    from (seed, rank, step). Returns a note when the saved processes and this run's differ."""
    saved = state["rng"] if "rng" in state else [state]  # (one process's, at the top, before)
    if world.rank < len(saved):
        _set_rng(saved[world.rank])
    else:
        fresh = int(np.random.SeedSequence([seed, world.rank, step]).generate_state(1)[0])
        torch.manual_seed(fresh)
        random.seed(fresh)
        np.random.seed(fresh)
    if len(saved) == world.size:
        return None
    if len(saved) < world.size:
        return (f"note: the checkpoint holds the random generators of {len(saved)} process(es), this "
                f"run has {world.size}: ranks {len(saved)}-{world.size - 1} seed new ones from "
                "training.seed, the rank and the step")
    return (f"note: the checkpoint holds the random generators of {len(saved)} processes, this run "
            f"has {world.size}: those of ranks {world.size}-{len(saved) - 1} are not used")


def _set_rng(r: dict) -> None:
    torch.set_rng_state(torch.as_tensor(r["rng_torch"], dtype=torch.uint8))
    if torch.cuda.is_available() and r["rng_cuda"]:
        torch.cuda.set_rng_state_all([torch.as_tensor(s, dtype=torch.uint8) for s in r["rng_cuda"]])
    if "rng_python" in r:  # (absent from checkpoints of older versions)
        version, internal, gauss = r["rng_python"]
        random.setstate((version, tuple(internal), gauss))
        n = r["rng_numpy"]
        np.random.set_state((n["name"], np.asarray(n["key"], dtype=np.uint32), n["pos"],
                             n["has_gauss"], n["gauss"]))
