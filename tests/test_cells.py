"""The peephole and working-memory LSTM cells and the Recurrence that runs them: nn.LSTM's results
with the extra weights at zero (outputs and gradients; layers, directions, packing), the papers'
equations written out one step at a time with the extra weights non-zero, sentences independent of
their batch, numerical gradients, and models with each cell in encoder and decoder that train."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence

from seq2seq.batch import collate
from seq2seq.checkpoint import load_weights, save_weights
from seq2seq.modules.attention import build_attention
from seq2seq.modules.cells import LSTMCell, PeepholeLSTMCell, WorkingMemoryLSTMCell
from seq2seq.modules.decoder import Memory, RecurrentDecoder
from seq2seq.modules.encoder import RecurrentEncoder
from seq2seq.modules.recurrence import Recurrence
from seq2seq.search import beam_search, greedy_search, max_lengths

CELLS = {"peephole_lstm": PeepholeLSTMCell(), "wm_lstm": WorkingMemoryLSTMCell()}
EXTRAS = {"peephole_lstm": {"peephole"}, "wm_lstm": {"weight_ch", "bias_ch"}}


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randomize(module: nn.Module, seed: int) -> nn.Module:
    """Every parameter, the cell's own included, uniform in +-0.5 (none left at zero)."""
    g = generator(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) - 0.5)
    return module


# ---------------------------------------------------------------- nn.LSTM with the extras at zero


@pytest.mark.parametrize("name", ["lstm", *CELLS])
@pytest.mark.parametrize("layout", ["batch_first", "time_first", "packed"])
def test_zero_extras_equal_nn_lstm_outputs_and_gradients(name, layout):
    """Two layers, both directions, a given initial state; 'lstm' runs nn.LSTM's own step through
    Recurrence (the loop alone against nn.LSTM)."""
    batch_first = layout != "time_first"
    ref = randomize(nn.LSTM(5, 4, 2, batch_first=batch_first, bidirectional=True), 0).double()
    ours = Recurrence(CELLS.get(name, LSTMCell()), 5, 4, 2, batch_first, bidirectional=True).double()
    with torch.no_grad():
        for key, p in ours.named_parameters():
            p.copy_(getattr(ref, key) if hasattr(ref, key) else torch.zeros_like(p))
    g = generator(1)
    x = torch.randn(3, 6, 5, generator=g, dtype=torch.float64)  # (B, T, I)
    lengths = torch.tensor([4, 6, 2])
    h0, c0 = torch.randn(2, 4, 3, 4, generator=g, dtype=torch.float64)  # (L*D, B, H) each
    weights = torch.randn(3, 6, 8, generator=g, dtype=torch.float64)  # gives each output a gradient

    def run(rnn):
        xs, h, c = (t.clone().requires_grad_() for t in (x, h0, c0))
        inp = xs if batch_first else xs.transpose(0, 1)
        if layout == "packed":
            inp = pack_padded_sequence(xs, lengths, batch_first=True, enforce_sorted=False)
        out, (h_n, c_n) = rnn(inp, (h, c))
        out = out.data if layout == "packed" else out
        w = weights if layout == "batch_first" else weights.transpose(0, 1)
        w = pack_padded_sequence(weights, lengths, batch_first=True, enforce_sorted=False).data \
            if layout == "packed" else w
        loss = (out * w).sum() + (h_n * h_n.sin()).sum() + (c_n * c_n.cos()).sum()
        grads = torch.autograd.grad(loss, [xs, h, c, *rnn.parameters()], allow_unused=True)
        return out, h_n, c_n, grads

    for a, b in zip(run(ref)[:3], run(ours)[:3]):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-12)
    ref_grads, our_grads = run(ref)[3], run(ours)[3]
    named = dict(zip(["x", "h0", "c0", *dict(ours.named_parameters())], our_grads))
    for key, grad in zip(["x", "h0", "c0", *dict(ref.named_parameters())], ref_grads):
        torch.testing.assert_close(named.pop(key), grad, rtol=0, atol=1e-12)
    for key, grad in named.items():  # the extras are in the graph: they get a gradient
        assert key.rsplit("_l", 1)[0] in EXTRAS[name] and grad.abs().sum() > 0, key


def test_parameter_names_and_shapes_are_nn_lstms_plus_the_cells_own():
    ref = {k: v.shape for k, v in nn.LSTM(5, 4, 3, bidirectional=True).state_dict().items()}
    peep = {k: v.shape for k, v in Recurrence(PeepholeLSTMCell(), 5, 4, 3, bidirectional=True).state_dict().items()}
    wm = {k: v.shape for k, v in Recurrence(WorkingMemoryLSTMCell(), 5, 4, 3, bidirectional=True).state_dict().items()}
    suffixes = [f"_l{k}{s}" for k in range(3) for s in ("", "_reverse")]
    assert peep == {**ref, **{f"peephole{s}": (12,) for s in suffixes}}
    assert wm == {**ref, **{f"weight_ch{s}": (12, 4) for s in suffixes},
                  **{f"bias_ch{s}": (12,) for s in suffixes}}


# ---------------------------------------------------------------- the papers' equations


def paper_step(name: str, p: dict, x, h, c):
    """One step exactly as written in the papers, gate by gate. x (B, I), h and c (B, H)."""
    pre = x @ p["weight_ih"].T + h @ p["weight_hh"].T + p["bias_ih"] + p["bias_hh"]
    a_i, a_f, a_g, a_o = pre.chunk(4, -1)
    if name == "peephole_lstm":  # Gers & Schmidhuber 2000
        p_i, p_f, p_o = p["peephole"].chunk(3)
        i, f = torch.sigmoid(a_i + p_i * c), torch.sigmoid(a_f + p_f * c)
        c = f * c + i * torch.tanh(a_g)
        o = torch.sigmoid(a_o + p_o * c)
    else:  # Landi et al. 2021
        (v_i, v_f, v_o), (b_i, b_f, b_o) = p["weight_ch"].chunk(3), p["bias_ch"].chunk(3)
        i = torch.sigmoid(a_i + torch.tanh(c @ v_i.T + b_i))
        f = torch.sigmoid(a_f + torch.tanh(c @ v_f.T + b_f))
        c = f * c + i * torch.tanh(a_g)
        o = torch.sigmoid(a_o + torch.tanh(c @ v_o.T + b_o))
    return o * torch.tanh(c), c


@pytest.mark.parametrize("name", CELLS)
def test_each_direction_follows_the_papers_equations(name):
    rnn = randomize(Recurrence(CELLS[name], 3, 4, 1, batch_first=True, bidirectional=True), 2).double()
    g = generator(3)
    x = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    h0, c0 = torch.randn(2, 2, 2, 4, generator=g, dtype=torch.float64)
    out, (h_n, c_n) = rnn(x, (h0, c0))
    for d, suffix in enumerate(["", "_reverse"]):
        p = {k.removesuffix(f"_l0{suffix}"): v for k, v in rnn.named_parameters() if k.endswith(f"_l0{suffix}")}
        h, c = h0[d], c0[d]
        order = range(5) if d == 0 else reversed(range(5))
        for t in order:
            h, c = paper_step(name, p, x[:, t], h, c)
            torch.testing.assert_close(out[:, t, 4 * d:4 * d + 4], h, rtol=0, atol=1e-12)
        torch.testing.assert_close(h_n[d], h, rtol=0, atol=1e-12)
        torch.testing.assert_close(c_n[d], c, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- batches, packing, gradients


@pytest.mark.parametrize("name", CELLS)
def test_packed_batch_equals_each_sentence_alone(name):
    """Unsorted lengths and a given initial state, so both permutations of packing are exercised;
    garbage in the padding."""
    rnn = randomize(Recurrence(CELLS[name], 5, 4, 2, batch_first=True, bidirectional=True), 4).eval()
    g = generator(5)
    x = torch.randn(4, 6, 5, generator=g)
    lengths = torch.tensor([3, 6, 1, 4])
    h0, c0 = torch.randn(2, 4, 4, 4, generator=g)
    out, (h_n, c_n) = rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False), (h0, c0))
    padded, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
    for i, n in enumerate(lengths.tolist()):
        alone, (h, c) = rnn(x[i:i + 1, :n], (h0[:, i:i + 1].contiguous(), c0[:, i:i + 1].contiguous()))
        torch.testing.assert_close(padded[i, :n], alone[0], atol=1e-6, rtol=0)
        torch.testing.assert_close(h_n[:, i], h[:, 0], atol=1e-6, rtol=0)
        torch.testing.assert_close(c_n[:, i], c[:, 0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", CELLS)
def test_encoder_states_do_not_depend_on_the_batch(name, fill_weights):
    enc = fill_weights(RecurrentEncoder(name, 5, 7, 2, True, dropout=0.3)).eval()
    lengths = torch.tensor([6, 3, 1, 4])
    embedded = torch.randn(4, 6, 5, generator=generator(6))
    outputs, final = enc(embedded, lengths)
    for i, n in enumerate(lengths.tolist()):
        alone_out, alone_final = enc(embedded[i:i + 1, :n], torch.tensor([n]))
        torch.testing.assert_close(outputs[i, :n], alone_out[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(final[i], alone_final[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", CELLS)
def test_gradients_match_finite_differences(name):
    """float64 gradcheck of everything: input, initial state and every parameter; two layers,
    both directions, packed sentences of different lengths."""
    rnn = randomize(Recurrence(CELLS[name], 2, 2, 2, batch_first=True, bidirectional=True), 7).double()
    names = [k for k, _ in rnn.named_parameters()]
    g = generator(8)
    x = torch.randn(2, 3, 2, generator=g, dtype=torch.float64)
    h0, c0 = torch.randn(2, 4, 2, 2, generator=g, dtype=torch.float64)
    lengths = torch.tensor([1, 3])

    def fn(x, h0, c0, *params):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, (h, c) = functional_call(rnn, dict(zip(names, params)), (packed, (h0, c0)))
        return out.data, h, c

    inputs = [t.detach().clone().requires_grad_() for t in (x, h0, c0, *rnn.parameters())]
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6)


# ---------------------------------------------------------------- layer options


def test_dropout_between_layers_only_in_training_as_nn_lstm():
    """p = 1 makes dropout deterministic: the second layer sees zeros, and its outputs are not
    dropped; nn.LSTM does the same."""
    ref = randomize(nn.LSTM(3, 8, 2, batch_first=True, dropout=1.0), 9)
    rnn = Recurrence(PeepholeLSTMCell(), 3, 8, 2, batch_first=True, dropout=1.0)
    with torch.no_grad():
        for key, p in rnn.named_parameters():
            p.copy_(getattr(ref, key) if hasattr(ref, key) else torch.zeros_like(p))
    x = torch.randn(2, 4, 3, generator=generator(10))
    out = rnn.train()(x)[0]
    torch.testing.assert_close(out, ref.train()(x)[0], rtol=0, atol=1e-6)
    assert out.abs().min() > 0  # the last layer's outputs are not dropped
    torch.testing.assert_close(rnn.eval()(x)[0], ref.eval()(x)[0], rtol=0, atol=1e-6)
    assert not torch.allclose(rnn(x)[0], out)
    with pytest.warns(UserWarning, match="one layer"):
        Recurrence(PeepholeLSTMCell(), 3, 8, 1, dropout=0.5)
    with pytest.raises(ValueError, match="shape"):
        rnn(x, (torch.zeros(1, 2, 8), torch.zeros(1, 2, 8)))  # two layers need (2, B, H)


def test_xavier_init_treats_each_gate_block_as_a_matrix(make_model):
    model = make_model(deterministic=False, init="xavier", encoder={"cell": "wm_lstm"},
                       decoder={"cell": "peephole_lstm"})
    enc, dec = model.encoder.rnn, model.decoder.rnn
    for block in enc.weight_ch_l0_reverse.split(8, 0):  # (H, H): Glorot bound sqrt(6 / (H + H))
        assert block.abs().max() <= math.sqrt(6 / 16) and block.std() > 0.2
    for block in dec.weight_ih_l0.split(12, 0):  # (H, E + H) with input feeding
        assert block.abs().max() <= math.sqrt(6 / (12 + 20))
    assert torch.all(dec.peephole_l0 == 0) and torch.all(enc.bias_ch_l0 == 0) and torch.all(enc.bias_hh_l0 == 0)


# ---------------------------------------------------------------- in the model


@pytest.mark.parametrize("name", CELLS)
def test_fused_decoder_equals_stepwise(name, fill_weights):
    attention = build_attention("general", 6, 6, 0)
    dec = fill_weights(RecurrentDecoder(name, 4, 6, 2, 0.0, attention, 6, False, "bridge")).eval()
    g = generator(11)
    values, embedded = torch.randn(2, 5, 6, generator=g), torch.randn(2, 4, 4, generator=g)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    memory = Memory(values, attention.prepare_keys(values), mask)
    state = dec.init_state(torch.randn(2, 6, generator=g))
    assert isinstance(state.hidden, tuple) and torch.all(state.hidden[1] == 0)
    fused = dec(embedded, memory, state)
    stepwise = dec.forward_stepwise(embedded, memory, state)
    for a, b in zip(fused[:2], stepwise[:2]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    for a, b in zip(fused[2].hidden, stepwise[2].hidden):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", CELLS)
def test_model_with_the_cell_overfits_a_batch_and_round_trips(name, make_model, overfit, tmp_path):
    """Encoder (two layers, both directions, dropout) and decoder (input feeding, attention) with
    the cell learn the reversal of six sentences; greedy and beam search then reproduce them, and
    the weights file loads into a fresh model."""
    torch.manual_seed(0)
    src = [[4, 5, 6], [7, 8, 9, 10], [11, 4, 8, 6, 5], [9, 9, 4], [10, 6, 11, 7], [5, 8]]
    tgt = [s[::-1] for s in src]
    section = {"embedding_size": 16, "encoder": {"cell": name, "hidden_size": 16, "num_layers": 2,
                                                  "dropout": 0.1},
               "decoder": {"cell": name, "hidden_size": 32}}
    model = make_model(deterministic=False, **section)
    batch = collate(src, tgt)
    # trained well past the fit of one greedy pass: beam search would prefer a shorter output to a
    # last token the model is not yet sure of
    assert overfit(model, batch, steps=400, lr=0.02, stop=0.002) < 0.05
    limit = max_lengths(batch.src_lengths, 1.5, 2)
    assert [h[0].tokens for h in greedy_search(model, batch.src, batch.src_lengths, limit)] == tgt
    assert [h[0].tokens for h in beam_search(model, batch.src, batch.src_lengths, limit, beam_size=3)] == tgt
    save_weights(model, tmp_path / "w.safetensors")
    fresh = make_model(deterministic=False, **section)
    load_weights(fresh, tmp_path / "w.safetensors")
    torch.testing.assert_close(fresh(batch)[0], model(batch)[0], atol=0, rtol=0)
