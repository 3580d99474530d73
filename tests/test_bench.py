"""tools/flops.py against torch's own FLOP counter, and tools/bench.py end to end on tiny data."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import bench  # noqa: E402
import measure  # noqa: E402
from flops import TRAINING_FACTOR, forward_flops, rnn_flops  # noqa: E402

from seq2seq import tasks  # noqa: E402
from seq2seq.batch import collate  # noqa: E402
from seq2seq.config import TrainingConfig, recipe_from_dict  # noqa: E402
from seq2seq.errors import UserError  # noqa: E402
import seq2seq.loss  # noqa: E402
import seq2seq.modules.additive as additive_module  # noqa: E402
import seq2seq.modules.decoder as decoder_module  # noqa: E402
import seq2seq.modules.dropout as dropout_module  # noqa: E402
import seq2seq.modules.gru_gates as gru_gates_module  # noqa: E402
import seq2seq.modules.gru_sequence as gru_sequence_module  # noqa: E402
import seq2seq.modules.recurrence as recurrence_module  # noqa: E402
import seq2seq.modules.tanh as tanh_module  # noqa: E402
from seq2seq.loss import sequence_nll  # noqa: E402
from seq2seq.modules import RNN_CELLS  # noqa: E402
from seq2seq.trainer import build_optimizer  # noqa: E402

MODELS = {
    "gru bahdanau input feeding": {"encoder": {"num_layers": 2}},
    "rnn dot fused": {"encoder": {"cell": "rnn"}, "attention": {"type": "dot"},
                      "decoder": {"cell": "rnn", "hidden_size": 16, "input_feeding": False}},
    "lstm general zero init": {"encoder": {"cell": "lstm", "num_layers": 2}, "attention": {"type": "general"},
                               "decoder": {"cell": "lstm", "num_layers": 2, "init": "zero"}},
    "concat tied": {"attention": {"type": "concat", "hidden_size": 6}, "embedding_size": 12,
                    "tie_output": True},
    "peephole lstm": {"encoder": {"cell": "peephole_lstm", "num_layers": 2},
                      "decoder": {"cell": "peephole_lstm"}},
    "working-memory lstm dot": {"encoder": {"cell": "wm_lstm"}, "attention": {"type": "dot"},
                                "decoder": {"cell": "wm_lstm", "hidden_size": 16, "num_layers": 2}},
    "coverage copy": {"attention": {"coverage": True}, "copy": True},
    "conditional lstm": {"decoder": {"type": "conditional", "cell": "lstm", "input_feeding": False}},
    "conditional gru input feeding": {"decoder": {"type": "conditional"}, "attention": {"type": "general"}},
}


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
@pytest.mark.parametrize("section", MODELS.values(), ids=MODELS.keys())
def test_flop_count_matches_torch_flop_counter(make_model, section):
    model = make_model(vocab_size=20, **section)
    B, S, T = 3, 7, 5  # equal lengths: no padding, so torch counts only real tokens too
    batch = collate([[5] * S] * B, [[6] * (T - 1)] * B)
    # oneDNN's fused LSTM is invisible to the counter; without it the LSTM runs as matmuls.
    with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as counter:
        logits, _ = model(batch)
        forward = counter.get_total_flops()
        logits.sum().backward()
    ours = forward_flops(model, [S] * B, [T] * B)
    assert sum(ours.values()) == pytest.approx(forward, rel=0.02)
    assert TRAINING_FACTOR * sum(ours.values()) == pytest.approx(counter.get_total_flops(), rel=0.1)


# By hand, input I = 3, hidden H = 4, two layers, both directions (the second layer reads 2H = 8):
# per step, layer and direction a cell of G gate blocks does 2 * G*H * (input + H) FLOPs, so
# 2 * 4G * (3 + 4) = 56 G in the first layer and 2 * 4G * (8 + 4) = 96 G in the second, twice
# each: 304 G. wm_lstm adds its weight_ch (3H, H) times a cell state: 2 * 12 * 4 = 96 per layer
# and direction, 384 in all; peephole_lstm's (3H,) weights are element-wise, nothing.
# One layer, one direction: 56 G, and wm_lstm's 96.
HAND_COUNTS = {"rnn": 304, "gru": 3 * 304, "lstm": 4 * 304, "peephole_lstm": 4 * 304, "wm_lstm": 4 * 304 + 384}
ONE_WAY = {"rnn": 56, "gru": 168, "lstm": 224, "peephole_lstm": 224, "wm_lstm": 224 + 96}


@pytest.mark.parametrize("cell", HAND_COUNTS)
def test_rnn_flops_of_each_cell_equal_a_hand_count(cell):
    rnn = RNN_CELLS[cell](3, 4, 2, batch_first=True, bidirectional=True)
    assert rnn_flops(rnn) == HAND_COUNTS[cell]
    assert rnn_flops(RNN_CELLS[cell](3, 4, 1, batch_first=True)) == ONE_WAY[cell]


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
@pytest.mark.parametrize("cell", HAND_COUNTS)
def test_rnn_flops_match_torch_flop_counter_over_packed_input(cell):
    rnn = RNN_CELLS[cell](3, 4, 2, batch_first=True, bidirectional=True)
    lengths = torch.tensor([5, 2, 4])
    x = pack_padded_sequence(torch.randn(3, 5, 3), lengths, batch_first=True, enforce_sorted=False)
    with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as counter:
        rnn(x)
    assert counter.get_total_flops() == pytest.approx(rnn_flops(rnn) * int(lengths.sum()), rel=1e-6)


def test_flop_count_sums_each_sentence_at_its_own_lengths(make_model):
    model = make_model()
    a, b = forward_flops(model, [3], [4]), forward_flops(model, [5], [2])
    both = forward_flops(model, [3, 5], [4, 2])
    assert both.keys() == a.keys()
    for key in both:
        assert both[key] == pytest.approx(a[key] + b[key])
    assert a["attention scores"] == pytest.approx(3 * 4 / (5 * 2) * b["attention scores"])


def test_padding_counts_pad_positions_per_real_token():
    corpus = SimpleNamespace(src_lengths=np.array([2, 4, 5]), tgt_lengths=np.array([3, 3, 1]))
    out = bench.padding([np.array([0, 1]), np.array([2])], corpus)
    assert out["padding_src"] == pytest.approx(2 / 11)  # (2*4 - 6) pad over 2+4+5 real
    assert out["padding_tgt"] == pytest.approx(0 / 10)  # targets + EOS: 4, 4 | 2
    assert out["batches_per_epoch"] == 2 and out["sentences_per_batch"] == 1.5


def test_bench_runs_two_variants_and_writes_json(tmp_path, data_dir, tiny_recipe_dict, capsys):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_dict), encoding="utf-8")
    out = tmp_path / "bench.json"
    code = bench.main([str(recipe), "--data-dir", str(data_dir), "--steps", "2", "--warmup", "1",
                       "--decode-sentences", "6", "--matmul-size", "128", "--json", str(out),
                       "--variant", "dot:model.attention.type=dot,model.decoder.hidden_size=16,training.precision=bf16",
                       "--decode-precision", "fp32,int8,fp32",
                       "training.batch_type=tokens", "training.batch_size=60", "training.precision=fp32"])
    assert code == 0
    table = capsys.readouterr().out
    assert "MFU %" in table and "dot" in table and "x)" in table
    assert "beam5 sent/s int8" in table and "matmul GFLOP/s bf16" in table
    assert re.search(r"^training precision +fp32 +bf16$", table, re.M)
    report = json.loads(out.read_text())
    tiny, dot = report["variants"]
    assert (tiny["name"], dot["name"]) == ("tiny", "dot")
    assert tiny["recipe"]["training"]["batch_type"] == dot["recipe"]["training"]["batch_type"] == "tokens"
    assert dot["recipe"]["model"]["attention"]["type"] == "dot"
    assert (tiny["precision"], dot["precision"]) == ("fp32", "bf16")
    for r in (tiny, dot):
        assert r["decode_precisions"] == ["fp32", "int8"]
        for key in ("train_tgt_tok_s", "train_src_tok_s", "train_steps_s", "mflop_per_tgt_token", "model_gflop_s",
                    "matmul_gflop_s", "matmul_gflop_s_fp32", "matmul_gflop_s_bf16", "mfu", "peak_memory_mib",
                    "sentences_per_batch", *[f"{search}_{k}_{p}" for search in ("greedy", "beam5")
                                             for k in ("sent_s", "tok_s") for p in ("fp32", "int8")]):
            assert r[key] > 0, key
        # MFU is over the matmul rate of the precision the steps ran in
        assert r["matmul_gflop_s"] == r[f"matmul_gflop_s_{r['precision']}"]
        assert r["mfu"] == pytest.approx(r["model_gflop_s"] / r["matmul_gflop_s"])
        assert r["padding_src"] >= 0 and r["padding_tgt"] >= 0
        assert r["train_steps"] == 2 and r["decode_sentences"] == 6 and r["compile"] == "off"
        assert r["mflop_per_tgt_token"] == pytest.approx(
            TRAINING_FACTOR * sum(r["forward_mflop_per_tgt_token"].values()))
    assert "attention query" in tiny["forward_mflop_per_tgt_token"]
    assert "attention query" not in dot["forward_mflop_per_tgt_token"]
    assert report["ratios"]["dot"]["mfu"] == pytest.approx(dot["mfu"] / tiny["mfu"])


def test_bench_of_a_trained_model_directory_decodes_with_its_weights(tmp_path, data_dir, tiny_recipe_dict):
    model_dir = tmp_path / "model"
    tasks.train(recipe_from_dict(tiny_recipe_dict), model_dir)  # 3 steps
    out = tmp_path / "bench.json"
    assert bench.main([str(model_dir), "--steps", "1", "--warmup", "0", "--decode-sentences", "4",
                       "--matmul-size", "64", "--decode-precision", "int8", "--json", str(out),
                       "--variant", "wide:model.decoder.hidden_size=24"]) == 0
    trained, wide = json.loads(out.read_text())["variants"]
    assert trained["trained_model"] == str(model_dir) and wide["trained_model"] is None  # other shapes
    assert trained["greedy_sent_s_int8"] > 0 and trained["decode_sentences"] == 4


def test_int8_copy_runs_its_own_decoder_step_not_the_compiled_fp32_one(make_model, capsys):
    model = make_model()
    step = model.decoder.step
    model.decoder.step = lambda *a: step(*a)  # what compile_decoder_step leaves: an instance attribute
    result: dict = {}
    quantized = measure.model_in(model, "int8", "x", result)
    assert "step" not in vars(quantized.decoder) and "step" in vars(model.decoder)
    assert "eager decoder step" in capsys.readouterr().err and result["int8_fp32_layers"] == []
    assert measure.model_in(model, "bf16", "x", {}) is model


@pytest.mark.parametrize("argv, message", [
    (["--variant", "no-colon"], "expected NAME:key.path=value"),
    (["model.encoder.hiden_size=4"], "did you mean 'hidden_size'"),
    (["--variant", "x:model.attention.type=dott"], "did you mean 'dot'"),
    (["--decode-precision", "fp32,int4"], "--decode-precision: 'int4' is not a precision"),
    (["--variant", "x:decoding.precision=fp16"], "decoding.precision.*'fp16'"),
    (["--device", "cuda"] if not torch.cuda.is_available() else ["--decode-precision", "int8", "--device", "cuda"],
     "cuda"),
])
def test_bad_entries_are_user_errors_before_any_work(tmp_path, tiny_recipe_dict, argv, message):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_dict), encoding="utf-8")
    with pytest.raises(UserError, match=message):
        bench.main([str(recipe), *argv])


# ---------------------------------------------------------------- the slow baselines (before/after)

import baselines  # noqa: E402

from seq2seq.batch import make_batches  # noqa: E402


@pytest.mark.parametrize("baseline", ["stepwise_decoder", "stepwise_output"])
@pytest.mark.parametrize("model", [{"decoder": {"input_feeding": False, "num_layers": 2}},
                                   {"decoder": {"input_feeding": True, "num_layers": 2}},
                                   {"decoder": {"input_feeding": False, "output_dropout": 0.5}, "copy": True},
                                   {"decoder": {"type": "conditional", "input_feeding": False}}],
                         ids=["fused", "feeding", "copy", "cgru"])
def test_slow_baselines_compute_what_the_fast_paths_compute(make_model, baseline, model):
    model = make_model(**model)
    batch = collate([[4, 5, 6, 7], [8, 9]], [[5, 6, 7], [9, 4, 10, 11, 5]])
    fast_logits, fast_weights = model(batch)
    baselines.apply_model_baseline(baseline, model)
    slow_logits, slow_weights = model(batch)
    torch.testing.assert_close(torch.log_softmax(slow_logits, -1), torch.log_softmax(fast_logits, -1),
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(slow_weights, fast_weights, rtol=1e-5, atol=1e-6)
    if model.output_dropout.p > 0:  # training: the slow way drops out the output layer's input too
        assert not torch.allclose(model.train()(batch)[0], slow_logits)


@pytest.mark.parametrize("baseline", ["torch_loss", "whole_loss"])
def test_loss_baselines_give_the_fused_loss_and_gradients(make_model, baseline):
    """baseline=torch_loss (F.cross_entropy) and whole_loss (all rows at once): the same summed
    label-smoothed loss and gradients."""
    model = make_model().eval()  # no dropout: the two passes see the same function
    batch = collate([[4, 5, 6, 7], [8, 9]], [[5, 6, 7], [9, 4, 10, 11, 5]])
    trainer = SimpleNamespace(batch_loss=lambda b: sequence_nll(model(b)[0], b.tgt_out, 0.1))
    results = []
    for slow in (False, True):
        if slow:
            baselines.apply_trainer_baseline(baseline, trainer)
        model.zero_grad()
        loss = trainer.batch_loss(batch)
        loss.backward()
        results.append((loss.item(), [p.grad.clone() for p in model.parameters()]))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-6)
    for fast, slow in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(slow, fast, rtol=1e-4, atol=1e-6)
    assert seq2seq.loss.smoothed_cross_entropy.__name__ == "smoothed_cross_entropy"  # swapped back


def test_unbucketed_batches_keep_the_budget_and_pad_more_than_bucketed_ones():
    rng = np.random.default_rng(0)
    src = rng.integers(1, 40, 500)
    tgt = np.maximum(1, src + rng.integers(-3, 4, 500))  # lengths of a sentence pair go together
    indices = np.arange(500)
    plan = baselines.unbucketed_batches(indices, src, tgt, 200, np.random.default_rng(1))
    assert sorted(np.concatenate(plan).tolist()) == indices.tolist()
    for b in plan:
        assert len(b) == 1 or len(b) * max(src[b].max(), tgt[b].max() + 1) <= 200
    corpus = SimpleNamespace(src_lengths=src, tgt_lengths=tgt)
    bucketed = make_batches(indices, src, tgt, 200, "tokens", np.random.default_rng(1))
    assert bench.padding(plan, corpus)["padding_src"] > 3 * bench.padding(bucketed, corpus)["padding_src"]


def test_bench_variant_with_a_baseline(tmp_path, data_dir, tiny_recipe_dict, capsys):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_dict), encoding="utf-8")
    out = tmp_path / "bench.json"
    assert bench.main([str(recipe), "--data-dir", str(data_dir), "--steps", "2", "--warmup", "0",
                       "--decode-sentences", "0", "--matmul-size", "64", "--json", str(out),
                       "--variant", "slow:baseline=unbucketed,training.batch_type=tokens,training.batch_size=60",
                       "--variant", "loop:baseline=stepwise_output"]) == 0
    assert "baseline (slow path)" in capsys.readouterr().out
    names = {v["name"]: v["baseline"] for v in json.loads(out.read_text())["variants"]}
    assert names == {"tiny": "-", "slow": "unbucketed", "loop": "stepwise_output"}
    with pytest.raises(UserError, match="baseline must be one of"):
        bench.main([str(recipe), "--variant", "x:baseline=fast"])
    with pytest.raises(UserError, match="unbucketed baseline needs training.batch_type=tokens"):
        bench.main([str(recipe), "--data-dir", str(data_dir), "--steps", "1", "--decode-sentences", "0",
                    "--matmul-size", "64", "--variant", "x:baseline=unbucketed"])


def test_bench_profile_lists_the_operators_of_the_training_steps(tmp_path, data_dir, tiny_recipe_dict, capsys):
    """--profile N: N more training steps under torch.profiler after the timed ones; the operators
    by self time, with shares that sum to at most 1 and the GRU decoder's matmuls among them, on
    stderr and in --json; a negative N is a user error."""
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_dict), encoding="utf-8")
    out = tmp_path / "bench.json"
    assert bench.main([str(recipe), "--data-dir", str(data_dir), "--steps", "2", "--warmup", "0",
                       "--decode-sentences", "0", "--matmul-size", "64", "--profile", "3",
                       "--json", str(out)]) == 0
    assert "3 training steps under torch.profiler, operators by self CPU time" in capsys.readouterr().err
    report = json.loads(out.read_text())
    rows = report["variants"][0]["profile"]
    assert report["settings"]["profile"] == 3
    assert 1 <= len(rows) <= 15
    shares = [r["share"] for r in rows]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1 + 1e-9
    assert all(r["ms_per_step"] >= 0 and r["calls_per_step"] > 0 for r in rows)
    assert any(r["op"] in ("aten::mm", "aten::addmm", "aten::bmm", "aten::linear") for r in rows)
    with pytest.raises(UserError, match="--profile >= 0"):
        bench.main([str(recipe), "--profile", "-1"])


def test_adam_is_fused_and_loop_adam_baseline_takes_the_same_step(make_model):
    """build_optimizer gives torch's fused Adam on the CPU; baseline=loop_adam swaps in the
    per-parameter loop, whose update is the same to rounding."""
    cfg = TrainingConfig(lr=0.01)
    fast_model, slow_model = make_model(), make_model()
    slow_model.load_state_dict(fast_model.state_dict())
    before = fast_model.generator.weight.detach().clone()
    trainer = SimpleNamespace(model=slow_model, cfg=cfg, metric=None,
                              optimizer=build_optimizer(slow_model.parameters(), cfg))
    baselines.apply_trainer_baseline("loop_adam", trainer)
    fast = build_optimizer(fast_model.parameters(), cfg)
    assert fast.defaults["fused"] and not trainer.optimizer.defaults["fused"]
    batch = collate([[4, 5, 6, 7], [8, 9]], [[5, 6, 7], [9, 4, 10, 11, 5]])
    for model, optimizer in ((fast_model, fast), (slow_model, trainer.optimizer)):
        for _ in range(3):
            optimizer.zero_grad()
            sequence_nll(model.eval()(batch)[0], batch.tgt_out, 0.1).backward()
            optimizer.step()
    for a, b in zip(fast_model.parameters(), slow_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.equal(fast_model.generator.weight, before)  # it moved


@pytest.mark.parametrize("baseline, slow", [("torch_dropout", (False, True, True, True, True, True, True)),
                                             ("step_weight_grad", (True, False, True, True, True, True, True)),
                                             ("torch_tanh", (True, True, False, True, True, True, True)),
                                             ("unfused_scores", (True, True, True, False, True, True, True)),
                                             ("step_values_grad", (True, True, True, True, False, True, True)),
                                             ("unfused_gru", (True, True, True, True, True, False, True)),
                                             ("stepwise_gru", (True, True, True, True, True, True, False))])
def test_swapping_baselines_swap_for_the_call_only(baseline, slow):
    """torch_dropout: torch's masks; step_weight_grad: W_hh a plain tensor in the loop; torch_tanh:
    torch.tanh; unfused_scores: the additive scores through autograd; step_values_grad: the values
    unwrapped in teacher-forced loops; unfused_gru: the GRU gates through autograd; stepwise_gru: the
    loop of GRU steps instead of one autograd step a layer and direction; each for the call only,
    then back."""
    deferred, for_steps = recurrence_module.DeferredWeight, decoder_module.Memory.for_steps

    def state():
        return (dropout_module.fast_masks, recurrence_module.DeferredWeight is deferred,
                tanh_module.by_sigmoid, additive_module.fused, decoder_module.Memory.for_steps is for_steps,
                gru_gates_module.fused, gru_sequence_module.fused)

    seen = []
    trainer = SimpleNamespace(batch_loss=lambda batch: seen.append(state()))
    baselines.apply_trainer_baseline(baseline, trainer)
    trainer.batch_loss(None)
    assert seen == [slow]
    assert state() == (True, True, True, True, True, True, True)
