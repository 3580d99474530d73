"""Encoder (packing), attention mechanisms (masking, formulas), decoder state plumbing."""

from __future__ import annotations

import math

import pytest
import torch

from seq2seq.modules.attention import (BahdanauAttention, LuongConcatAttention, LuongDotAttention,
                                       LuongGeneralAttention, build_attention)
from seq2seq.modules.decoder import DecoderState, Memory, RecurrentDecoder
from seq2seq.modules.encoder import RecurrentEncoder

ATTENTIONS = ["bahdanau", "dot", "general", "concat"]


# ---------------------------------------------------------------- encoder


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_packed_batch_equals_each_sentence_alone(cell, bidirectional, num_layers, fill_weights):
    torch.manual_seed(0)
    enc = fill_weights(RecurrentEncoder(cell, 5, 7, num_layers, bidirectional, dropout=0.3)).eval()
    lengths = torch.tensor([6, 3, 1, 4])
    embedded = torch.randn(4, 6, 5)  # padding positions hold garbage on purpose
    outputs, final = enc(embedded, lengths)
    d = 2 if bidirectional else 1
    assert outputs.shape == (4, 6, 7 * d) and final.shape == (4, 7 * d)
    for i, n in enumerate(lengths.tolist()):
        alone_out, alone_final = enc(embedded[i:i + 1, :n], torch.tensor([n]))
        torch.testing.assert_close(outputs[i, :n], alone_out[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(final[i], alone_final[0], atol=1e-5, rtol=0)
        assert torch.all(outputs[i, n:] == 0)


def test_final_state_is_last_forward_and_first_backward_output(fill_weights):
    enc = fill_weights(RecurrentEncoder("gru", 4, 3, 2, True, 0.0)).eval()
    embedded = torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([5, 2])
    outputs, final = enc(embedded, lengths)
    for i, n in enumerate(lengths.tolist()):
        # forward direction ends at the last real token, backward at the first
        torch.testing.assert_close(final[i, :3], outputs[i, n - 1, :3])
        torch.testing.assert_close(final[i, 3:], outputs[i, 0, 3:])


# ---------------------------------------------------------------- attention


def attention_inputs():
    g = torch.Generator().manual_seed(2)
    query = torch.randn(3, 4, 6, generator=g)  # (B, T, Hq)
    values = torch.randn(3, 5, 6, generator=g)  # (B, S, Hv)
    mask = torch.arange(5).unsqueeze(0) < torch.tensor([[5], [2], [3]])  # (B, S)
    return query, values, mask


@pytest.mark.parametrize("kind", ATTENTIONS)
def test_attention_weights_sum_to_one_and_ignore_padding(kind, fill_weights):
    att = fill_weights(build_attention(kind, 6, 6, 5))
    query, values, mask = attention_inputs()
    context, weights = att(query, att.prepare_keys(values), values, mask)
    assert weights.shape == (3, 4, 5) and context.shape == (3, 4, 6)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4))
    assert torch.all(weights.masked_select(~mask.unsqueeze(1).expand(-1, 4, -1)) == 0)
    assert torch.all(weights.masked_select(mask.unsqueeze(1).expand(-1, 4, -1)) > 0)
    torch.testing.assert_close(context, weights @ values)

    # what sits in the padding cannot change the result
    noisy = values.masked_fill(~mask.unsqueeze(-1), 1e3)
    context2, weights2 = att(query, att.prepare_keys(noisy), noisy, mask)
    torch.testing.assert_close(weights2, weights)
    torch.testing.assert_close(context2, context)


def test_dot_attention_by_hand():
    query = torch.tensor([[[1.0, 0.0]]])  # (1, 1, 2)
    values = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])  # (1, 3, 2), last is padding
    mask = torch.tensor([[True, True, False]])
    context, weights = LuongDotAttention()(query, values, values, mask)
    e = math.e
    expected = torch.tensor([[[e / (e + 1), 1 / (e + 1), 0.0]]])
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(context, torch.tensor([[[e / (e + 1), 1 / (e + 1)]]]))


def test_general_attention_uses_its_matrix():
    att = LuongGeneralAttention(2, 3)
    with torch.no_grad():
        att.key_layer.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]]))
    query = torch.tensor([[[1.0, 1.0]]])
    values = torch.tensor([[[1.0, 9.0, 0.0], [0.0, 9.0, 1.0]]])
    scores = att.score(query, att.prepare_keys(values))
    torch.testing.assert_close(scores, torch.tensor([[[1.0, 2.0]]]))


@pytest.mark.parametrize("cls", [BahdanauAttention, LuongConcatAttention])
def test_additive_score_formula(cls, fill_weights):
    att = fill_weights(cls(6, 4, 5))
    g = torch.Generator().manual_seed(3)
    query, values = torch.randn(2, 3, 6, generator=g), torch.randn(2, 7, 4, generator=g)
    W, U, v = att.query_layer.weight, att.key_layer.weight, att.energy_layer.weight[0]
    expected = torch.einsum("a,btsa->bts", v, torch.tanh(
        (query @ W.T).unsqueeze(2) + (values @ U.T).unsqueeze(1)))
    torch.testing.assert_close(att.score(query, att.prepare_keys(values)), expected)


def test_build_attention_checks_sizes():
    with pytest.raises(ValueError, match="general"):
        build_attention("dot", 6, 8, 0)
    assert isinstance(build_attention("general", 6, 8, 0), LuongGeneralAttention)
    assert build_attention("bahdanau", 6, 8, 0).energy_layer.in_features == 6  # 0: query size
    assert build_attention("concat", 6, 8, 3).energy_layer.in_features == 3
    with pytest.raises(ValueError):
        build_attention("luong", 6, 6, 0)


# ---------------------------------------------------------------- decoder


def make_decoder(cell="gru", init="bridge", num_layers=2, hidden=6, encoder_size=6):
    attention = build_attention("general", hidden, encoder_size, 0)
    return RecurrentDecoder(cell, 4, hidden, num_layers, 0.0, attention, encoder_size, True, init)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("init", ["bridge", "last", "zero"])
def test_init_state(cell, init, fill_weights):
    dec = fill_weights(make_decoder(cell, init))
    final = torch.randn(3, 6, generator=torch.Generator().manual_seed(4))
    state = dec.init_state(final)
    h = state.hidden[0] if cell == "lstm" else state.hidden
    assert h.shape == (2, 3, 6)
    assert (dec.bridge is not None) == (init == "bridge")
    if init == "bridge":
        expected = torch.tanh(dec.bridge(final))
    else:
        expected = final if init == "last" else torch.zeros(3, 6)
    for layer in range(2):
        torch.testing.assert_close(h[layer], expected)
    if cell == "lstm":
        assert torch.all(state.hidden[1] == 0)
    assert torch.all(state.att_vector == 0) and state.att_vector.shape == (3, 6)


def test_state_and_memory_select_rows():
    h, c = torch.arange(24.0).view(2, 3, 4), -torch.arange(24.0).view(2, 3, 4)
    state = DecoderState((h, c), torch.arange(6.0).view(3, 2))
    index = torch.tensor([2, 0, 0])
    picked = state.select(index)
    torch.testing.assert_close(picked.hidden[0], h[:, [2, 0, 0]])
    torch.testing.assert_close(picked.hidden[1], c[:, [2, 0, 0]])
    torch.testing.assert_close(picked.att_vector, state.att_vector[[2, 0, 0]])
    gru = DecoderState(h, torch.zeros(3, 2)).select(torch.tensor([1]))
    torch.testing.assert_close(gru.hidden, h[:, [1]])

    mem = Memory(torch.arange(12.0).view(3, 2, 2), torch.arange(6.0).view(3, 2, 1),
                 torch.tensor([[True, True], [True, False], [False, False]]))
    m = mem.select(torch.tensor([1, 1]))
    assert m.mask.tolist() == [[True, False], [True, False]]
    torch.testing.assert_close(m.values, mem.values[[1, 1]])
    torch.testing.assert_close(m.keys, mem.keys[[1, 1]])


def test_scaled_scores_are_divided_by_the_root_of_the_query_size():
    query = torch.tensor([[[2.0, 0.0, 0.0, 0.0]]])  # (1, 1, 4): sqrt(4) = 2
    keys = torch.tensor([[[1.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0]]])
    torch.testing.assert_close(LuongDotAttention(scaled=True, query_size=4).score(query, keys),
                               torch.tensor([[[1.0, 3.0]]]))
    general = build_attention("general", 4, 4, 0, scaled=True)
    with torch.no_grad():
        general.key_layer.weight.copy_(torch.eye(4))
    torch.testing.assert_close(general.score(query, general.prepare_keys(keys)), torch.tensor([[[1.0, 3.0]]]))
    with pytest.raises(ValueError, match="scaled applies to 'dot' and 'general'"):
        build_attention("bahdanau", 4, 4, 0, scaled=True)
