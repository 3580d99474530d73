"""The model directory: safetensors weights, JSON recipe and metadata, sentencepiece models.

    MODEL_DIR/
      recipe.json           the resolved recipe (every default written out)
      meta.json             format version, vocabulary sizes, task
      spm.model             (or spm_src.model + spm_tgt.model)
      best.safetensors      weights with the best validation score; what commands load
      checkpoints/step_N/   weights.safetensors, state.safetensors, state.json (for --resume)
      train_log.jsonl       one line per validation
      steps.jsonl           one line per update (loss, tokens, gradient norm)

Nothing here is unpickled: tensors go through safetensors, everything else through JSON. Every
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

FORMAT_VERSION = 1


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
              task: str = "translation") -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    write_json(model_dir / "recipe.json", to_dict(recipe))
    write_json(model_dir / "meta.json", {"format_version": FORMAT_VERSION, "task": task,
                                          "src_vocab_size": src_vocab_size,
                                          "tgt_vocab_size": tgt_vocab_size})


def load_meta(model_dir: Path) -> tuple[Recipe, dict]:
    if not model_dir.is_dir():
        raise UserError(f"{model_dir}: model directory not found")
    path = model_dir / "meta.json"
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
    recipe = recipe_from_dict(read_json(model_dir / "recipe.json"), str(model_dir / "recipe.json"))
    return recipe, meta


def save_weights(model: torch.nn.Module, path: Path) -> None:
    atomic_write(path, lambda p: save_model(model, str(p), metadata={"format": "pt"}))


def load_weights(model: torch.nn.Module, path: Path) -> None:
    if not path.is_file():
        raise UserError(f"{path}: weights file missing from the model directory")
    try:
        missing, unexpected = load_model(model, str(path), strict=False, device="cpu")
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise UserError(f"{path}: corrupt or mismatched weights ({str(e).splitlines()[0]})") from None
    if missing or unexpected:
        raise UserError(f"{path}: weights do not match the recipe's model (missing "
                        f"{sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")


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


def save_checkpoint(model_dir: Path, step: int, model: torch.nn.Module, state: dict, keep: int = 2) -> Path:
    """Write checkpoints/step_N (weights + trainer state) atomically; keep the last `keep`."""
    root = model_dir / "checkpoints"
    final = root / f"step_{step:09d}"
    work = root / f".step_{step:09d}.partial"
    for stale in root.glob(".step_*.partial"):  # left by a run killed while saving
        shutil.rmtree(stale, ignore_errors=True)
    work.mkdir(parents=True)
    save_weights(model, work / "weights.safetensors")
    tensors: dict = {}
    skeleton = _flatten(state, "s", tensors)
    atomic_write(work / "state.safetensors", lambda p: save_file(tensors, str(p)))
    write_json(work / "state.json", skeleton)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(work, final)
    _fsync_dir(root)
    for old in sorted(root.glob("step_*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(model_dir: Path) -> list[Path]:
    return sorted((model_dir / "checkpoints").glob("step_*"), reverse=True)


def load_checkpoint(path: Path, model: torch.nn.Module) -> dict:
    """Load weights into `model` and return the trainer state; UserError if corrupt."""
    load_weights(model, path / "weights.safetensors")
    try:
        tensors = load_file(str(path / "state.safetensors"))
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise UserError(f"{path / 'state.safetensors'}: corrupt or missing ({e})") from None
    try:
        return _unflatten(read_json(path / "state.json"), tensors)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path / 'state.json'}: does not match state.safetensors "
                        f"({e.__class__.__name__}: {e})") from None


def holds_model(model_dir: Path) -> bool:
    return (model_dir / "meta.json").exists() or (model_dir / "checkpoints").exists()
