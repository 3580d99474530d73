"""tools/vs_joeynmt.py and tools/joeynmt_side.py without JoeyNMT: the configuration it writes for JoeyNMT 2.3 (the same model
as our recipes), the patch of JoeyNMT's builders.py, the figures read from JoeyNMT's log lines and
from our timed steps, and our side's two drivers end to end on tiny data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import joeynmt_side as joey  # noqa: E402
import vs_joeynmt as vs  # noqa: E402

from seq2seq.config import load_recipe  # noqa: E402
from seq2seq.errors import UserError  # noqa: E402


def config_of(name: str, overrides=(), **kwargs) -> dict:
    recipe = load_recipe(vs.RECIPES[name], list(overrides))
    return joey.joey_config(recipe, data=Path("/d"), spm_model=Path("/d/spm.model"), voc_file=Path("/d/v.txt"),
                          model_dir=Path("/m"), **kwargs)


def test_reference_recipe_becomes_the_same_joeynmt_model():
    c = config_of("reference")
    enc, dec = c["model"]["encoder"], c["model"]["decoder"]
    assert (enc["type"], enc["rnn_type"], enc["hidden_size"], enc["num_layers"], enc["bidirectional"]) == \
        ("recurrent", "gru", 256, 2, True)
    assert (dec["type"], dec["rnn_type"], dec["hidden_size"], dec["num_layers"]) == ("recurrent", "gru", 512, 2)
    assert (dec["attention"], dec["input_feeding"], dec["init_hidden"]) == ("bahdanau", True, "bridge")
    assert enc["embeddings"]["embedding_dim"] == dec["embeddings"]["embedding_dim"] == 256
    assert enc["dropout"] == dec["dropout"] == dec["hidden_dropout"] == enc["embeddings"]["dropout"] == 0.3
    t = c["training"]
    assert (t["optimizer"], t["learning_rate"], t["batch_size"], t["batch_type"]) == ("adam", 0.001, 1100, "token")
    assert (t["label_smoothing"], t["clip_grad_norm"], t["normalization"]) == (0.1, 1.0, "tokens")
    assert (t["scheduling"], t["patience"], t["decrease_factor"]) == ("plateau", 0, 0.5)
    assert t["validation_freq"] % t["logging_freq"] == 0  # JoeyNMT refuses anything else
    for side, lang in (("src", "en"), ("trg", "de")):
        d = c["data"][side]
        assert (d["lang"], d["level"], d["tokenizer_type"], d["voc_file"]) == (lang, "bpe", "sentencepiece", "/d/v.txt")
        assert d["tokenizer_cfg"]["model_file"] == "/d/spm.model" and d["max_length"] == 60
    assert c["data"]["train"] == "/d/train" and c["data"]["test"] == "/d/test"
    assert c["testing"]["beam_size"] == 5 and c["testing"]["batch_size"] == 64
    assert yaml.safe_load(yaml.safe_dump(c)) == c  # written as plain YAML


def test_fast_recipe_gets_luong_without_input_feeding_and_overrides_reach_both_sides():
    c = config_of("fast", ["model.decoder.num_layers=3", "training.lr=0.002"], updates=65, logging_freq=5,
                  load_model=Path("/m/latest.ckpt"))
    dec = c["model"]["decoder"]
    assert (dec["attention"], dec["input_feeding"], dec["num_layers"]) == ("luong", False, 3)
    assert c["training"]["learning_rate"] == 0.002
    assert (c["training"]["updates"], c["training"]["logging_freq"]) == (65, 5)
    assert c["testing"]["load_model"] == "/m/latest.ckpt"
    assert "updates" not in config_of("fast")["training"]


@pytest.mark.parametrize("override, named", [("model.copy=true", "model.copy"),
                                             ("model.attention.type=concat", "model.attention.type concat"),
                                             ("model.decoder.output_dropout=0.1", "model.decoder.output_dropout"),
                                             ("model.encoder.dropout_io=true", "model.encoder.dropout_io"),
                                             ("model.decoder.feed_dropout=0", "model.decoder.feed_dropout"),
                                             ("model.decoder.cell=rnn", "the cell rnn")])
def test_what_joeynmt_cannot_build_is_refused(override, named):
    with pytest.raises(UserError, match=named):
        config_of("reference", [override])


BUILDERS = '''    if scheduler_name == "plateau":
        # learning rate scheduler
        kwargs = {
            "mode": scheduler_mode,
            "verbose": False,
            "threshold_mode": "abs",
'''


def test_builders_patch_drops_verbose_once():
    patched = joey.drop_verbose(BUILDERS)
    assert "verbose" not in patched
    assert patched == BUILDERS.replace('            "verbose": False,\n', "")
    assert joey.drop_verbose(patched) == patched


def joey_line(stamp: str, step: int, rate: float) -> str:
    return (f"{stamp} - INFO - joeynmt.training - Epoch   1, Step: {step:8d}, Batch Loss:     5.000000, "
            f"Batch Acc: 0.010000, Tokens per Sec: {rate:8.0f}, Lr: 0.001000")


def test_joeynmt_rate_over_the_window_from_its_log_lines():
    log = "\n".join(["2026-01-01 10:00:00,000 - INFO - joeynmt.training - EPOCH 1",
                     joey_line("2026-01-01 10:00:05,000", 2, 999),  # warm-up interval: left out
                     joey_line("2026-01-01 10:00:07,000", 4, 500),  # 2 s at 500 tok/s: 1000 tokens
                     joey_line("2026-01-01 10:00:08,500", 6, 800)])  # 1.5 s at 800: 1200 tokens
    rate, per_step = joey.joey_window_rate(log, warmup=2, steps=4)
    assert rate == pytest.approx(2200 / 3.5)
    assert per_step == pytest.approx(550)
    with pytest.raises(UserError, match="steps 2 and 8"):
        joey.joey_window_rate(log, warmup=2, steps=6)


def test_our_rate_over_the_window_from_timed_steps():
    marks = [(10.0, 100), (11.0, 300), (13.0, 200), (13.5, 100), (20.0, 900)]
    assert vs.window_rate(marks, warmup=2, steps=2) == pytest.approx(300 / 2.5)  # steps 3 and 4
    with pytest.raises(UserError, match="fewer than"):
        vs.window_rate(marks, warmup=2, steps=4)


def test_joeynmt_generation_time_is_the_test_sets():
    log = "x - Generation took 0.5000[sec].\ny - Generation took 12.2500[sec].\n"
    assert joey.joey_generation_seconds(log) == 12.25
    with pytest.raises(UserError, match="Generation took"):
        joey.joey_generation_seconds(log.splitlines()[0])


def test_vocab_file_lists_every_piece_in_id_order(tmp_path, char_vocab):
    path = joey.write_vocab_file(char_vocab.path, tmp_path / "vocab.txt")
    listed = path.read_text(encoding="utf-8").splitlines()
    assert listed == [char_vocab.sp.id_to_piece(i) for i in range(len(char_vocab))]


def test_our_rate_over_the_window_from_step_marks():
    marks = [(10.0, 999), (12.0, 1000), (13.5, 1200), (20.0, 5)]  # (end time, tokens) of each step
    assert vs.window_rate(marks, warmup=1, steps=2) == pytest.approx(2200 / 3.5)  # warm-up step left out
    with pytest.raises(UserError, match="fewer than --warmup"):
        vs.window_rate(marks, warmup=2, steps=3)


def test_our_drivers_time_training_steps_and_decoding(tmp_path, make_tiny_recipe, reverse_corpus):
    data = reverse_corpus(tmp_path / "data")
    for name in ("dev", "test"):
        for lang in ("src", "tgt"):
            (data / f"{name}.{lang}").write_text((data / f"valid.{lang}").read_text())
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(make_tiny_recipe(data)))
    model = tmp_path / "model"
    got = vs.ours_train(recipe, model, data, ["training.threads=1"], tmp_path / "logs" / "train.log", steps=4)
    assert len(got["marks"]) == 4 and got["threads"] == 1
    assert all(n > 0 for _, n in got["marks"])  # tokens; the times are measured, not asserted on
    decoded = vs.ours_decode(model, data, "src", tmp_path / "out.hyp", tmp_path / "logs" / "decode.log", 2, "cpu", None)
    assert decoded["lines"] == 8 and isinstance(decoded["seconds"], float)
    assert len((tmp_path / "out.hyp").read_text().splitlines()) == 8
    assert json.loads((tmp_path / "logs" / "decode.marks.json").read_text()) == decoded


@pytest.mark.parametrize("user_set", [False, True])
def test_joeynmt_gets_torch_cache_defaults_unless_the_user_set_them(user_set):
    """seq2seq.cli caps the matmul caches for our side; JoeyNMT's processes run without those caps,
    or with the user's own values."""
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")}
    if user_set:
        env["LRU_CACHE_CAPACITY"] = "7"
    code = ("import sys, os; sys.path.insert(0, 'tools'); import joeynmt_side as j; e = j.venv_env(); "
            "print(os.environ['LRU_CACHE_CAPACITY'], e.get('LRU_CACHE_CAPACITY'), "
            "e.get('ONEDNN_PRIMITIVE_CACHE_CAPACITY'))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.stdout.split() == (["7", "7", "None"] if user_set else ["16", "None", "None"])
