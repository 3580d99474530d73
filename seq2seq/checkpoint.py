"""The model directory, in one place: its file names, meta.json and its version check, weights,
checkpoints with the trainer state, and the atomic writes that every file goes through.

    MODEL_DIR/
      recipe.json           the resolved recipe (every default written out)
      meta.json             format version, vocabulary sizes, task, the training precision used
      spm.model             (or spm_src.model + spm_tgt.model)
      best.safetensors      weights with the best validation score; what commands load
      checkpoints/step_N/   weights.safetensors, state.safetensors, state.json (for --resume)
      train_log.jsonl       one line per validation
      steps.jsonl           one line per update (loss, tokens, gradient norm)
      curves.png            learning curves, redrawn at every validation

Every other module names these files through the constants below. Nothing here is unpickled: tensors go through safetensors, everything else through JSON. Every
file is written to a temporary name, fsynced and renamed, so a crash leaves the old file or the
new one, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from seq2seq.config import Recipe, recipe_from_dict, to_dict
from seq2seq.errors import UserError

FORMAT_VERSION = 1  # meta.json's format_version; load_meta refuses any other

RECIPE = "recipe.json"
META = "meta.json"
BEST = "best.safetensors"
TRAIN_LOG = "train_log.jsonl"
STEP_LOG = "steps.jsonl"
CURVES = "curves.png"
CHECKPOINTS = "checkpoints"
VOCAB_JOINT, VOCAB_SRC, VOCAB_TGT = "spm", "spm_src", "spm_tgt"  # sentencepiece prefixes (.model, .vocab)
AVERAGED = "averaged.safetensors"  # tools/average_checkpoints.py's default output
WEIGHTS, STATE_TENSORS, STATE_JSON = "weights.safetensors", "state.safetensors", "state.json"  # per step_N
# what a training run writes, and --overwrite removes (other files in the directory stay)
WRITTEN_BY_TRAINING = (META, RECIPE, BEST, TRAIN_LOG, STEP_LOG, CURVES, CHECKPOINTS,
                       *(f"{v}.{ext}" for v in (VOCAB_JOINT, VOCAB_SRC, VOCAB_TGT) for ext in ("model", "vocab")))


def _fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write) -> None:
    """Write through a temporary file, fsync, then rename over `path`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def write_json(path: Path, data) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8"))


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: missing from the model directory") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: unreadable or corrupt JSON ({e})") from None


def save_meta(model_dir: Path, recipe: Recipe, src_vocab_size: int, tgt_vocab_size: int,
              task: str = "translation", precision: str | None = None) -> None:
    """recipe.json and meta.json; `precision`: what training.precision resolved to ('fp32' or
    'bf16'), kept in meta.json as training_precision (None: not recorded)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    write_json(model_dir / RECIPE, to_dict(recipe))
    meta = {"format_version": FORMAT_VERSION, "task": task, "src_vocab_size": src_vocab_size,
            "tgt_vocab_size": tgt_vocab_size}
    write_json(model_dir / META, meta if precision is None else {**meta, "training_precision": precision})


def load_meta(model_dir: Path) -> tuple[Recipe, dict]:
    if not model_dir.is_dir():
        raise UserError(f"{model_dir}: model directory not found")
    path = model_dir / META
    meta = read_json(path)
    if not isinstance(meta, dict) or "format_version" not in meta:
        raise UserError(f"{path}: no format_version; not a seq2seq model directory")
    version = meta["format_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise UserError(f"{path}: format_version {version!r} is not a version number")
    if version < FORMAT_VERSION:
        raise UserError(f"{path}: model format version {version!r} is older than this seq2seq's "
                        f"({FORMAT_VERSION}); use the seq2seq that wrote it, or train again")
    if version > FORMAT_VERSION:
        raise UserError(f"{path}: model format version {version} was written by a newer seq2seq "
                        f"(this one reads version {FORMAT_VERSION}); upgrade seq2seq")
    for key in ("src_vocab_size", "tgt_vocab_size"):
        size = meta.get(key)
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise UserError(f"{path}: {key} is {size!r}; expected a positive integer")
    recipe = recipe_from_dict(read_json(model_dir / RECIPE), str(model_dir / RECIPE))
    return recipe, meta


def save_weights(model: torch.nn.Module, path: Path) -> None:
    atomic_write(path, lambda p: save_model(model, str(p), metadata={"format": "pt"}))


def load_weights(model: torch.nn.Module, path: Path, allow_missing: bool = False) -> list[str]:
    """Every weight in the file must be one of the model's, and every weight of the model must be
    in the file, unless `allow_missing`: those keep their values (--init-from's fresh weights) and
    their names are returned."""
    if not path.is_file():
        raise UserError(f"{path}: weights file missing from the model directory")
    try:
        missing, unexpected = load_model(model, str(path), strict=False, device="cpu")
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise UserError(f"{path}: corrupt or mismatched weights ({str(e).splitlines()[0]})") from None
    if unexpected or (missing and not allow_missing):
        raise UserError(f"{path}: weights do not match the recipe's model (missing "
                        f"{sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    return sorted(missing)


# ---------------------------------------------------------------- trainer state


def _flatten(obj, prefix: str, tensors: dict) -> object:
    """Move every tensor of a nested structure into `tensors`; return the JSON-able rest."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[_flatten(k, f"{prefix}.k{i}", tensors), _flatten(v, f"{prefix}.{i}", tensors)]
                             for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, (list, tuple)):
        return {"__list__": [_flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)],
                "tuple": isinstance(obj, tuple)}
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return {"__float__": repr(obj)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in trainer state")


def _unflatten(obj, tensors: dict):
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {_unflatten(k, tensors): _unflatten(v, tensors) for k, v in obj["__dict__"]}
        if "__list__" in obj:
            items = [_unflatten(v, tensors) for v in obj["__list__"]]
            return tuple(items) if obj.get("tuple") else items
        if "__float__" in obj:
            return float(obj["__float__"])
    return obj


def checkpoint_dir(model_dir: Path, step: int) -> Path:
    """MODEL_DIR/checkpoints/step_N, N zero-padded so that names sort by step."""
    return model_dir / CHECKPOINTS / f"step_{step:09d}"


def checkpoint_step(path: Path) -> int:
    """The step of a checkpoint folder (the N of step_N)."""
    return int(path.name.removeprefix("step_"))


def save_checkpoint(model_dir: Path, step: int, model: torch.nn.Module, state: dict, keep: int = 2) -> Path:
    """Write checkpoints/step_N (weights + trainer state) atomically; keep the last `keep`."""
    final = checkpoint_dir(model_dir, step)
    root = final.parent
    work = root / f".{final.name}.partial"
    for stale in root.glob(".step_*.partial"):  # left by a run killed while saving
        shutil.rmtree(stale, ignore_errors=True)
    work.mkdir(parents=True)
    save_weights(model, work / WEIGHTS)
    tensors: dict = {}
    skeleton = _flatten(state, "s", tensors)
    atomic_write(work / STATE_TENSORS, lambda p: save_file(tensors, str(p)))
    write_json(work / STATE_JSON, skeleton)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(work, final)
    _fsync_dir(root)
    for old in sorted(root.glob("step_*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(model_dir: Path) -> list[Path]:
    """The checkpoint folders, newest first."""
    return sorted((model_dir / CHECKPOINTS).glob("step_*"), reverse=True)


def load_checkpoint(path: Path, model: torch.nn.Module) -> dict:
    """Load weights into `model` and return the trainer state; UserError if corrupt."""
    load_weights(model, path / WEIGHTS)
    try:
        tensors = load_file(str(path / STATE_TENSORS))
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise UserError(f"{path / STATE_TENSORS}: corrupt or missing ({e})") from None
    try:
        return _unflatten(read_json(path / STATE_JSON), tensors)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path / STATE_JSON}: does not match {STATE_TENSORS} "
                        f"({e.__class__.__name__}: {e})") from None


def holds_model(model_dir: Path) -> bool:
    return (model_dir / META).exists() or (model_dir / CHECKPOINTS).exists()


def clear_model_dir(model_dir: Path) -> None:
    """Remove what an earlier run wrote (--overwrite); other files stay."""
    for name in WRITTEN_BY_TRAINING:
        target = model_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
