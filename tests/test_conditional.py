"""The conditional decoder (model.decoder.type: conditional, Nematus's cGRU / cLSTM): one step
against the equations written out with nn.GRUCell / nn.LSTMCell, the step loop against the
teacher-forced forward, beam search scores against teacher forcing, overfitting one batch, the
recipe's rules for it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seq2seq.batch import collate
from seq2seq.config import recipe_from_dict
from seq2seq.errors import UserError
from seq2seq.modules.conditional import ConditionalDecoder
from seq2seq.search import beam_search, greedy_search, max_lengths
from seq2seq.vocab import BOS, EOS

SRC = [[4, 5, 6, 7, 8], [9, 10], [11, 4, 5]]
TGT = [[5, 4], [10, 9, 8, 7], [6]]


def conditional(make_model, **decoder):
    return make_model(decoder={"type": "conditional", **decoder})


def reference_cell(rnn: nn.RNNBase) -> nn.Module:
    """The one-layer nn.GRU / nn.LSTM as the matching cell, same weights."""
    cell = (nn.LSTMCell if isinstance(rnn, nn.LSTM) else nn.GRUCell)(rnn.input_size, rnn.hidden_size)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(cell, name).data.copy_(getattr(rnn, f"{name}_l0"))
    return cell


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_step_follows_the_cgru_equations(make_model, cell):
    """s' = cell1([y; t_prev], s); c = attention(s'); s_new = cell2(c, s'); t = tanh(W [s_new; y; c] + b)."""
    model = conditional(make_model, cell=cell)
    dec = model.decoder
    assert isinstance(dec, ConditionalDecoder) and dec.output_size == 8  # t_j: the embedding's size
    assert model.generator.in_features == 8
    batch = collate(SRC, TGT)
    memory, state = model.encode(batch.src, batch.src_lengths)
    state.att_vector = torch.sin(torch.arange(3 * 8, dtype=torch.float32)).view(3, 8)  # a t_{j-1}
    y = model.tgt_embed(torch.tensor([BOS, 5, 9]))  # (B, E)
    lstm = cell == "lstm"
    s = (state.hidden[0][0], state.hidden[1][0]) if lstm else state.hidden[0]
    first = reference_cell(dec.rnn1)(torch.cat([y, state.att_vector], -1), s)
    query = first[0] if lstm else first
    context, weights = dec.attention(query.unsqueeze(1), memory.keys, memory.values, memory.mask)
    second = reference_cell(dec.rnn2)(context.squeeze(1), first)
    s_new = second[0] if lstm else second
    t = torch.tanh(dec.att_vector_layer(torch.cat([s_new, y, context.squeeze(1)], -1)))

    att, w, new = dec.step(y.unsqueeze(1), memory, state)
    torch.testing.assert_close(att.squeeze(1), t)
    torch.testing.assert_close(w, weights)
    torch.testing.assert_close(new.att_vector, t)
    torch.testing.assert_close(new.hidden[0][0] if lstm else new.hidden[0], s_new)
    if lstm:  # the cLSTM's second cell starts from the first's (h, c) and carries its own c on
        torch.testing.assert_close(new.hidden[1][0], second[1])


@pytest.mark.parametrize("cell, input_feeding, extra", [
    ("gru", True, {}), ("gru", False, {}), ("lstm", True, {}), ("lstm", False, {}),
    ("gru", True, {"copy": True, "attention": {"type": "bahdanau", "coverage": True}}),
    ("gru", False, {"copy": True, "attention": {"type": "bahdanau", "coverage": True}}),
])
def test_step_loop_equals_teacher_forced_forward(make_model, cell, input_feeding, extra):
    model = make_model(decoder={"type": "conditional", "cell": cell, "input_feeding": input_feeding},
                       encoder={"cell": cell}, **extra)
    assert model.decoder.rnn1.input_size == (16 if input_feeding else 8)
    batch = collate(SRC, TGT)
    logits, weights = model(batch)
    memory, state = model.encode(batch.src, batch.src_lengths)
    for t in range(batch.tgt_in.size(1)):
        log_probs, w, state = model.step(batch.tgt_in[:, t], memory, state)
        expected = logits[:, t] if model.copy is not None else torch.log_softmax(logits[:, t], -1)
        torch.testing.assert_close(log_probs, expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(w, weights[:, t], atol=1e-5, rtol=0)
    if extra:  # coverage: the state carries the attention summed over the steps so far
        torch.testing.assert_close(state.coverage, weights.sum(1), atol=1e-5, rtol=0)


def test_input_feeding_reaches_the_next_step(make_model):
    model = conditional(make_model)
    batch = collate(SRC, TGT)
    memory, state = model.encode(batch.src, batch.src_lengths)
    prev = torch.full((3,), BOS)
    a, _, _ = model.step(prev, memory, state)
    state.att_vector = state.att_vector + 1.0
    b, _, _ = model.step(prev, memory, state)
    assert not torch.allclose(a, b)


def test_beam_search_scores_are_the_teacher_forced_ones(make_model):
    torch.manual_seed(0)
    model = make_model(vocab_size=18, deterministic=False, decoder={"type": "conditional", "cell": "lstm"})
    with torch.no_grad():  # a peakier output layer, and no pad/unk/bos (as test_search.py's random_model)
        model.generator.weight.mul_(6.0)
        model.generator.bias[:EOS] -= 10.0
    batch = collate(SRC)
    limit = max_lengths(batch.src_lengths, 1.5, 3)
    greedy = greedy_search(model, batch.src, batch.src_lengths, limit)
    one = beam_search(model, batch.src, batch.src_lengths, limit, beam_size=1, alpha=0.0)
    assert [h[0].tokens for h in one] == [h[0].tokens for h in greedy]
    hyps = beam_search(model, batch.src, batch.src_lengths, limit, beam_size=3, alpha=0.0, nbest=3)
    pairs = [(src, h) for src, hs in zip(SRC, hyps) for h in hs]
    assert len(pairs) == 9 and len({len(h.tokens) for _, h in pairs}) > 1  # EOS decisions seen
    forced = collate([src for src, _ in pairs], [h.tokens for _, h in pairs])
    with torch.no_grad():
        log_probs = torch.log_softmax(model(forced)[0], -1)  # (N, T, V)
    picked = log_probs.gather(-1, forced.tgt_out.unsqueeze(-1)).squeeze(-1)
    expected = picked.masked_fill(forced.tgt_out == 0, 0.0).sum(-1).tolist()
    assert [h.score for _, h in pairs] == pytest.approx(expected, abs=1e-4)


def test_overfit_one_batch_then_greedy_reproduces_targets(make_model, overfit):
    torch.manual_seed(0)
    src = [[4, 5, 6], [7, 8, 9, 10], [11, 4, 8, 6, 5], [9, 9, 4], [10, 6, 11, 7], [5, 8]]
    tgt = [s[::-1] for s in src]  # reversal
    model = make_model(deterministic=False, embedding_size=16, encoder={"hidden_size": 16},
                       decoder={"type": "conditional", "hidden_size": 32})
    batch = collate(src, tgt)
    assert overfit(model, batch, steps=300, lr=0.02) < 0.05
    hyps = greedy_search(model, batch.src, batch.src_lengths, max_lengths(batch.src_lengths, 1.5, 2))
    assert [h[0].tokens for h in hyps] == tgt


def test_three_way_tying_at_any_hidden_size(make_model):
    """The output layer reads t_j (embedding size), so source, target and output can share one
    matrix whatever model.decoder.hidden_size is; the recurrent decoder needs them equal."""
    model = make_model(tie_output=True, share_embeddings=True,
                       decoder={"type": "conditional", "hidden_size": 12})
    assert model.generator.weight is model.tgt_embed.weight is model.src_embed.weight
    with pytest.raises(UserError, match=r"model.tie_output: .*model.embedding_size \(8\).*"
                                        r"model.decoder.hidden_size \(12\)"):
        recipe_from_dict({"model": {"embedding_size": 8, "tie_output": True, "decoder": {"hidden_size": 12}}})


def test_recipe_rules_of_the_conditional_decoder():
    with pytest.raises(UserError, match=r"model.decoder.num_layers: 2, but model.decoder.type 'conditional'"):
        recipe_from_dict({"model": {"decoder": {"type": "conditional", "num_layers": 2}}})
    # a language model has no conditional decoder: the key is said to be unused, nothing fails
    notes = []
    recipe_from_dict({"task": "language_model", "model": {"decoder": {"type": "conditional", "num_layers": 2}}},
                     warn=notes.append)
    assert any(n.startswith("model.decoder.type: 'conditional' is not used") for n in notes)


def test_train_save_and_load_a_three_way_tied_conditional_model(tmp_path, tiny_recipe_dict):
    """Through the model directory: one matrix stored for source, target and output embeddings;
    and a recipe.json without this issue's keys (a model directory written before them) still
    loads, with their defaults."""
    import json

    from safetensors.torch import load_file

    from seq2seq.tasks import train
    from seq2seq.tasks.translation.translator import Translator
    plain = tiny_recipe_dict | {"training": {**tiny_recipe_dict["training"], "max_steps": 2}}
    tied = plain | {"model": {**plain["model"], "share_embeddings": True, "tie_output": True,
                              "source_word_dropout": 0.1, "decoder": {"type": "conditional", "cell": "lstm",
                                                                      "hidden_size": 16, "output_dropout": 0.2}}}
    train(recipe_from_dict(tied), tmp_path / "m")
    stored = load_file(str(tmp_path / "m" / "best.safetensors"))
    assert len({"src_embed.weight", "tgt_embed.weight", "generator.weight"} & set(stored)) == 1
    translator = Translator.load(tmp_path / "m", "cpu")
    model = translator.model
    assert model.generator.weight is model.tgt_embed.weight is model.src_embed.weight
    assert isinstance(model.decoder, ConditionalDecoder)
    assert len(translator.translate(["abc", "de"], beam_size=2)) == 2

    old = tmp_path / "old"  # the same model directory as written before decoder.type existed
    train(recipe_from_dict(plain), old)
    saved = json.loads((old / "recipe.json").read_text())
    for key in ("type", "output_dropout"):
        del saved["model"]["decoder"][key]
    del saved["model"]["source_word_dropout"]
    (old / "recipe.json").write_text(json.dumps(saved))
    loaded = Translator.load(old, "cpu")
    assert type(loaded.model.decoder).__name__ == "RecurrentDecoder" and len(loaded.translate(["abc"])) == 1
