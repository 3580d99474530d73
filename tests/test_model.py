"""Seq2Seq through build_model: shapes for every cell/direction/depth, teacher forcing against the
step loop, weight sharing, scheduled sampling, overfitting one batch, a golden output."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seq2seq.batch import collate
from seq2seq.loss import sequence_nll
from seq2seq.search import greedy_search, max_lengths
from seq2seq.vocab import BOS, PAD

SRC = [[4, 5, 6, 7, 8], [9, 10], [11, 4, 5]]
TGT = [[5, 4], [10, 9, 8, 7], [6]]


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_forward_shapes(make_model, cell, bidirectional, num_layers):
    model = make_model(encoder={"cell": cell, "bidirectional": bidirectional, "num_layers": num_layers},
                       decoder={"cell": cell, "num_layers": num_layers})
    assert isinstance(model.encoder.rnn, {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell])
    assert model.encoder.rnn.bidirectional == bidirectional
    assert model.encoder.rnn.num_layers == num_layers == model.decoder.rnn.num_layers
    batch = collate(SRC, TGT)
    logits, weights = model(batch)
    assert logits.shape == (3, 5, 12)  # (B, T, V): T = longest target + EOS
    assert weights.shape == (3, 5, 5)  # (B, T, S)
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 5))
    assert torch.all(weights[1, :, 2:] == 0) and torch.all(weights[2, :, 3:] == 0)


@pytest.mark.parametrize("input_feeding", [True, False])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_teacher_forced_forward_equals_step_loop(make_model, input_feeding, cell):
    model = make_model(encoder={"cell": cell, "num_layers": 2},
                       decoder={"cell": cell, "num_layers": 2, "input_feeding": input_feeding})
    assert model.decoder.input_feeding == input_feeding
    batch = collate(SRC, TGT)
    logits, weights = model(batch)
    memory, state = model.encode(batch.src, batch.src_lengths)
    for t in range(batch.tgt_in.size(1)):
        log_probs, w, state = model.step(batch.tgt_in[:, t], memory, state)
        torch.testing.assert_close(log_probs, torch.log_softmax(logits[:, t], -1), atol=1e-5, rtol=0)
        torch.testing.assert_close(w, weights[:, t], atol=1e-5, rtol=0)


def test_input_feeding_changes_the_recurrence(make_model):
    batch = collate(SRC, TGT)
    with_feed = make_model(decoder={"input_feeding": True})
    assert with_feed.decoder.rnn.input_size == 8 + 12
    assert make_model(decoder={"input_feeding": False}).decoder.rnn.input_size == 8
    # the previous attentional vector reaches the next step: changing it changes the output
    memory, state = with_feed.encode(batch.src, batch.src_lengths)
    prev = torch.full((3,), BOS)
    a, _, _ = with_feed.step(prev, memory, state)
    state.att_vector = state.att_vector + 1.0
    b, _, _ = with_feed.step(prev, memory, state)
    assert not torch.allclose(a, b)


def test_scheduled_sampling_without_gold_feeds_own_argmax(make_model):
    model = make_model(decoder={"num_layers": 1})
    batch = collate(SRC, TGT)
    memory, state = model.encode(batch.src, batch.src_lengths)
    prev, expected = batch.tgt_in[:, 0], []
    for _ in range(batch.tgt_in.size(1)):
        log_probs, _, state = model.step(prev, memory, state)
        expected.append(log_probs)
        prev = log_probs.argmax(-1)
    model.teacher_forcing = 0.0
    model.train()  # no dropout configured, so only the sampling differs
    logits, _ = model(batch)
    torch.testing.assert_close(torch.log_softmax(logits, -1), torch.stack(expected, 1), atol=1e-5, rtol=0)
    model.eval()  # at evaluation the gold tokens are used whatever the ratio
    gold_logits, _ = model(batch)
    assert not torch.allclose(gold_logits, logits)


def test_tie_output_and_share_embeddings(make_model):
    tied = make_model(embedding_size=12, tie_output=True, share_embeddings=True)
    assert tied.generator.weight is tied.tgt_embed.weight
    assert tied.src_embed is tied.tgt_embed
    plain = make_model(embedding_size=12)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(plain) - n(tied) == 2 * 12 * 12


def test_source_word_dropout_zeroes_whole_pieces_and_scales_the_rest(make_model):
    """Training: each source piece's embedding is kept whole, times 1 / (1 - p), or zeroed whole
    (one draw per piece, not per unit); evaluation: untouched."""
    model = make_model(source_word_dropout=0.5)
    batch = collate(SRC * 8, TGT * 8)
    seen = []
    model.encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    clean = model.src_embed(batch.src)  # (B, S, E)
    model.train()
    torch.manual_seed(0)
    model.encode(batch.src, batch.src_lengths)
    model.eval()
    model.encode(batch.src, batch.src_lengths)
    dropped, untouched = seen
    assert torch.equal(untouched, clean)
    kept = (dropped != 0).all(-1)  # (B, S): whole pieces kept ...
    assert torch.equal(kept, (dropped != 0).any(-1))  # ... or whole pieces zeroed
    real = batch.src != PAD
    assert 0.3 < kept[real].float().mean().item() < 0.7
    torch.testing.assert_close(dropped[kept], 2.0 * clean[kept])


def test_output_dropout_is_on_the_output_layer_input_only(make_model):
    """model.decoder.output_dropout drops units of the attentional vector where the output layer
    reads it (scaled by 1 / (1 - p)); input feeding passes the undropped vector on."""
    model = make_model(decoder={"output_dropout": 0.5})
    batch = collate(SRC, TGT)
    read, states = [], []
    model.generator.register_forward_pre_hook(lambda module, args: read.append(args[0]))
    model.decoder.register_forward_hook(lambda module, args, out: states.append(out[0]))
    model.train()
    torch.manual_seed(0)
    model(batch)
    att, given = states[0], read[0]  # (B, T, H) each
    zeroed = given == 0
    assert 0.3 < zeroed.float().mean().item() < 0.7 and not (att == 0).any()
    torch.testing.assert_close(given[~zeroed], 2.0 * att[~zeroed])
    model.eval()
    read.clear()
    states.clear()
    model(batch)
    assert torch.equal(read[0], states[0])


@pytest.mark.parametrize("dropout_io", [True, False])
def test_encoder_dropout_io_false_drops_between_layers_only(make_model, dropout_io):
    """model.encoder.dropout is on the encoder's input and output as well as between layers;
    dropout_io false keeps it between layers only (JoeyNMT's), which one layer does not have."""
    model = make_model(encoder={"num_layers": 1, "dropout": 0.5, "dropout_io": dropout_io})
    batch = collate(SRC, TGT)
    clean, _ = model.encode(batch.src, batch.src_lengths)  # Memory: values are the encoder's states
    model.train()
    torch.manual_seed(0)
    dropped, _ = model.encode(batch.src, batch.src_lengths)
    assert torch.equal(dropped.values, clean.values) != dropout_io


def test_feed_dropout_drops_the_fed_back_attentional_vector_only(make_model):
    """model.decoder.feed_dropout 1.0: the next step reads a zero attentional vector in training,
    the vector itself in evaluation; the step's own output is not dropped."""
    model = make_model(decoder={"feed_dropout": 1.0})
    batch = collate(SRC, TGT)
    memory, state = model.encode(batch.src, batch.src_lengths)
    prev = torch.full((3,), BOS)
    state.att_vector = torch.rand_like(state.att_vector) + 0.5
    zeroed = type(state)(state.hidden, torch.zeros_like(state.att_vector))
    model.train()
    trained, _, after = model.step(prev, memory, state)
    zero_fed, _, _ = model.step(prev, memory, zeroed)
    torch.testing.assert_close(trained, zero_fed)
    assert (after.att_vector != 0).all()
    model.eval()
    evaluated, _, _ = model.step(prev, memory, state)
    assert not torch.allclose(evaluated, zero_fed)


def test_padding_embedding_starts_at_zero(make_model):
    model = make_model(deterministic=False)
    assert torch.all(model.src_embed.weight[PAD] == 0) and torch.all(model.tgt_embed.weight[PAD] == 0)


def test_overfit_one_batch_then_greedy_reproduces_targets(make_model, overfit):
    torch.manual_seed(0)
    src = [[4, 5, 6], [7, 8, 9, 10], [11, 4, 8, 6, 5], [9, 9, 4], [10, 6, 11, 7], [5, 8]]
    tgt = [s[::-1] for s in src]  # reversal
    model = make_model(deterministic=False, embedding_size=16,
                       encoder={"hidden_size": 16}, decoder={"hidden_size": 32})
    batch = collate(src, tgt)
    assert overfit(model, batch, steps=300, lr=0.02) < 0.05
    hyps = greedy_search(model, batch.src, batch.src_lengths, max_lengths(batch.src_lengths, 1.5, 2))
    assert [h[0].tokens for h in hyps] == tgt


def golden_model(make_model):
    return make_model(encoder={"cell": "lstm"}, decoder={"cell": "gru", "num_layers": 2})


def test_golden_greedy_output_of_deterministic_model(make_model):
    """sin(arange)-filled weights: values that survive torch upgrades (no RNG involved)."""
    model = golden_model(make_model)
    batch = collate([[4, 5, 6, 7], [8, 9]])
    hyps = greedy_search(model, batch.src, batch.src_lengths, max_lengths(batch.src_lengths, 1.0, 3))
    assert [h[0].tokens for h in hyps] == [[6, 6, 6, 6, 6, 4, 4], [4, 4, 4, 4, 4]]  # to max length
    # log-probabilities of the tokens and the EOS forced at the limit (equal to teacher forcing)
    assert [h[0].score for h in hyps] == pytest.approx([-12.40778, -11.69706], abs=1e-4)


def test_golden_teacher_forced_loss_of_deterministic_model(make_model):
    model = golden_model(make_model)
    batch = collate(SRC, TGT)
    logits, weights = model(batch)
    assert sequence_nll(logits, batch.tgt_out).item() == pytest.approx(36.67662, abs=1e-4)
    assert sequence_nll(logits, batch.tgt_out, 0.1).item() == pytest.approx(36.72805, abs=1e-4)
    assert weights[0, 0].tolist() == pytest.approx([0.256627, 0.219336, 0.184405, 0.167294, 0.172339],
                                                   abs=1e-5)


def test_xavier_init_zero_biases_small_embeddings_tied_output_kept(make_model):
    torch.manual_seed(0)
    model = make_model(deterministic=False, vocab_size=400, embedding_size=32, tie_output=True,
                       init="xavier", decoder={"hidden_size": 32, "init": "last"}, encoder={"hidden_size": 16})
    assert model.generator.weight is model.tgt_embed.weight
    emb = model.tgt_embed.weight[1:]
    assert 0.008 < emb.std().item() < 0.012  # N(0, 0.01): the generator did not re-initialise it
    biases = [p for n, p in model.named_parameters() if "bias" in n]
    assert biases and all(torch.all(b == 0) for b in biases)
    w = model.decoder.rnn.weight_hh_l0  # (3H, H): each gate block is its own Glorot matrix
    bound = (6 / (32 + 32)) ** 0.5
    assert w.abs().max().item() <= bound and w.abs().max().item() > 0.9 * bound


def test_torch_init_keeps_pytorch_defaults(make_model):
    torch.manual_seed(0)
    model = make_model(deterministic=False, vocab_size=400)  # the default
    assert model.src_embed.weight[1:].std().item() > 0.9  # nn.Embedding's N(0, 1)
    assert any(torch.any(p != 0) for n, p in model.named_parameters() if "bias" in n)


@pytest.mark.parametrize("section", [
    {"encoder": {"num_layers": 3}, "decoder": {"num_layers": 4}},
    {"encoder": {"num_layers": 5, "cell": "lstm"}, "decoder": {"num_layers": 1}},
    {"encoder": {"num_layers": 1, "bidirectional": False}, "decoder": {"num_layers": 3},
     "tie_output": True, "embedding_size": 12, "copy": True},
    {"encoder": {"num_layers": 3}, "decoder": {"type": "conditional", "cell": "lstm"}, "tie_output": True,
     "share_embeddings": True, "copy": True},
])
def test_parameter_count_without_building_equals_the_built_model(make_model, section):
    from seq2seq.config import recipe_from_dict
    from seq2seq.tasks.translation.model import count_parameters
    model = make_model(**section)
    base = {"embedding_size": 8, "encoder": {"hidden_size": 8}, "decoder": {"hidden_size": 12}}
    merged = {k: {**base.get(k, {}), **v} if isinstance(v, dict) else v for k, v in section.items()}
    cfg = recipe_from_dict({"model": {**base, **merged}}).model  # the section make_model builds
    assert count_parameters(cfg, 12, 12) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("section, keys", [
    ({"decoder": {"hidden_size": 2**20}}, ["model.decoder.hidden_size"]),  # 12 TB of GRU weights
    ({"encoder": {"num_layers": 10**12}}, ["model.encoder.num_layers"]),  # counted, not built
    ({"embedding_size": 2**62}, ["model.embedding_size"]),  # past what torch can count
])
def test_a_model_too_big_for_memory_is_a_user_error_before_any_allocation(section, keys):
    from seq2seq.config import recipe_from_dict
    from seq2seq.errors import UserError
    from seq2seq.tasks.translation.model import build_model
    cfg = recipe_from_dict({"model": section}).model
    with pytest.raises(UserError) as info:
        build_model(cfg, 8000, 8000)
    msg = str(info.value)
    assert msg.startswith("model: ") and "memory" in msg and "\n" not in msg
    for key in keys + ["vocab.size"]:
        assert key in msg, msg
