"""Recipes: every shipped recipe loads; every kind of mistake is a UserError naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from seq2seq.config import (DecodingConfig, Recipe, TrainingConfig, load_recipe, parse_override,
                            recipe_from_dict, to_dict)
from seq2seq.errors import UserError

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "recipes").rglob("*.yaml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(raw) -> str:
    with pytest.raises(UserError) as info:
        recipe_from_dict(raw, "r.yaml")
    return str(info.value)


# ---------------------------------------------------------------- shipped recipes


def test_recipes_are_found_recursively():
    names = {p.relative_to(REPO / "recipes").as_posix() for p in RECIPES}
    assert "translation/multi30k_en_de.yaml" in names
    assert "demo/dates.yaml" in names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.relative_to(REPO / "recipes").as_posix())
def test_every_recipe_loads(path):
    recipe = load_recipe(path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert recipe.name == raw.get("name", Recipe().name)
    assert recipe != Recipe()  # a recipe lists what it changes
    assert path.read_text(encoding="utf-8").startswith("#")  # opens with the command that runs it


def test_multi30k_recipe_values_are_read():
    r = load_recipe(REPO / "recipes/translation/multi30k_en_de.yaml")
    assert (r.data.src, r.data.tgt, r.data.valid) == ("en", "de", "val")
    assert r.data.test == ("val", "test_2016_flickr")
    assert r.model.decoder.hidden_size == 512 and r.model.decoder.num_layers == 2
    assert r.model.encoder.dropout == pytest.approx(0.3)
    assert r.training.label_smoothing == pytest.approx(0.1)
    assert r.training.scheduler == "plateau" and r.training.plateau_patience == 0
    # what the recipe does not list keeps the dataclass default
    assert r.decoding.nbest == DecodingConfig().nbest
    assert r.training.seed == TrainingConfig().seed


# ---------------------------------------------------------------- building from data


def test_empty_recipe_is_all_defaults(tmp_path):
    assert load_recipe(write(tmp_path, "")) == Recipe()
    assert recipe_from_dict({"model": None}) == Recipe()


def test_nested_values_and_int_to_float():
    r = recipe_from_dict({"model": {"encoder": {"cell": "lstm", "num_layers": 3}},
                          "training": {"lr": 1}, "data": {"test": "only"}})
    assert r.model.encoder.cell == "lstm" and r.model.encoder.num_layers == 3
    assert r.model.encoder.hidden_size == 256  # sibling keeps its default
    assert isinstance(r.training.lr, float) and r.training.lr == 1.0
    assert r.data.test == ("only",)


def test_to_dict_round_trips_through_json():
    r = recipe_from_dict({"data": {"test": ["a", "b"]}, "model": {"decoder": {"init": "zero"}},
                          "decoding": {"beam_size": 3, "nbest": 2}})
    assert recipe_from_dict(json.loads(json.dumps(to_dict(r)))) == r


# ---------------------------------------------------------------- errors


def test_unknown_key_names_path_and_nearest():
    msg = error_of({"model": {"encoder": {"hiden_size": 64}}})
    assert "model.encoder.hiden_size" in msg
    assert "did you mean 'hidden_size'" in msg
    assert "num_layers" in msg  # the valid keys are listed


def test_unknown_key_in_file_names_file(tmp_path):
    path = write(tmp_path, "model:\n  encoder:\n    hiden_size: 64\n")
    with pytest.raises(UserError, match="hiden_size") as info:
        load_recipe(path)
    assert str(path) in str(info.value) and "hidden_size" in str(info.value)


def test_unknown_top_level_section():
    msg = error_of({"trainig": {"lr": 0.1}})
    assert "trainig" in msg and "'training'" in msg


def test_all_errors_are_collected():
    msg = error_of({"model": {"encoder": {"hiden_size": 1, "dropout": -0.5}},
                    "decoding": {"beam_size": 0}})
    assert "model.encoder.hiden_size" in msg
    assert "model.encoder.dropout" in msg
    assert "decoding.beam_size" in msg


@pytest.mark.parametrize("raw, key, expected", [
    ({"model": {"encoder": {"hidden_size": "big"}}}, "model.encoder.hidden_size", "an integer"),
    ({"model": {"encoder": {"hidden_size": True}}}, "model.encoder.hidden_size", "an integer"),
    ({"model": {"encoder": {"hidden_size": 2.5}}}, "model.encoder.hidden_size", "an integer"),
    ({"model": {"encoder": {"bidirectional": "yes please"}}}, "model.encoder.bidirectional",
     "true or false"),
    ({"training": {"lr": "fast"}}, "training.lr", "a number"),
    ({"data": {"test": [1, 2]}}, "data.test", "a list of strings"),
    ({"model": {"encoder": 5}}, "model.encoder", "a mapping"),
])
def test_wrong_type(raw, key, expected):
    msg = error_of(raw)
    assert f"{key}:" in msg and expected in msg


@pytest.mark.parametrize("raw, key", [
    ({"model": {"encoder": {"dropout": -0.1}}}, "model.encoder.dropout"),
    ({"model": {"decoder": {"dropout": 1.5}}}, "model.decoder.dropout"),
    ({"decoding": {"beam_size": 0}}, "decoding.beam_size"),
    ({"training": {"lr": 0.0}}, "training.lr"),  # open lower bound
    ({"vocab": {"size": 7}}, "vocab.size"),
    ({"model": {"encoder": {"dropout": float("nan")}}}, "model.encoder.dropout"),  # YAML .nan
    ({"training": {"lr": float("nan")}}, "training.lr"),
])
def test_out_of_range(raw, key):
    msg = error_of(raw)
    assert f"{key}:" in msg and "out of range" in msg


@pytest.mark.parametrize("raw, key, bound", [
    ({"model": {"encoder": {"hidden_size": 10**30}}}, "model.encoder.hidden_size", "9223372036854775807"),
    ({"decoding": {"max_length": 10**30}}, "decoding.max_length", "9223372036854775807"),
    ({"vocab": {"size": 2**31}}, "vocab.size", "2147483647"),  # sentencepiece reads an int32
    ({"training": {"threads": 100_000}}, "training.threads", "1024"),  # libgomp aborts far above
    # ratio * S + offset in int64: 1e30 wrapped to a negative length, so every output was empty
    ({"decoding": {"max_length_ratio": 1e30}}, "decoding.max_length_ratio", "1000000"),
    ({"decoding": {"max_length_offset": 2**62}}, "decoding.max_length_offset", "2147483647"),
])
def test_numbers_too_large_for_what_reads_them_are_out_of_range(raw, key, bound):
    msg = error_of(raw)
    assert f"{key}:" in msg and "out of range" in msg and bound in msg, msg


def test_in_range_bounds_are_accepted():
    r = recipe_from_dict({"model": {"encoder": {"dropout": 0.0}, "decoder": {"dropout": 1.0}},
                          "decoding": {"beam_size": 1}, "vocab": {"size": 8}})
    assert r.model.decoder.dropout == 1.0 and r.decoding.beam_size == 1


def test_bad_literal_suggests_and_lists_allowed():
    msg = error_of({"model": {"encoder": {"cell": "grux"}}})
    assert "model.encoder.cell" in msg and "did you mean 'gru'" in msg
    assert "'rnn'" in msg and "'lstm'" in msg
    msg = error_of({"model": {"attention": {"type": 3}}})
    assert "model.attention.type" in msg and "'bahdanau'" in msg


@pytest.mark.parametrize("raw, needle", [
    ({"model": {"encoder": {"hidden_size": 8, "bidirectional": True},
                "decoder": {"hidden_size": 8, "init": "last"}}}, "model.decoder.init"),
    ({"model": {"embedding_size": 8, "decoder": {"hidden_size": 16}, "tie_output": True}},
     "model.tie_output"),
    ({"model": {"share_embeddings": True}, "vocab": {"joint": False}}, "model.share_embeddings"),
    ({"decoding": {"beam_size": 2, "nbest": 3}}, "decoding.nbest"),
    ({"model": {"attention": {"type": "concat", "scaled": True}}}, "model.attention.scaled"),
])
def test_cross_field_checks(raw, needle):
    assert needle in error_of(raw)


# every rule between fields: one message naming every key it involves
CROSS_FIELD_RULES = [
    ({"model": {"encoder": {"hidden_size": 8, "bidirectional": True},
                "decoder": {"hidden_size": 8, "init": "last"}}},
     ["model.decoder.init", "model.decoder.hidden_size", "model.encoder.hidden_size",
      "model.encoder.bidirectional"]),
    ({"model": {"encoder": {"hidden_size": 8, "bidirectional": True},
                "decoder": {"hidden_size": 12}, "attention": {"type": "dot"}}},
     ["model.attention.type", "model.decoder.hidden_size", "model.encoder.hidden_size",
      "model.encoder.bidirectional"]),
    ({"model": {"embedding_size": 8, "decoder": {"hidden_size": 16}, "tie_output": True}},
     ["model.tie_output", "model.embedding_size", "model.decoder.hidden_size"]),
    ({"model": {"share_embeddings": True}, "vocab": {"joint": False}},
     ["model.share_embeddings", "vocab.joint"]),
    ({"model": {"copy": True}, "vocab": {"joint": False}}, ["model.copy", "vocab.joint"]),
    ({"model": {"decoder": {"input_feeding": False, "feed_dropout": 0.3}}},
     ["model.decoder.feed_dropout", "model.decoder.input_feeding"]),
    ({"model": {"attention": {"type": "dot", "coverage": True}}},
     ["model.attention.coverage", "model.attention.type"]),
    ({"model": {"attention": {"type": "concat", "scaled": True}}},
     ["model.attention.scaled", "model.attention.type"]),
    ({"training": {"coverage_weight": 1.0}}, ["training.coverage_weight", "model.attention.coverage"]),
    ({"decoding": {"beam_size": 2, "nbest": 3}}, ["decoding.nbest", "decoding.beam_size"]),
    ({"decoding": {"min_length": 10, "max_length": 5}}, ["decoding.min_length", "decoding.max_length"]),
    ({"training": {"scheduler": "plateau", "lr": 1e-4, "min_lr": 1e-3}},
     ["training.min_lr", "training.lr", "training.scheduler"]),
    ({"training": {"batch_type": "tokens", "batch_size": 50}, "data": {"max_length": 100}},
     ["training.batch_size", "training.batch_type", "data.max_length"]),
    ({"training": {"batch_size": 90}, "data": {"max_length": 50, "max_target_length": 100}},
     ["training.batch_size", "training.batch_type", "data.max_target_length"]),
]


@pytest.mark.parametrize("raw, keys", CROSS_FIELD_RULES, ids=lambda v: v[0] if isinstance(v, list) else "")
def test_each_cross_field_rule_is_one_line_naming_its_keys(raw, keys):
    msg = error_of(raw)
    assert "\n" not in msg and msg.startswith(f"r.yaml: {keys[0]}: "), msg
    for key in keys:
        assert key in msg, (key, msg)


@pytest.mark.parametrize("raw", [
    {"model": {"encoder": {"hidden_size": 8, "bidirectional": True}, "decoder": {"hidden_size": 16},
               "attention": {"type": "dot"}}},
    {"model": {"encoder": {"hidden_size": 16, "bidirectional": False}, "decoder": {"hidden_size": 16},
               "attention": {"type": "dot", "scaled": True}}},
    {"model": {"encoder": {"hidden_size": 8}, "decoder": {"hidden_size": 12}, "attention": {"type": "general"}}},
    {"decoding": {"min_length": 5, "max_length": 5}},
    {"decoding": {"min_length": 10}},  # max_length 0: no cap
    {"training": {"scheduler": "warmup", "lr": 1e-4, "min_lr": 1e-3}},  # min_lr: plateau only
    {"training": {"batch_type": "sentences", "batch_size": 5}},
    {"training": {"batch_size": 101}, "data": {"max_length": 100}},  # the longest target + EOS fits
])
def test_cross_field_rules_accept_what_works(raw):
    recipe_from_dict(raw)


# ---------------------------------------------------------------- settings left unused


def warnings_of(raw) -> list[str]:
    notes: list[str] = []
    recipe_from_dict(raw, "r.yaml", warn=notes.append)
    return notes


@pytest.mark.parametrize("raw, key, selector", [
    ({"training": {"momentum": 0.9}}, "training.momentum", "training.optimizer"),
    ({"training": {"optimizer": "adamw", "momentum": 0.9}}, "training.momentum", "training.optimizer"),
    ({"training": {"plateau_factor": 0.3}}, "training.plateau_factor", "training.scheduler"),
    ({"training": {"plateau_patience": 3}}, "training.plateau_patience", "training.scheduler"),
    ({"training": {"scheduler": "warmup", "min_lr": 1e-5}}, "training.min_lr", "training.scheduler"),
    ({"training": {"scheduler": "plateau", "warmup_steps": 4000}}, "training.warmup_steps",
     "training.scheduler"),
    ({"training": {"warmup_steps": 4000}}, "training.warmup_steps", "training.scheduler"),
    ({"model": {"embedding_init_std": 0.1}}, "model.embedding_init_std", "model.init"),
    ({"model": {"attention": {"type": "general", "hidden_size": 64}}}, "model.attention.hidden_size",
     "model.attention.type"),
    ({"decoding": {"beam_size": 1, "length_penalty": 0.6}}, "decoding.length_penalty", "decoding.beam_size"),
    ({"decoding": {"beam_size": 1, "coverage_penalty": 0.2}}, "decoding.coverage_penalty",
     "decoding.beam_size"),
])
def test_a_setting_of_an_option_not_chosen_is_a_warning_naming_both_keys(raw, key, selector):
    notes = warnings_of(raw)
    assert len(notes) == 1 and notes[0].startswith(f"{key}: ") and selector in notes[0], notes
    assert "\n" not in notes[0]


@pytest.mark.parametrize("raw", [
    {"training": {"momentum": 0.0}},  # the default, written out: nothing to say
    {"training": {"optimizer": "sgd", "momentum": 0.9}},
    {"training": {"scheduler": "plateau", "plateau_factor": 0.3, "min_lr": 1e-5}},
    {"training": {"scheduler": "warmup", "warmup_steps": 10}},
    {"model": {"init": "xavier", "embedding_init_std": 0.1}},
    {"model": {"attention": {"type": "bahdanau", "hidden_size": 64}}},
    {"decoding": {"beam_size": 4, "length_penalty": 0.6}},
])
def test_settings_that_apply_or_are_defaults_give_no_warning(raw):
    assert warnings_of(raw) == []


def test_only_given_settings_count():
    """The recipe's own defaults are not 'set': a choice alone warns about nothing."""
    assert warnings_of({"training": {"optimizer": "adamw", "scheduler": "warmup"}}) == []


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.relative_to(REPO / "recipes").as_posix())
def test_shipped_recipes_set_nothing_they_do_not_use(path):
    notes: list[str] = []
    load_recipe(path, warn=notes.append)
    assert notes == []


@pytest.mark.parametrize("raw, needles", [
    # a budget of 64 padded tokens holds one sentence of 60 pieces: meant as 64 sentences?
    ({"training": {"batch_size": 64}, "data": {"max_length": 60}},
     ["training.batch_size: 64", "training.batch_type", "data.max_length", "sentences"]),
    ({"data": {"src": "en", "tgt": "en"}}, ["data.tgt: 'en'", "data.src"]),
    ({"data": {"valid": "train"}}, ["data.valid: 'train'", "data.train"]),
    ({"data": {"test": "val,test_2016"}}, ["data.test: 'val,test_2016'", "[val, test_2016]"]),
    # an output layer tied to PyTorch's N(0, 1) embeddings starts with logits far too large
    ({"model": {"tie_output": True, "embedding_size": 256, "decoder": {"hidden_size": 256}}},
     ["model.tie_output", "model.init: xavier", "model.embedding_init_std: 0.0625", "model.embedding_size 256"]),
])
def test_likely_slips_are_warned(raw, needles):
    notes = warnings_of(raw)
    assert len(notes) == 1, notes
    for needle in needles:
        assert needle in notes[0], notes


def test_command_line_settings_count_too(tmp_path):
    notes: list[str] = []
    load_recipe(write(tmp_path, "training:\n  optimizer: adam\n"), ["training.momentum=0.9"],
                warn=notes.append)
    assert len(notes) == 1 and notes[0].startswith("training.momentum: ")


def test_last_init_with_matching_sizes_is_fine():
    r = recipe_from_dict({"model": {"encoder": {"hidden_size": 8, "bidirectional": True},
                                    "decoder": {"hidden_size": 16, "init": "last"}}})
    assert r.model.decoder.init == "last"


def test_malformed_yaml_names_line(tmp_path):
    path = write(tmp_path, "name: x\ntraining:\n  lr: [0.1\n  epochs: 2\nmodel: {\n")
    with pytest.raises(UserError) as info:
        load_recipe(path)
    msg = str(info.value)
    assert str(path) in msg and "malformed YAML" in msg
    assert "line 4, column 9" in msg  # where the unclosed list meets `epochs:`


def test_malformed_yaml_line_number_is_exact(tmp_path):
    path = write(tmp_path, "name: x\nmodel:\n  encoder: {cell: gru\n  decoder: 3\n")
    with pytest.raises(UserError, match=r"line 4, column"):
        load_recipe(path)


@pytest.mark.parametrize("text, line, key", [
    ("training:\n  lr: 0.1\ntraining:\n  epochs: 3\n", 3, "training"),  # the first lr was lost
    ("training:\n  lr: 0.1\n  epochs: 2\n  lr: 0.5\n", 4, "lr"),
    ("model: {encoder: {cell: gru, cell: lstm}}\n", 1, "cell"),
])
def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path, text, line, key):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as info:
        load_recipe(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: line {line}, column ") and f"{key!r} is given twice" in msg, msg


def test_missing_and_non_mapping_recipe(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_recipe(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match="mapping"):
        load_recipe(write(tmp_path, "- a\n- b\n"))


# ---------------------------------------------------------------- overrides


def test_overrides_are_applied_and_typed(tmp_path):
    path = write(tmp_path, "training:\n  lr: 0.1\n  epochs: 4\n")
    r = load_recipe(path, ["training.lr=0.25", "training.epochs=7", "model.encoder.cell=lstm",
                           "model.encoder.bidirectional=false", "data.test=[a, b]", "name=12"])
    assert r.training.lr == 0.25 and r.training.epochs == 7
    assert r.model.encoder.cell == "lstm" and r.model.encoder.bidirectional is False
    assert r.data.test == ("a", "b")
    assert r.name == "12"


def test_override_with_exponent_is_a_number(tmp_path):
    # YAML 1.1 reads '3e-4' (no dot) as a string; a recipe must still take it as a float
    r = load_recipe(write(tmp_path, "training:\n  min_lr: 1e-7\n"), ["training.lr=3e-4"])
    assert r.training.lr == pytest.approx(3e-4) and r.training.min_lr == pytest.approx(1e-7)


def test_parse_override():
    assert parse_override("training.epochs=3") == (["training", "epochs"], 3)
    assert parse_override("data.src= en") == (["data", "src"], "en")
    assert parse_override("name=a=b") == (["name"], "a=b")
    with pytest.raises(UserError, match="key.path=value"):
        parse_override("training.epochs")
    for text in ("=5", "training..lr=1", "training.=1", ".lr=1", " =1"):
        with pytest.raises(UserError, match=r"^override .*: expected key.path=value \(an empty key"):
            parse_override(text)


@pytest.mark.parametrize("override, needle", [
    ("decoding.beam_size=0", "decoding.beam_size"),
    ("model.encoder.hiden_size=4", "did you mean 'hidden_size'"),
    ("training.epochs=two", "training.epochs"),
    ("training.label_smoothing=.nan", "training.label_smoothing"),
    ("model.encoder=gru", "model.encoder"),
])
def test_bad_overrides_fail(tmp_path, override, needle):
    with pytest.raises(UserError) as info:
        load_recipe(write(tmp_path, ""), [override])
    assert needle in str(info.value)


def test_multi30k_fast_recipe_differs_from_the_reference_only_in_the_fast_paths():
    ref = to_dict(load_recipe(REPO / "recipes/translation/multi30k_en_de.yaml"))
    fast = to_dict(load_recipe(REPO / "recipes/translation/multi30k_en_de_fast.yaml"))
    assert fast["model"]["attention"] == {**ref["model"]["attention"], "type": "dot", "scaled": True}
    # no input feeding: no fed-back vector to drop
    assert fast["model"]["decoder"] == {**ref["model"]["decoder"], "input_feeding": False, "feed_dropout": 0.0}
    for section in ("data", "vocab", "training", "decoding"):
        assert fast[section] == ref[section], section
    rest = {k: v for k, v in fast["model"].items() if k not in ("attention", "decoder")}
    assert rest == {k: v for k, v in ref["model"].items() if k not in ("attention", "decoder")}


# ---------------------------------------------------------------- training.last_phase


LAST_PHASE_BASE = {"task": "summarization", "model": {"copy": True, "share_embeddings": True,
                                                      "attention": {"coverage": False}}}


def with_last_phase(*overrides: str) -> dict:
    return {**LAST_PHASE_BASE, "training": {"last_phase": list(overrides)}}


def test_last_phase_is_read_without_a_warning():
    notes: list[str] = []
    recipe = recipe_from_dict(with_last_phase("model.attention.coverage=true", "training.coverage_weight=1"),
                              "r.yaml", notes.append)
    assert recipe.training.last_phase == ("model.attention.coverage=true", "training.coverage_weight=1")
    assert notes == []


@pytest.mark.parametrize("override, expected", [
    ("model.embedding_size=8", "training.last_phase: model.embedding_size cannot change in a last phase"),
    ("training.lr=-1", "training.last_phase: training.lr: -1.0 is out of range"),
    ("training.coverage_weight=1", "training.last_phase: training.coverage_weight: needs model.attention.coverage"),
    ("no_equals", "training.last_phase: override 'no_equals': expected key.path=value"),
])
def test_a_last_phase_that_cannot_train_is_an_error_before_the_first(override, expected):
    assert error_of(with_last_phase(override)).startswith(f"r.yaml: {expected}")
