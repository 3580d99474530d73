"""seq2seq-train --init-from MODEL_DIR: a new run that starts from another run's weights.

The new run has its own optimizer, step counter, schedule and logs (what --resume would continue
instead); only the weights (MODEL_DIR/best.safetensors, what the commands load) and the
vocabulary come from MODEL_DIR. The vocabulary files are copied into the new model directory, so
the ids agree. Its uses: fine-tuning on other data, a last phase with other training settings
(See et al. 2017 add the coverage loss only for a short last phase), a longer schedule.

The model and vocab sections of the two recipes must match, but for the keys of MAY_DIFFER: the
dropouts (they hold no weights), model.init and model.embedding_init_std (they start only the
fresh weights), and model.attention.coverage and model.copy, which add weights (the coverage term
of the attention, the copy gate): those start fresh, and one line names them. Weights of MODEL_DIR
that the new model does not have (coverage or copy turned off) are an error.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from seq2seq.checkpoint import BEST, VOCAB_JOINT, VOCAB_SRC, VOCAB_TGT, load_meta, load_weights
from seq2seq.config import Recipe, to_dict
from seq2seq.errors import UserError
from seq2seq.vocab import Vocab, load_vocabs

# model keys that may differ from the MODEL_DIR run's: no weights, or weights that start fresh
MAY_DIFFER = ("model.embedding_dropout", "model.source_word_dropout", "model.encoder.dropout",
              "model.encoder.dropout_io", "model.decoder.dropout", "model.decoder.output_dropout",
              "model.decoder.feed_dropout", "model.init", "model.embedding_init_std",
              "model.attention.coverage", "model.copy")
TASKS = ("translation", "summarization")  # the encoder-decoder's; the task rooms have no --init-from


def _leaves(node: Any, path: str = "") -> dict[str, Any]:
    """A nested section as key path -> value, in the dataclasses' field order."""
    if not isinstance(node, dict):
        return {path: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_leaves(value, f"{path}.{key}" if path else key))
    return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def check_init_from(recipe: Recipe, source: Path, resume: bool) -> dict:
    """Before anything is written: the MODEL_DIR run's meta.json, once its recipe is found to match
    `recipe`; otherwise a UserError naming the first key that differs, with both values."""
    if resume:
        raise UserError("--init-from and --resume exclude each other: --resume continues the run in "
                        "--model-dir from its own weights")
    if recipe.task not in TASKS:
        raise UserError(f"--init-from: applies to task 'translation' and 'summarization', not {recipe.task!r}")
    saved, meta = load_meta(source)
    if meta.get("task", "translation") not in TASKS:
        raise UserError(f"--init-from {source}: holds a {meta['task']!r} model, not an encoder-decoder")
    mine, theirs = _leaves(to_dict(recipe)), _leaves(to_dict(saved))
    for key, value in mine.items():
        if key.startswith(("model.", "vocab.")) and key not in MAY_DIFFER and theirs.get(key) != value:
            raise UserError(f"--init-from {source}: {key} is {_show(theirs.get(key))} there and {_show(value)} "
                            "in this recipe; the model and vocab sections must match the run the weights come "
                            f"from (only {', '.join(MAY_DIFFER)} may differ)")
    if not (source / BEST).is_file():
        raise UserError(f"--init-from {source}: no {BEST} (a run that never validated?)")
    return meta


def copy_vocabs(source: Path, folder: Path, joint: bool, meta: dict) -> tuple[Vocab, Vocab]:
    """The MODEL_DIR run's sentencepiece files (checked against its meta.json) copied into `folder`,
    where a new run's vocabularies would be trained; returns them."""
    vocabs = load_vocabs(source, joint, meta)
    for name in (VOCAB_JOINT,) if joint else (VOCAB_SRC, VOCAB_TGT):
        for ext in ("model", "vocab"):
            if (source / f"{name}.{ext}").is_file():
                shutil.copyfile(source / f"{name}.{ext}", folder / f"{name}.{ext}")
    return vocabs


def load_init_weights(model: torch.nn.Module, source: Path) -> str:
    """MODEL_DIR/best.safetensors into `model`; the one line that says so and names the fresh weights."""
    path = source / BEST
    try:
        fresh = load_weights(model, path, allow_missing=True)
    except UserError as e:
        raise UserError(f"--init-from {e}") from None
    line = f"init: weights from {path}"
    if fresh:
        line += f"; {len(fresh)} not there start fresh: {', '.join(fresh)}"
    return line
