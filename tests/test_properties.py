"""Property tests (hypothesis): the recipe loader and the data readers, fed random structures and
bytes, either accept or raise UserError, never another exception."""

from __future__ import annotations

import dataclasses
import io
import sys
import tempfile
import typing
from pathlib import Path

import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seq2seq.cli.common import read_input
from seq2seq.batch import collate
from seq2seq.config import DataConfig, ModelConfig, Recipe, load_recipe, recipe_from_dict
from seq2seq.errors import UserError
from seq2seq.lines import read_lines
from seq2seq.loss import sequence_nll
from seq2seq.tasks.translation.data import check_parallel, load_corpus
from seq2seq.tasks.translation.model import build_model

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def all_keys(cls=Recipe) -> list[str]:
    """Every field name of the recipe's dataclasses: random keys should often be real ones."""
    names = []
    for f in dataclasses.fields(cls):
        names.append(f.name)
        tp = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            names += all_keys(tp)
    return names


KEYS = st.one_of(st.sampled_from(all_keys()), st.text(max_size=12), st.integers(), st.none(), st.booleans())
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**20),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
                    st.sampled_from(["gru", "lstm", "bahdanau", "1e-3", ".inf", "-0", "yes", "tokens"]))


def structures(scalars):
    nested = st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)), max_leaves=25)
    sections = st.sampled_from(["name", "data", "vocab", "model", "training", "decoding"])
    return nested, st.dictionaries(sections, nested, max_size=6)


STRUCTURES, SECTIONS = structures(SCALARS)
# ints too long for str() (YAML cannot write them, so only for recipe_from_dict)
HUGE = st.sampled_from([400, 5000]).map(lambda digits: 10**digits)
HUGE_STRUCTURES, HUGE_SECTIONS = structures(st.one_of(SCALARS, HUGE, HUGE.map(lambda x: -x)))


def accepts_or_explains(load) -> None:
    try:
        result = load()
    except UserError as e:
        assert str(e)
    else:
        assert isinstance(result, Recipe)


@FAST
@given(raw=st.one_of(HUGE_STRUCTURES, HUGE_SECTIONS))
def test_recipe_from_random_structures(raw):
    accepts_or_explains(lambda: recipe_from_dict(raw, "random"))


@FAST
@given(data=st.one_of(st.binary(max_size=200),
                      STRUCTURES.map(lambda x: yaml.safe_dump(x).encode()),
                      SECTIONS.map(lambda x: yaml.safe_dump(x).encode())),
       overrides=st.lists(st.text(max_size=30), max_size=3))
def test_recipe_files_of_random_bytes_and_overrides(data, overrides):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.yaml"
        path.write_bytes(data)
        accepts_or_explains(lambda: load_recipe(path, overrides))


LINES = st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=15), max_size=8)
BYTES = st.one_of(st.binary(max_size=120), LINES.map(lambda ls: "".join(x + "\n" for x in ls).encode()))


@FAST
@given(src=BYTES, tgt=BYTES)
def test_reading_random_bytes(src, tgt):
    with tempfile.TemporaryDirectory() as folder:
        a, b = Path(folder) / "a", Path(folder) / "b"
        a.write_bytes(src)
        b.write_bytes(tgt)
        try:
            n = check_parallel(a, b)
        except UserError as e:
            assert str(a) in str(e) or str(b) in str(e)
        else:
            lines = src.count(b"\n") + (not src.endswith(b"\n"))
            assert n == len(read_lines(a)) == len(read_lines(b)) == lines


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=100))
def test_command_input_from_random_bytes(data):
    stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(data))
    try:
        lines = read_input(None)
    except UserError:
        return
    finally:
        sys.stdin = stdin
    assert lines and all("\n" not in line and not line.endswith("\r") for line in lines)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(src=LINES, tgt=LINES, cfg=st.builds(DataConfig, max_length=st.integers(1, 6),
                                           long_lines=st.sampled_from(["truncate", "skip"]),
                                           empty_lines=st.sampled_from(["skip", "error"])))
def test_corpus_from_random_text(char_vocab, src, tgt, cfg):
    with tempfile.TemporaryDirectory() as folder:
        a, b = Path(folder) / "a", Path(folder) / "b"
        a.write_text("".join(x + "\n" for x in src), encoding="utf-8")
        b.write_text("".join(x + "\n" for x in tgt), encoding="utf-8")
        try:
            corpus = load_corpus(a, b, char_vocab, char_vocab, cfg)
        except UserError:
            return
        stats = corpus.stats()
        assert stats["pairs"] == len(src) == len(tgt)
        assert stats["used"] + stats["empty_skipped"] + stats["too_long_skipped"] == stats["pairs"]
        used = corpus.usable
        assert max(corpus.src_lengths[used].max(), corpus.tgt_lengths[used].max()) <= cfg.max_length


def sections(cls) -> st.SearchStrategy:
    """Random values for every field of a section, read from its types (so new options and cells
    are covered): choices, switches, small sizes, dropouts."""
    fields = {}
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            fields[f.name] = sections(tp)
        elif typing.get_origin(tp) is typing.Literal:
            fields[f.name] = st.sampled_from(typing.get_args(tp))
        elif tp is bool:
            fields[f.name] = st.booleans()
        elif tp is int:
            fields[f.name] = st.sampled_from([1, 2, 3, 4, 6, 8])
        elif tp is float:
            fields[f.name] = st.sampled_from([0.0, 0.01, 0.3])
    return st.fixed_dictionaries(fields)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=sections(ModelConfig), joint=st.booleans(), teacher_forcing=st.sampled_from([1.0, 0.5]))
def test_every_model_the_recipe_check_passes_builds_and_runs(model, joint, teacher_forcing):
    """No module constructor or forward pass fails for a recipe value: the recipe check holds
    every rule between fields."""
    try:
        recipe = recipe_from_dict({"model": model, "vocab": {"joint": joint},
                                   "training": {"teacher_forcing": teacher_forcing}})
    except UserError:
        return
    src_size, tgt_size = (16, 16) if joint else (14, 16)
    net = build_model(recipe.model, src_size, tgt_size, teacher_forcing)
    batch = collate([[4, 5, 6, 7], [8, 9]], [[5, 6, 7], [9, 10, 11, 12]])
    net.train()
    logits, _ = net(batch)
    sequence_nll(logits, batch.tgt_out).backward()
    net.eval()
    memory, state = net.encode(batch.src, batch.src_lengths)
    prev = torch.tensor([2, 2])
    for _ in range(2):
        log_probs, weights, state = net.step(prev, memory, state)
        prev = log_probs.argmax(-1)
    assert log_probs.shape[0] == 2 and weights.shape == (2, 4)
