"""Opening the model directory of a task room (classification, language model, tagging): what
each room's load() shares. A room reads its own vocabulary and builds its own model between the
two calls:

    model_dir, recipe, meta = open_task_dir(model_dir, "tagging", "a tagger", "train a recipe with task: tagging")
    vocab = ...; model = build_...(recipe.model, ...)
    model, dev = load_task_weights(model, model_dir, weights, device)
"""

from __future__ import annotations

from pathlib import Path

import torch

from seq2seq.checkpoint import load_meta, load_weights
from seq2seq.config import Recipe
from seq2seq.device import resolve_device
from seq2seq.errors import UserError


def open_task_dir(model_dir: str | Path, task: str, what: str, hint: str) -> tuple[Path, Recipe, dict]:
    """The directory's path, recipe and meta.json, once meta.json says it holds a `task` model;
    otherwise a UserError: 'MODEL_DIR: not `what` (meta.json task is ...); `hint`'."""
    model_dir = Path(model_dir)
    recipe, meta = load_meta(model_dir)
    if meta.get("task") != task:
        raise UserError(f"{model_dir}: not {what} (meta.json task is {meta.get('task')!r}); {hint}")
    return model_dir, recipe, meta


def load_task_weights(model: torch.nn.Module, model_dir: Path, weights: str | Path,
                      device: str) -> tuple[torch.nn.Module, torch.device]:
    """The built `model` with its weights loaded, on `device` ('auto', 'cpu', 'cuda'), and that
    device. `weights`: a bare file name is looked up in the model directory; a path is used as is."""
    weights = Path(weights)
    load_weights(model, weights if len(weights.parts) > 1 else model_dir / weights)
    dev = resolve_device(device, "device")
    return model.to(dev), dev
