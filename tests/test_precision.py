"""Precision (seq2seq/device.py): training.precision and decoding.precision, 'auto' for each kind of
device, the old training.autocast key (recipes and model directories), a bf16 training step on the
CPU (matmuls in bf16; loss, weights and optimizer state in fp32), the precision validation and the
Translator decode in, int8 decoding, and --precision on the commands."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import seq2seq.device as device
from seq2seq.batch import collate
from seq2seq.config import recipe_from_dict
from seq2seq.decoding import decode_ids
from seq2seq.device import (DECODING_AUTO, ROOM_DECODING_AUTO, autocast, quantize_int8, resolve_decoding_precision,
                            resolve_precision)
from seq2seq.errors import UserError
from seq2seq.recipe_io import load_recipe
from seq2seq.tasks.translation.translator import Translator
from seq2seq.trainer import Trainer

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
DYNAMIC = torch.ao.nn.quantized.dynamic  # the int8 modules of quantize_dynamic


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize("old, new", [("true", "auto"), ("false", "fp32")])
def test_the_old_autocast_key_is_read_as_precision_and_said_once(tmp_path, capsys, old, new):
    path = tmp_path / "old.yaml"
    path.write_text(f"training:\n  autocast: {old}\n", encoding="utf-8")
    assert load_recipe(path).training.precision == new
    assert load_recipe(path).training.precision == new
    err = capsys.readouterr().err
    assert err == f"note: {path}: training.autocast: {old} is read as training.precision: {new} (its new name)\n"
    (tmp_path / "new.yaml").write_text("{}\n", encoding="utf-8")
    assert load_recipe(tmp_path / "new.yaml", [f"training.autocast={old}"]).training.precision == new


def test_precision_wins_over_the_old_key_and_a_bad_old_value_is_an_error(capsys):
    recipe = recipe_from_dict({"training": {"autocast": False, "precision": "bf16"}}, "both.yaml")
    assert recipe.training.precision == "bf16"
    assert "training.autocast (the old name of training.precision) is not used" in capsys.readouterr().err
    with pytest.raises(UserError, match=r"bad.yaml: training.autocast: expected true or false, got 'yes'"):
        recipe_from_dict({"training": {"autocast": "yes"}}, "bad.yaml")
    with pytest.raises(UserError, match=r"decoding.precision: 'fp16' is not allowed"):
        recipe_from_dict({"decoding": {"precision": "fp16"}})
    with pytest.raises(UserError, match=r"training.precision: 'int8' is not allowed"):
        recipe_from_dict({"training": {"precision": "int8"}})  # decoding only


@pytest.mark.parametrize("fast", [False, True])
def test_auto_resolves_for_each_kind_of_device(monkeypatch, fast):
    monkeypatch.setattr(device, "cpu_has_fast_bf16", lambda: fast)
    assert resolve_precision("auto", CPU) == ("bf16" if fast else "fp32")
    assert resolve_precision("auto", CUDA) == "bf16"
    assert [resolve_precision(p, d) for p in ("fp32", "bf16") for d in (CPU, CUDA)] == ["fp32"] * 2 + ["bf16"] * 2
    assert resolve_decoding_precision("auto", CPU) == DECODING_AUTO["cpu_fast_bf16" if fast else "cpu"]
    assert resolve_decoding_precision("auto", CUDA) == DECODING_AUTO["cuda"] == "bf16"
    assert [resolve_decoding_precision(p, CPU) for p in ("fp32", "bf16", "int8")] == ["fp32", "bf16", "int8"]
    line = device.precision_line("auto", CPU)
    assert line.startswith("precision: bf16 autocast;" if fast else "precision: fp32 (")
    assert device.cpu_has_fast_bf16() == fast


def test_this_cpus_bf16_is_what_torch_reports():
    assert device.cpu_has_fast_bf16() == (torch.cpu._is_amx_tile_supported() or
                                          torch.cpu._is_avx512_bf16_supported())


def test_int8_is_for_the_cpu_and_unknown_names_are_errors():
    with pytest.raises(UserError, match=r"--precision: 'int8' \(dynamic quantisation\) runs on the CPU only"):
        resolve_decoding_precision("int8", CUDA, "--precision")
    with pytest.raises(UserError, match=r"precision: 'fp16' is not a precision"):
        resolve_decoding_precision("fp16", CPU, "precision")


def test_autocast_regions():
    """bf16 is torch.autocast on the device's type, CPU and CUDA alike; fp32 and int8 enter none;
    a value that is not a resolved precision (an old bool, 'auto') is refused, not read as one."""
    assert isinstance(autocast(CPU, "fp32"), contextlib.nullcontext)
    assert isinstance(autocast(CPU, "int8"), contextlib.nullcontext)
    region = autocast(CPU, "bf16")
    assert isinstance(region, torch.autocast) and region.fast_dtype == torch.bfloat16
    with region:
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert nn.Linear(4, 4)(torch.ones(2, 4)).dtype == torch.bfloat16
    with pytest.warns(UserWarning) if not torch.cuda.is_available() else contextlib.nullcontext():
        region = autocast(CUDA, "bf16")
    assert isinstance(region, torch.autocast) and region.fast_dtype == torch.bfloat16
    for bad in (True, False, "auto", "fp16"):
        with pytest.raises(ValueError, match="precision"):
            autocast(CPU, bad)


# ---------------------------------------------------------------- training in bf16


@pytest.fixture(scope="module")
def bf16_run(tmp_path_factory, make_tiny_recipe, reverse_corpus):
    """A tiny model trained with training.precision bf16 (decoding.precision fp32), watched: the
    dtypes of each step's logits, loss and weights, and the precision of every decoding region."""
    root = tmp_path_factory.mktemp("bf16")
    raw = make_tiny_recipe(reverse_corpus(root / "data"))
    raw["training"].update(precision="bf16", max_steps=2)
    raw["decoding"]["precision"] = "fp32"
    seen = {"logits": set(), "loss": set(), "weights": set(), "decoding": []}
    batch_loss = Trainer.batch_loss

    def watched(self, batch):
        hook = self.model.generator.register_forward_hook(lambda m, a, out: seen["logits"].add(out.dtype))
        try:
            loss = batch_loss(self, batch)
        finally:
            hook.remove()
        seen["loss"].add(loss.dtype)
        seen["weights"].update(p.dtype for p in self.model.parameters())
        return loss

    import seq2seq.decoding
    from seq2seq.tasks import train
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Trainer, "batch_loss", watched)
        mp.setattr(seq2seq.decoding, "autocast",
                   lambda dev, precision: seen["decoding"].append(precision) or autocast(dev, precision))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            trainer = train(recipe_from_dict(raw), root / "model")
    return root / "model", seen, trainer, out.getvalue()


def test_a_bf16_step_runs_matmuls_in_bf16_and_keeps_loss_weights_and_optimizer_state_fp32(bf16_run):
    model_dir, seen, trainer, _ = bf16_run
    assert seen["logits"] == {torch.bfloat16}  # the output layer ran in bf16
    assert seen["loss"] == {torch.float32} and seen["weights"] == {torch.float32}
    state = [v for s in trainer.optimizer.state.values() for v in s.values() if v.dim() > 0]
    assert state and {v.dtype for v in state} == {torch.float32}
    assert {t.dtype for t in load_file(str(model_dir / "best.safetensors")).values()} == {torch.float32}


@pytest.mark.parametrize("copy", [False, True])
def test_search_steps_under_bf16_give_fp32_log_probabilities(make_model, copy):
    """The output layer runs in bf16, the softmax over its logits (or the copy mixture) in fp32."""
    model = make_model(copy=copy)
    batch = collate([[4, 5, 6], [7, 8]])
    seen = []
    model.generator.register_forward_hook(lambda m, a, out: seen.append(out.dtype))
    with torch.no_grad(), autocast(CPU, "bf16"):
        memory, state = model.encode(batch.src, batch.src_lengths)
        log_probs, _, _ = model.step(torch.tensor([2, 2]), memory, state)
    assert seen == [torch.bfloat16] and log_probs.dtype == torch.float32
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2))


def test_the_training_precision_is_said_and_recorded(bf16_run):
    model_dir, _, trainer, out = bf16_run
    assert trainer.precision == "bf16"
    assert "precision: bf16 autocast; weights, optimizer state and loss fp32 (training.precision 'bf16'" in out
    assert json.loads((model_dir / "meta.json").read_text())["training_precision"] == "bf16"
    assert json.loads((model_dir / "recipe.json").read_text())["training"]["precision"] == "bf16"


def test_validation_decodes_in_the_training_precision_the_translator_in_the_decoding_one(bf16_run, monkeypatch):
    model_dir, seen, _, _ = bf16_run
    assert seen["decoding"] and set(seen["decoding"]) == {"bf16"}  # decoding.precision is fp32
    import seq2seq.decoding
    calls = []
    monkeypatch.setattr(seq2seq.decoding, "autocast", lambda dev, p: calls.append(p) or autocast(dev, p))
    auto = DECODING_AUTO[device.device_kind(CPU)]
    for asked, used in [(None, "fp32"), ("bf16", "bf16"), ("int8", "int8"), ("auto", auto)]:
        translator = Translator.load(model_dir, "cpu", precision=asked)
        assert translator.precision == used
        translator.translate(["abc", "de"])
        assert calls.pop() == used


def test_an_old_model_directory_with_autocast_still_loads(bf16_run, tmp_path, capsys):
    """A model directory written before training.precision: recipe.json says training.autocast and
    has no decoding.precision, meta.json no training_precision."""
    old = tmp_path / "old"
    shutil.copytree(bf16_run[0], old)
    recipe = json.loads((old / "recipe.json").read_text())
    del recipe["training"]["precision"], recipe["decoding"]["precision"]
    recipe["training"]["autocast"] = False
    (old / "recipe.json").write_text(json.dumps(recipe))
    meta = json.loads((old / "meta.json").read_text())
    del meta["training_precision"]
    (old / "meta.json").write_text(json.dumps(meta))
    translator = Translator.load(old, "cpu")
    assert translator.recipe.training.precision == "fp32" and translator.recipe.decoding.precision == "auto"
    assert len(translator.translate(["abc", "", "de"])) == 3
    Translator.load(old, "cpu")
    assert capsys.readouterr().err == (f"note: {old / 'recipe.json'}: training.autocast: false is read as "
                                       "training.precision: fp32 (its new name)\n")


# ---------------------------------------------------------------- int8 decoding


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_int8_decoding_gives_the_greedy_output_of_fp32(make_model, overfit, cell):
    torch.manual_seed(0)
    src = [[4, 5, 6], [7, 8, 9, 10], [11, 4, 8, 6, 5], [9, 9, 4], [10, 6, 11, 7], [5, 8]]
    tgt = [s[::-1] for s in src]  # reversal
    model = make_model(deterministic=False, embedding_size=16, encoder={"hidden_size": 16, "cell": cell},
                       decoder={"hidden_size": 32, "cell": cell})
    assert overfit(model, collate(src, tgt), steps=300, lr=0.02) < 0.05
    quantized, left = quantize_int8(model)
    assert left == []
    kinds = {type(m) for m in quantized.modules()}
    assert {DYNAMIC.Linear, DYNAMIC.GRU if cell == "gru" else DYNAMIC.LSTM} <= kinds
    assert not {nn.Linear, nn.GRU, nn.LSTM} & kinds
    assert isinstance(model.encoder.rnn, nn.GRU if cell == "gru" else nn.LSTM)  # the original is unchanged
    cfg = recipe_from_dict({"decoding": {"beam_size": 1, "max_length_ratio": 1.5, "max_length_offset": 2}}).decoding
    fp32 = decode_ids(model, src, cfg, CPU, precision="fp32")
    int8 = decode_ids(quantized, src, cfg, CPU, precision="int8")
    assert [h[0].tokens for h in int8] == [h[0].tokens for h in fp32] == tgt


def test_int8_quantises_subclasses_of_torch_rnns_and_names_what_it_cannot(make_model):
    class OwnGRU(nn.GRU):  # as seq2seq's own GRU is: nn.GRU's parameters, another forward
        pass

    model = make_model()
    rnn = model.encoder.rnn
    own = OwnGRU(rnn.input_size, rnn.hidden_size, batch_first=True, bidirectional=True)
    own.load_state_dict(rnn.state_dict())
    model.encoder.rnn = own
    quantized, left = quantize_int8(model)
    assert type(quantized.encoder.rnn) is DYNAMIC.GRU and left == []
    peephole = make_model(encoder={"cell": "peephole_lstm"})
    quantized, left = quantize_int8(peephole)
    assert left == ["encoder.rnn (Recurrence)"]
    assert type(quantized.decoder.rnn) is DYNAMIC.GRU


def test_the_task_rooms_decode_in_their_precision(char_vocab):
    from seq2seq.tasks.classification.classifier import Classifier
    from seq2seq.tasks.classification.model import build_classifier
    from seq2seq.tasks.language_model.generator import LanguageModel
    from seq2seq.tasks.language_model.model import build_language_model
    lm_recipe = recipe_from_dict({"task": "language_model", "model": {
        "embedding_size": 8, "decoder": {"cell": "lstm", "hidden_size": 8}}})
    model = build_language_model(lm_recipe.model, len(char_vocab))
    lm = LanguageModel(model, char_vocab, lm_recipe, CPU, precision="int8")
    assert lm.precision == "int8" and {DYNAMIC.LSTM, DYNAMIC.Linear} <= {type(m) for m in lm.model.modules()}
    assert len(lm.generate("ab", 5)) == 5
    assert LanguageModel(model, char_vocab, lm_recipe, CPU).precision == ROOM_DECODING_AUTO[device.device_kind(CPU)]
    c_recipe = recipe_from_dict({"task": "classification", "decoding": {"precision": "bf16"}, "model": {
        "embedding_size": 8, "encoder": {"hidden_size": 8}}})
    classifier = Classifier(build_classifier(c_recipe.model, c_recipe.classification, len(char_vocab), 3),
                            char_vocab, ["x", "y", "z"], c_recipe, CPU)
    assert classifier.precision == "bf16" and classifier.classify(["abc", ""])[1] == ""


# ---------------------------------------------------------------- commands


@pytest.mark.parametrize("command", ["translate", "evaluate", "summarize", "classify", "tag", "generate"])
def test_a_bad_precision_is_a_one_line_error(command, capsys, tmp_path):
    import importlib
    main = importlib.import_module(f"seq2seq.cli.{command}").main
    from seq2seq.cli.common import run
    argv = [str(tmp_path), "--precision", "fp16"] + (["--src", "x"] if command == "evaluate" else [])
    with pytest.raises(SystemExit) as exit_:
        run(main, argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: argument --precision: invalid choice: 'fp16'")


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_translate_takes_a_precision(bf16_run, tmp_path, capsys, precision):
    from seq2seq.cli.common import run
    from seq2seq.cli.translate import main
    src = tmp_path / "src.txt"
    src.write_text("abc\n\nde\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        run(main, [str(bf16_run[0]), "--input", str(src), "--precision", precision, "--beam-size", "1"])
    assert exit_.value.code == 0 and capsys.readouterr().out.count("\n") == 3


@pytest.mark.parametrize("name", ["ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"])
@pytest.mark.parametrize("given, seen", [(None, "16"), ("1024", "1024")])
def test_the_commands_cap_the_matmul_caches_unless_the_user_set_them(name, given, seen):
    """seq2seq.cli caps oneDNN's and ideep's caches at 16 entries (bf16's peak memory and speed),
    keeping a user's value."""
    env = {k: v for k, v in os.environ.items() if k != name}
    if given is not None:
        env[name] = given
    code = f"import os, seq2seq.cli.train; print(os.environ[{name!r}])"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == seen


@pytest.mark.parametrize("packed", [False, True])
def test_lstm_runs_in_fp32_under_cpu_bf16_autocast_where_onednn_has_no_bf16(monkeypatch, packed):
    """On an AVX2-only CPU oneDNN has no bf16 LSTM (torch raises); seq2seq's LSTM then leaves the
    autocast region: the same outputs as fp32 nn.LSTM, packed or not, with a bf16 input and state.
    (Without gradients: packed input with gradients runs on seq2seq's loop, test_packed_training.py.)"""
    import seq2seq.modules.lstm as lstm_module
    from torch.nn.utils.rnn import pack_padded_sequence
    monkeypatch.setattr(lstm_module, "onednn_has_bf16", lambda: False)
    torch.manual_seed(0)
    ours = lstm_module.LSTM(6, 5, num_layers=2, batch_first=True, bidirectional=True)
    plain = torch.nn.LSTM(6, 5, num_layers=2, batch_first=True, bidirectional=True)
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(3, 4, 6).bfloat16()
    hx = (torch.randn(4, 3, 5).bfloat16(), torch.randn(4, 3, 5).bfloat16())
    feed = pack_padded_sequence(x, torch.tensor([4, 2, 1]), batch_first=True) if packed else x
    with torch.no_grad():  # torch's inference kernel, as ours runs (with gradients torch may take another:
        # on an AVX2 Zen 3 the two differ in the last bit)
        want, (h, c) = plain(pack_padded_sequence(x.float(), torch.tensor([4, 2, 1]), batch_first=True)
                             if packed else x.float(), tuple(s.float() for s in hx))
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        got, (h2, c2) = ours(feed, hx)
    got, want = (got.data, want.data) if packed else (got, want)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close((h2, c2), (h, c), rtol=0, atol=0)
