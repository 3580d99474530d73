"""Reading recipes: YAML (a key given twice is an error), `key.path=value` overrides, and the
plain data -> typed Recipe build, which collects every unknown key, wrong type and out-of-range
value (not just the first) with its key path, the nearest valid name and the allowed values.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
import sys
import typing
from pathlib import Path
from typing import Any, Callable, Literal

import yaml

from seq2seq.config import Recipe
from seq2seq.errors import UserError
from seq2seq.recipe_check import _check, _given, _show, likely_slips, unused_settings

_FLOAT32_MAX = 3.4028234663852886e38  # recipe numbers meet float32 tensors
_INT64_MAX = 2**63 - 1  # and int64 ones: the bound of every integer that states no other
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")  # YAML 1.1 reads 3e-4 as a string


def _allowed(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is tuple:
        return "a list of strings"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, str(tp)
    )



def _coerce(value: Any, tp: Any, key: str, meta: dict, errors: list[str]) -> Any:
    origin = typing.get_origin(tp)
    ok = True
    if origin is Literal:
        ok = value in typing.get_args(tp)
        if not ok and isinstance(value, str):
            near = difflib.get_close_matches(value, [str(a) for a in typing.get_args(tp)], 1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            errors.append(f"{key}: {_show(value)} is not allowed{hint} (allowed: {_allowed(tp)})")
            return None
    elif origin is tuple:
        if isinstance(value, str):
            value = (value,)
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    elif tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            value = float(value)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and abs(value) > _FLOAT32_MAX:  # (nan passes here; the range check below catches it)
            errors.append(f"{key}: {_show(value)} is out of range (must be a finite number "
                          "between -3.4e38 and 3.4e38)")
            return None
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        try:
            value = str(value) if ok else value
        except ValueError:  # an int too long to print
            ok = False
    if not ok:
        errors.append(f"{key}: expected {_allowed(tp)}, got {_show(value)}")
        return None
    lo, hi = meta.get("lo"), meta.get("hi")
    if tp is int and hi is None:
        hi = _INT64_MAX
    if lo is not None and (value != value or value < lo or (meta.get("lo_open") and value == lo)):  # nan
        op = ">" if meta.get("lo_open") else ">="
        errors.append(f"{key}: {_show(value)} is out of range (must be {op} {lo}" +
                      (f" and <= {hi})" if hi is not None else ")"))
    elif hi is not None and value > hi:
        errors.append(f"{key}: {_show(value)} is out of range (must be between {lo} and {hi})")
    return value


def _build(cls: type, raw: Any, path: str, errors: list[str]) -> Any:
    where = path or "the recipe"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.append(f"{where}: expected a mapping of keys, got {_show(raw)}")
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        full = f"{path}.{key}" if path else str(key)
        if key not in fields:
            near = difflib.get_close_matches(str(key), fields, 1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            errors.append(f"{full}: unknown key; {hint}(valid keys: {', '.join(fields)})")
            continue
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            values[key] = _build(tp, value, full, errors)
        else:
            values[key] = _coerce(value, tp, full, dict(fields[key].metadata), errors)
    return cls(**{k: v for k, v in values.items() if v is not None})


_noted: set[str] = set()  # the notes said so far in this process


def note_once(text: str) -> None:
    """'note: TEXT' on stderr, once per process (under torchrun, by rank 0 alone)."""
    if text not in _noted and os.environ.get("RANK", "0") == "0":
        _noted.add(text)
        print(f"note: {text}", file=sys.stderr)


def _old_autocast(raw: Any, source: str, errors: list[str]) -> Any:
    """`raw` with training.autocast, the old name of training.precision (older recipes and model
    directories' recipe.json), read as today's key: true as 'auto', false as 'fp32', said once as a
    note. A copy: `raw` itself is not changed."""
    training = raw.get("training") if isinstance(raw, dict) else None
    if not isinstance(training, dict) or "autocast" not in training:
        return raw
    old = training["autocast"]
    training = {k: v for k, v in training.items() if k != "autocast"}
    if not isinstance(old, bool):
        errors.append(f"training.autocast: expected true or false, got {_show(old)} (the old name of "
                      "training.precision: write training.precision: auto, fp32 or bf16)")
    elif "precision" in training:
        note_once(f"{source}: training.autocast (the old name of training.precision) is not used: "
                  f"training.precision {_show(training['precision'])} is given")
    else:
        training["precision"] = "auto" if old else "fp32"
        note_once(f"{source}: training.autocast: {str(old).lower()} is read as training.precision: "
                  f"{training['precision']} (its new name)")
    return {**raw, "training": training}


def recipe_from_dict(raw: Any, source: str = "recipe", warn: Callable[[str], None] | None = None) -> Recipe:
    """Build and check a Recipe from plain data; all problems are reported together. Settings
    the recipe's choices leave unused, and likely slips, are passed to `warn`, one line each."""
    errors: list[str] = []
    raw = _old_autocast(raw, source, errors)
    recipe = _build(Recipe, raw, "", errors)
    if not errors:
        _check(recipe, errors)
    if not errors and recipe.training.last_phase:
        _check_last_phase(raw, recipe.training.last_phase, errors)
    if errors:
        raise UserError(f"{source}: " + "; ".join(errors))
    if warn is not None:
        for note in unused_settings(recipe, _given(raw)) + likely_slips(recipe):
            warn(note)
    return recipe


def _check_last_phase(raw: dict, overrides: tuple[str, ...], errors: list[str]) -> None:
    """training.last_phase's overrides must make a recipe of their own, and change only what
    --init-from allows, checked now rather than after the first phase's hours of training."""
    from seq2seq.tasks.translation.init_from import MAY_DIFFER  # (the rooms import this module)
    try:
        keys = [".".join(parse_override(text)[0]) for text in overrides]
        phase = apply_overrides(copy.deepcopy(raw), [*overrides, "training.last_phase=[]"])
    except UserError as e:
        errors.append(f"training.last_phase: {e}")
        return
    for key in keys:
        if key.startswith(("model.", "vocab.")) and key not in MAY_DIFFER:
            errors.append(f"training.last_phase: {key} cannot change in a last phase, which starts from this "
                          f"run's weights (only {', '.join(MAY_DIFFER)} may)")
    inner: list[str] = []
    recipe = _build(Recipe, phase, "", inner)
    if not inner:
        _check(recipe, inner)
    errors.extend(f"training.last_phase: {e}" for e in inner)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`training.lr=0.5` -> (['training', 'lr'], 0.5); values are read as YAML scalars."""
    if "=" not in text:
        raise UserError(f"override {text!r}: expected key.path=value")
    key, _, value = text.partition("=")
    if not all(part.strip() for part in key.split(".")):
        raise UserError(f"override {text!r}: expected key.path=value (an empty key in {key.strip()!r})")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return key.strip().split("."), parsed


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    for text in overrides:
        keys, value = parse_override(text)
        node = raw
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {}
            node = node[k]
        node[keys[-1]] = value
    return raw


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, but a key given twice in one mapping is an error: YAML would keep the
    last silently (a second `training:` section drops the first)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"{_show(key)} is given twice (also at line {seen[key]}); YAML "
                        "would keep the last only", key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
            except TypeError:  # an unhashable key: the safe loader's own error follows
                break
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: recipe file not found") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read recipe ({e.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise UserError(f"{path}: line {line}: bytes are not UTF-8 ({e.reason})") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{path}:{line} malformed YAML: {problem}") from None
    except RecursionError:
        raise UserError(f"{path}: malformed YAML: nested too deeply") from None


def load_recipe(path: str | Path, overrides: list[str] = (),
                warn: Callable[[str], None] | None = None) -> Recipe:
    """Read a YAML recipe, apply `key.path=value` overrides and check everything; `warn` gets
    one line per setting (from the file or an override) that the recipe's choices leave unused."""
    raw = read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a recipe must be a mapping of sections, got {type(raw).__name__}")
    return recipe_from_dict(apply_overrides(raw, list(overrides)), str(path), warn)
