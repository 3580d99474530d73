"""Layer normalisation inside the recurrent cells (model.*.layer_norm, seq2seq/modules/cells.py):
each cell against its equations written out with F.layer_norm, batches, gradients, bf16, names and
initial values, what builds it, a model that overfits, the recipe's rule and old model directories."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from test_cells import generator, randomize
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.utils._python_dispatch import TorchDispatchMode

from seq2seq.batch import collate
from seq2seq.config import recipe_from_dict
from seq2seq.errors import UserError
from seq2seq.modules import LAYER_NORM_CELLS, RNN_CELLS
from seq2seq.modules.attention import build_attention
from seq2seq.modules.cells import LayerNormGRUCell, LayerNormLSTMCell
from seq2seq.modules.conditional import ConditionalDecoder
from seq2seq.modules.decoder import RecurrentDecoder
from seq2seq.modules.encoder import RecurrentEncoder
from seq2seq.modules.init import initialize
from seq2seq.modules.recurrence import Recurrence
from seq2seq.search import greedy_search, max_lengths

NAMES = ["gru", "lstm", "peephole_lstm", "wm_lstm"]
NORMS = {"ln_ih_weight", "ln_ih_bias", "ln_hh_weight", "ln_hh_bias"}  # every cell's; the LSTMs add ln_c_*


def ln_rnn(name: str, input_size: int, hidden_size: int, num_layers: int = 1, **kwargs) -> Recurrence:
    return LAYER_NORM_CELLS[name](input_size, hidden_size, num_layers, batch_first=True, **kwargs)


def randomize_base(rnn: nn.Module, seed: int) -> nn.Module:
    """randomize() of every parameter but the layer norms' (left at gain 1, bias 0)."""
    norms = {k: p.clone() for k, p in rnn.state_dict().items() if k.startswith("ln_")}
    randomize(rnn, seed).load_state_dict(norms, strict=False)
    return rnn


def reference_step(name: str, p: dict, x, h, c):
    """One step written out gate by gate: x (B, I), h and c (B, H) -> (h', c'); c is None for the GRU.
    Each gate block of W x + b_ih and of U h + b_hh normalised on its own, then its gain and bias."""
    gates = 3 if name == "gru" else 4

    def norm(t, side):
        g, b = p[f"ln_{side}_weight"].chunk(gates), p[f"ln_{side}_bias"].chunk(gates)
        return [F.layer_norm(block, block.shape[-1:]) * g[k] + b[k] for k, block in enumerate(t.chunk(gates, -1))]

    a = norm(x @ p["weight_ih"].T + p["bias_ih"], "ih")
    u = norm(h @ p["weight_hh"].T + p["bias_hh"], "hh")
    if name == "gru":
        r, z = torch.sigmoid(a[0] + u[0]), torch.sigmoid(a[1] + u[1])
        n = torch.tanh(a[2] + r * u[2])
        return (1 - z) * n + z * h, None
    pre_i, pre_f, pre_g, pre_o = (s + t for s, t in zip(a, u))
    if name == "peephole_lstm":
        p_i, p_f, p_o = p["peephole"].chunk(3)
        pre_i, pre_f = pre_i + p_i * c, pre_f + p_f * c
    if name == "wm_lstm":
        (v_i, v_f, v_o), (b_i, b_f, b_o) = p["weight_ch"].chunk(3), p["bias_ch"].chunk(3)
        pre_i, pre_f = pre_i + torch.tanh(c @ v_i.T + b_i), pre_f + torch.tanh(c @ v_f.T + b_f)
    c = torch.sigmoid(pre_f) * c + torch.sigmoid(pre_i) * torch.tanh(pre_g)
    if name == "peephole_lstm":
        pre_o = pre_o + p_o * c
    if name == "wm_lstm":
        pre_o = pre_o + torch.tanh(c @ v_o.T + b_o)
    return torch.sigmoid(pre_o) * torch.tanh(F.layer_norm(c, c.shape[-1:], p["ln_c_weight"], p["ln_c_bias"])), c


def initial_state(name: str, shape: tuple, g: torch.Generator, dtype=torch.float64):
    """What nn.GRU (h) or nn.LSTM ((h, c)) takes, random, of `shape` (L*D, B, H) each."""
    state = tuple(torch.randn(shape, generator=g, dtype=dtype) for _ in range(1 if name == "gru" else 2))
    return state if len(state) > 1 else state[0]


def as_tuple(state) -> tuple:
    return state if isinstance(state, tuple) else (state,)


def layer(rnn: nn.Module, suffix: str) -> dict:
    """One layer-direction's parameters by short name: suffix '_l0', '_l0_reverse', ..."""
    return {k.removesuffix(suffix): v for k, v in rnn.named_parameters() if k.endswith(suffix)}


# ---------------------------------------------------------------- the equations


@pytest.mark.parametrize("name", NAMES)
def test_one_step_from_the_initial_values_is_the_written_out_step_not_the_plain_cell(name):
    rnn = randomize_base(ln_rnn(name, 3, 4).double(), 1)
    p = layer(rnn, "_l0")
    assert all(torch.all(p[k] == (1 if k.endswith("weight") else 0)) for k in p if k.startswith("ln_"))
    g = generator(2)
    x = torch.randn(2, 1, 3, generator=g, dtype=torch.float64)
    hx = initial_state(name, (1, 2, 4), g)
    out, final = rnn(x, hx)
    h, c = (hx, None) if name == "gru" else hx
    want_h, want_c = reference_step(name, p, x[:, 0], h[0], None if c is None else c[0])
    torch.testing.assert_close(out[:, 0], want_h, rtol=0, atol=1e-12)
    if want_c is not None:
        torch.testing.assert_close(final[1][0], want_c, rtol=0, atol=1e-12)
    plain = RNN_CELLS[name](3, 4, 1, batch_first=True).double()  # the same weights, no normalisation
    plain.load_state_dict({k: v for k, v in rnn.state_dict().items() if not k.startswith("ln_")})
    assert (plain(x, hx)[0] - out).abs().max() > 0.05


@pytest.mark.parametrize("name", NAMES)
def test_each_direction_follows_the_equations_with_every_parameter_random(name):
    """Gains and biases placed as written; the LSTMs carry c unnormalised from step to step."""
    rnn = randomize(ln_rnn(name, 3, 4, bidirectional=True), 3).double()
    g = generator(4)
    x = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    hx = initial_state(name, (2, 2, 4), g)
    out, final = rnn(x, hx)
    h0, c0 = (hx, None) if name == "gru" else hx
    for d, suffix in enumerate(["_l0", "_l0_reverse"]):
        p, h, c = layer(rnn, suffix), h0[d], None if c0 is None else c0[d]
        for t in (range(5) if d == 0 else reversed(range(5))):
            h, c = reference_step(name, p, x[:, t], h, c)
            torch.testing.assert_close(out[:, t, 4 * d:4 * d + 4], h, rtol=0, atol=1e-12)
        if c is not None:
            torch.testing.assert_close(final[1][d], c, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- batches, gradients, bf16


@pytest.mark.parametrize("name", NAMES)
def test_packed_batch_equals_each_sentence_alone(name):
    """Unsorted lengths, a given initial state, two layers, both directions; garbage in the padding."""
    rnn = randomize(ln_rnn(name, 5, 4, 2, bidirectional=True), 5).eval()
    g = generator(6)
    x = torch.randn(4, 6, 5, generator=g)
    lengths = torch.tensor([3, 6, 1, 4])
    hx = initial_state(name, (4, 4, 4), g, torch.float32)
    out, final = rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False), hx)
    padded, _ = pad_packed_sequence(out, batch_first=True)
    for i, n in enumerate(lengths.tolist()):
        alone_hx = tuple(s[:, i:i + 1].contiguous() for s in as_tuple(hx))
        alone, alone_final = rnn(x[i:i + 1, :n], alone_hx if len(alone_hx) > 1 else alone_hx[0])
        torch.testing.assert_close(padded[i, :n], alone[0], atol=1e-6, rtol=0)
        for a, b in zip(as_tuple(final), as_tuple(alone_final)):
            torch.testing.assert_close(a[:, i], b[:, 0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_match_finite_differences(name):
    """float64 gradcheck of the input, the initial state and every parameter, the layer norms'
    included: both directions, packed sentences of different lengths."""
    rnn = randomize(ln_rnn(name, 2, 3, bidirectional=True), 7).double()
    names = [k for k, _ in rnn.named_parameters()]
    g = generator(8)
    x = torch.randn(2, 3, 2, generator=g, dtype=torch.float64)
    state = as_tuple(initial_state(name, (2, 2, 3), g))
    lengths = torch.tensor([1, 3])

    def fn(x, *rest):
        state, params = rest[:len(rest) - len(names)], rest[len(rest) - len(names):]
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, final = functional_call(rnn, dict(zip(names, params)), (packed, state if len(state) > 1 else state[0]))
        return (out.data, *as_tuple(final))

    inputs = [t.detach().clone().requires_grad_() for t in (x, *state, *rnn.parameters())]
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6)


class NormLog(TorchDispatchMode):
    """The dtypes of what reaches the layer-norm kernel, forward."""

    def __init__(self):
        super().__init__()
        self.dtypes, self.calls = set(), 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.__name__.split(".")[0] == "native_layer_norm":
            self.dtypes.add(args[0].dtype)
            self.calls += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_bf16_path_is_fp32_to_bf16_tolerance_with_the_norms_in_fp32(name):
    """Under CPU bf16 autocast the matmuls run in bf16, the normalisation, the state and every
    gradient in fp32: outputs bf16, within 3e-2 of the largest fp32 magnitude (test_recurrence.py's
    tolerance), yet not equal."""
    rnn = randomize(ln_rnn(name, 5, 4, 2, bidirectional=True), 9)
    g = generator(10)
    x = torch.randn(3, 6, 5, generator=g)
    weights = torch.randn(3, 6, 8, generator=g)

    def run():
        out, final = rnn(x)
        final = as_tuple(final)
        loss = (out.float() * weights).sum() + sum((s * s.sin()).sum() for s in final)
        return out, final, torch.autograd.grad(loss, list(rnn.parameters()))

    out_ref, final_ref, grads_ref = run()
    with torch.autocast("cpu", dtype=torch.bfloat16), NormLog() as log:
        out, final, grads = run()
    assert log.dtypes == {torch.float32} and log.calls >= 2 * 2 * (1 + 6)  # per layer-direction: input, steps
    assert out.dtype == torch.bfloat16 and all(s.dtype == torch.float32 for s in final)
    assert all(gr.dtype == torch.float32 for gr in grads)
    for a, b in [(out_ref, out), *zip(final_ref, final), *zip(grads_ref, grads)]:
        torch.testing.assert_close(b.float(), a, rtol=0, atol=3e-2 * a.abs().max().item())
    assert not torch.allclose(out.float(), out_ref, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- parameters and building


def test_parameter_names_are_torchs_plus_the_norms_and_start_at_gain_1_bias_0():
    gru, lstm = ln_rnn("gru", 5, 4, 2, bidirectional=True), ln_rnn("lstm", 5, 4, 2, bidirectional=True)
    suffixes = [f"_l{k}{s}" for k in range(2) for s in ("", "_reverse")]
    for ours, ref, extra in [(gru, nn.GRU(5, 4, 2, bidirectional=True), {}),
                             (lstm, nn.LSTM(5, 4, 2, bidirectional=True), {"ln_c_weight": (4,), "ln_c_bias": (4,)})]:
        rows = (len(ref.weight_hh_l0),)
        norms = {**dict.fromkeys(NORMS, rows), **extra}
        want = {**{k: v.shape for k, v in ref.state_dict().items()},
                **{f"{k}{s}": shape for k, shape in norms.items() for s in suffixes}}
        assert {k: v.shape for k, v in ours.state_dict().items()} == want
        missing = ours.load_state_dict(ref.state_dict(), strict=False).missing_keys  # a plain model's weights
        assert sorted(missing) == sorted(f"{k}{s}" for k in norms for s in suffixes)
    for scheme in ("torch", "xavier"):
        initialize(model := nn.Sequential(ln_rnn("lstm", 3, 4)), scheme, 0.1)
        for key, p in model[0].named_parameters():
            assert not key.startswith("ln_") or torch.all(p == (1 if "weight" in key else 0)), (scheme, key)


def test_modules_build_normalised_cells_only_when_asked():
    attention = build_attention("bahdanau", 6, 8, 0)
    assert type(RecurrentEncoder("gru", 5, 4, 1, True, 0.0).rnn) is RNN_CELLS["gru"]  # nn.GRU's subclass
    enc = RecurrentEncoder("gru", 5, 4, 2, True, 0.1, layer_norm=True)
    assert isinstance(enc.rnn.cell, LayerNormGRUCell) and enc.rnn.bidirectional and enc.rnn.dropout == 0.1
    dec = RecurrentDecoder("lstm", 5, 6, 1, 0.0, attention, 8, True, "bridge", layer_norm=True)
    assert isinstance(dec.rnn.cell, LayerNormLSTMCell)
    cond = ConditionalDecoder("gru", 5, 6, 0.0, attention, 8, True, "bridge", layer_norm=True)
    assert isinstance(cond.rnn1.cell, LayerNormGRUCell) and isinstance(cond.rnn2.cell, LayerNormGRUCell)


@pytest.mark.parametrize("task", ["language_model", "classification", "tagging"])
def test_each_task_room_builds_the_normalised_cell(task):
    from seq2seq.config import ClassificationConfig, TaggingConfig
    from seq2seq.tasks.classification.model import build_classifier
    from seq2seq.tasks.language_model.model import build_language_model
    from seq2seq.tasks.tagging.model import build_tagger
    side = "decoder" if task == "language_model" else "encoder"
    cfg = recipe_from_dict({"task": task, "model": {side: {"cell": "lstm", "hidden_size": 8, "layer_norm": True}}}).model
    if task == "language_model":
        rnns = [build_language_model(cfg, 12).rnn]
    elif task == "classification":
        rnns = [build_classifier(cfg, ClassificationConfig(), 12, 3).encoder.rnn]
    else:
        tagger = build_tagger(cfg, TaggingConfig(), 12, 10, 5)
        rnns = [tagger.encoder.rnn, tagger.char_encoder.encoder.rnn]
    assert all(isinstance(rnn.cell, LayerNormLSTMCell) for rnn in rnns)


# ---------------------------------------------------------------- in a model


def normalised_model(name: str, decoder: str) -> nn.Module:
    """A Seq2Seq whose encoder (two layers, both directions) and decoder have layer-normalised
    cells, its parts built here as the translation room's build_model builds them from a recipe."""
    from seq2seq.tasks.translation.model import Seq2Seq
    encoder = RecurrentEncoder(name, 16, 16, 2, True, 0.0, layer_norm=True)
    attention = build_attention("bahdanau", 32, 32, 0)
    if decoder == "conditional":
        dec = ConditionalDecoder(name, 16, 32, 0.0, attention, 32, True, "bridge", layer_norm=True)
    else:
        dec = RecurrentDecoder(name, 16, 32, 1, 0.0, attention, 32, True, "bridge", layer_norm=True)
    return Seq2Seq(nn.Embedding(12, 16, padding_idx=0), nn.Embedding(12, 16, padding_idx=0), encoder, dec,
                   nn.Linear(dec.output_size, 12), 0.0, 1.0, None, 0.0, 0.0)


@pytest.mark.parametrize("name,decoder", [("gru", "recurrent"), ("lstm", "conditional")])
def test_a_model_with_normalised_cells_overfits_a_batch_and_round_trips(name, decoder, overfit, tmp_path):
    """It learns the reversal of six sentences, greedy search reproduces them, and its weights
    file (the norms' gains and biases in it) loads strictly into a fresh model."""
    from seq2seq.checkpoint import load_weights, save_weights
    torch.manual_seed(0)
    src = [[4, 5, 6], [7, 8, 9, 10], [11, 4, 8, 6, 5], [9, 9, 4], [10, 6, 11, 7], [5, 8]]
    tgt = [s[::-1] for s in src]
    model = normalised_model(name, decoder)
    batch = collate(src, tgt)
    assert overfit(model, batch, steps=300, lr=0.02) < 0.05
    limit = max_lengths(batch.src_lengths, 1.5, 2)
    assert [h[0].tokens for h in greedy_search(model, batch.src, batch.src_lengths, limit)] == tgt
    save_weights(model, tmp_path / "w.safetensors")
    fresh = normalised_model(name, decoder).eval()
    load_weights(fresh, tmp_path / "w.safetensors")
    assert not torch.all(fresh.encoder.rnn.ln_hh_weight_l1_reverse == 1)  # trained, stored, loaded
    torch.testing.assert_close(fresh(batch)[0], model(batch)[0], atol=0, rtol=0)


# ---------------------------------------------------------------- the recipe


def test_the_recipe_rejects_layer_norm_with_cell_rnn_in_one_line():
    for side in ("encoder", "decoder"):
        with pytest.raises(UserError) as caught:
            recipe_from_dict({"model": {side: {"cell": "rnn", "layer_norm": True}}})
        message = str(caught.value)
        assert f"model.{side}.layer_norm" in message and f"model.{side}.cell" in message and "'rnn'" in message
        assert "\n" not in message
    assert recipe_from_dict({"model": {"encoder": {"cell": "wm_lstm", "layer_norm": True}}}).model.encoder.layer_norm
    notes = []  # a language model has no encoder: its encoder keys are said to be unused, nothing fails
    recipe_from_dict({"task": "language_model", "model": {"encoder": {"cell": "rnn", "layer_norm": True}}},
                     warn=notes.append)
    assert any(n.startswith("model.encoder.layer_norm: True is not used") for n in notes)


def test_a_model_directory_without_the_key_still_loads(tmp_path, tiny_recipe_dict):
    """A recipe.json written before layer_norm existed: the default (false), the nn.GRU of cell: gru."""
    from seq2seq import Translator
    from seq2seq.tasks import train
    recipe = tiny_recipe_dict | {"training": {**tiny_recipe_dict["training"], "max_steps": 2}}
    train(recipe_from_dict(recipe), tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "recipe.json").read_text())
    assert saved["model"]["encoder"]["layer_norm"] is False and saved["model"]["decoder"]["layer_norm"] is False
    for side in ("encoder", "decoder"):
        del saved["model"][side]["layer_norm"]
    (tmp_path / "m" / "recipe.json").write_text(json.dumps(saved))
    loaded = Translator.load(tmp_path / "m", "cpu")
    assert type(loaded.model.encoder.rnn) is RNN_CELLS["gru"] and len(loaded.translate(["abc"])) == 1


def test_build_model_builds_the_normalised_cells_from_the_recipe(make_model):
    model = make_model(encoder={"cell": "lstm", "layer_norm": True}, decoder={"cell": "gru", "layer_norm": True})
    assert isinstance(model.encoder.rnn.cell, LayerNormLSTMCell) and isinstance(model.decoder.rnn.cell, LayerNormGRUCell)
    cond = make_model(decoder={"type": "conditional", "cell": "gru", "layer_norm": True})
    assert isinstance(cond.decoder.rnn1.cell, LayerNormGRUCell) and isinstance(cond.decoder.rnn2.cell, LayerNormGRUCell)
